"""Sample quality against training time: FID of the main job's recipe per budget and sampler.

For each wall-clock budget (say 2, 5, 10 and 20 minutes) a fresh run of
`kd.training.train` with its defaults (the recipe of `keras-ddpm train`)
trains for that many minutes, as `keras-ddpm train --minutes M` would: the
learning rate's cosine decay follows each run's own budget, so every point is
what a user with that much time gets. After each run the EMA weights sample
`--num` images with every sampler of `--samplers`, at that sampler's default
number of steps unless `name:steps` says otherwise, and the images are scored
by FID under the shipped flowers encoder (`kd.metrics.flowers_encoder`)
against held-out real flowers. The floor (other real flowers at the same
sample size), a Gaussian fitted to the training pixels and uniform noise are
scored in the same run.

    KERAS_BACKEND=tensorflow python benchmarks/quality_curve.py \\
        --budgets 2 5 10 20 --num 256 \\
        --out benchmarks/results/quality-curve/curve-epyc-avx512-cpu-tensorflow.json

The budgets add up: 2, 5, 10 and 20 minutes take 37 minutes of training.
`python benchmarks/make_table.py benchmarks/results/*.json
benchmarks/results/quality-curve/*.json` writes the table and the plot of the
docs' benchmarks page.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import keras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import quality  # noqa: E402

import keras_ddpm as kd  # noqa: E402

# Every sampler at its default steps but DDPM, whose default (all 1000
# timesteps) costs 50 times DPM-Solver's 20 per image; the samplers guide
# compares it with the others on one trained model, and `--samplers ddpm`
# adds it here.
SAMPLERS = ("dpm_solver", "euler", "heun", "ddim")


def default_steps(name):
    """The steps a sampler takes when `generate` is given none."""
    sampler = kd.samplers.get(name)
    return sampler.default_steps or 1000


def score(model, encoder, real_stats, samplers, num, seed):
    """FID and sampling seconds of `num` images per sampler."""
    rows = []
    for name, steps in samplers:
        steps = steps or default_steps(name)
        start = time.monotonic()
        images = model.generate(num, sampler=name, steps=steps, seed=seed)
        seconds = time.monotonic() - start
        rows.append(
            {
                "sampler": name,
                "steps": steps,
                "sample_seconds": round(seconds, 1),
                "fid": quality.fid(encoder, real_stats, images),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budgets",
        type=float,
        nargs="+",
        default=[2, 5, 10, 20],
        help="training minutes of each run, increasing",
    )
    parser.add_argument(
        "--samplers",
        nargs="+",
        default=list(SAMPLERS),
        help="name or name:steps (default: each sampler's default steps)",
    )
    parser.add_argument("--num", type=int, default=256, help="generated images")
    parser.add_argument("--real", type=int, default=2000, help="held-out real images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--conditions", default="", help="free text: the machine's load"
    )
    args = parser.parse_args(argv)
    if any(b <= a for a, b in zip([0.0] + args.budgets, args.budgets)):
        parser.error("--budgets must be positive and increasing")
    samplers = []
    for text in args.samplers:
        name, _, steps = text.partition(":")
        try:
            kd.samplers.get(name)
        except ValueError as error:
            parser.error(str(error))
        if steps and not (steps.isdigit() and int(steps) > 0):
            parser.error(f"--samplers {text!r}: steps must be a positive int")
        samplers.append((name, int(steps) if steps else None))

    encoder = kd.metrics.flowers_encoder(quality.IMAGE_SIZE)
    real_stats = quality.reference_statistics(encoder, args.real)
    records = {
        "kind": "quality_curve",
        "runs": "independent",
        "machine": quality.machine(args.conditions),
        "recipe": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in kd.training.DEFAULTS.items()
        },
        "seed": args.seed,
        "num_images": args.num,
        "real_images": args.real,
        "baselines": quality.baselines(encoder, real_stats, args.num),
        "budgets": [],
    }
    print(json.dumps(records["baselines"]), flush=True)
    for budget in args.budgets:
        with tempfile.TemporaryDirectory() as folder:
            start = time.monotonic()
            result = kd.training.train(
                os.path.join(folder, "run"),
                minutes=budget,
                seed=args.seed,
                verbose=0,
            )
            trained = time.monotonic() - start
            model = result.model
            # The defaults say None; the record says what the network had.
            records["recipe"]["attention_levels"] = [
                level
                for level in range(len(records["recipe"]["widths"]))
                if model.network.get_layer(f"down_{level}").attention
            ]
            entry = {
                "minutes": budget,
                # What `block_depth="auto"` chose for this budget.
                "block_depth": quality.block_depths(model.network),
                "wall_seconds": round(trained, 1),
                "optimizer_steps": int(
                    keras.ops.convert_to_numpy(model.optimizer.iterations)
                ),
                "status": result.status,
                "scores": score(
                    model, encoder, real_stats, samplers, args.num, args.seed + 100
                ),
            }
        records["budgets"].append(entry)
        print(json.dumps({k: entry[k] for k in entry if k != "scores"}), flush=True)
        quality.save_records(args.out, records)
    return records


if __name__ == "__main__":
    main()
