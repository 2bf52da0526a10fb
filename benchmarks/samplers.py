"""Samplers and steps: FID of one trained model under every sampler, per step count.

Loads a model trained on `synthetic_flowers` (e.g. by `keras-ddpm train`),
samples `--num` images with each sampler at each step count from the same
seed, and scores FID under the shipped flowers encoder against held-out real
flowers, beside DDPM with every timestep and the real-vs-real floor at the
same sample size. Sampling wall time is recorded too.

    KERAS_BACKEND=tensorflow python benchmarks/samplers.py --model runs/model.keras \\
        --out benchmarks/results/samplers/cpu-tensorflow.json

`python benchmarks/make_table.py` renders the records into `docs/benchmarks.md`.
"""

import argparse
import json
import os
import sys
import time

import keras

import keras_ddpm as kd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.quality import (  # noqa: E402
    IMAGE_SIZE,
    baselines,
    fid,
    machine,
    reference_statistics,
)
from keras_ddpm.utils import atomic_path

SAMPLERS = {
    "ddim": {"name": "ddim"},
    "dpm_solver_2": {"name": "dpm_solver", "order": 2},
    "dpm_solver_3": {"name": "dpm_solver", "order": 3},
    "dpm_solver_2_karras": {"name": "dpm_solver", "order": 2, "spacing": "karras"},
    "dpm_solver_3_karras": {"name": "dpm_solver", "order": 3, "spacing": "karras"},
    "euler": {"name": "euler"},
    "heun": {"name": "heun"},
    "heun_trailing": {"name": "heun", "spacing": "trailing"},
}
LABELS = {
    "ddim": "DDIM (trailing)",
    "dpm_solver_2": "DPM-Solver++ 2M (trailing, the default)",
    "dpm_solver_3": "DPM-Solver++ 3M (trailing)",
    "dpm_solver_2_karras": "DPM-Solver++ 2M (Karras)",
    "dpm_solver_3_karras": "DPM-Solver++ 3M (Karras)",
    "euler": "Euler (Karras)",
    "heun": "Heun (Karras; 2N − 1 evaluations)",
    "heun_trailing": "Heun (trailing; 2N − 1 evaluations)",
}


def network_evaluations(sampler, steps):
    return 2 * steps - 1 if sampler["name"] == "heun" else steps


def score(model, encoder, real_stats, sampler, steps, num, seed):
    model.generate(2, sampler=sampler, steps=steps, seed=seed)  # compile first
    start = time.monotonic()
    images = model.generate(num, sampler=sampler, steps=steps, seed=seed)
    seconds = time.monotonic() - start
    return {
        "fid": fid(encoder, real_stats, images),
        "sampling_seconds": round(seconds, 1),
        "network_evaluations": network_evaluations(sampler, steps),
    }


def table(records):
    """Markdown: FID per sampler and step count, with DDPM's and the floor beside them."""
    runs = records["runs"]
    steps = sorted({r["steps"] for r in runs if r["sampler"] != "ddpm"})
    lines = [
        "| sampler | " + " | ".join(f"{n} steps" for n in steps) + " |",
        "|---" * (len(steps) + 1) + "|",
    ]
    for name in dict.fromkeys(r["sampler"] for r in runs if r["sampler"] != "ddpm"):
        by_steps = {r["steps"]: r for r in runs if r["sampler"] == name}
        cells = [f"{by_steps[n]['fid']:.2f}" if n in by_steps else "—" for n in steps]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    notes = [f"floor {records['baselines']['floor']:.2f}"]
    notes += [
        f"DDPM-{r['steps']} {r['fid']:.2f} ({r['sampling_seconds']:.0f} s)"
        for r in runs
        if r["sampler"] == "ddpm"
    ]
    return "\n".join(lines) + "\n\n" + "; ".join(notes) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a .keras file")
    parser.add_argument("--table", help="print the markdown table of a result file")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument(
        "--ddpm-steps", type=int, default=1000, help="the reference (0: skip)"
    )
    parser.add_argument("--num", type=int, default=256, help="generated images")
    parser.add_argument("--real", type=int, default=2000, help="held-out real images")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument(
        "--conditions", default="", help="free text: the machine's load"
    )
    parser.add_argument("--out", help="the result file to write")
    args = parser.parse_args(argv)
    if args.table:
        with open(args.table) as file:
            print(table(json.load(file)), end="")
        return
    if not (args.model and args.out):
        parser.error("give --model and --out (or --table FILE)")
    unknown = sorted(set(args.samplers) - set(SAMPLERS))
    if unknown:
        parser.error(f"unknown samplers {unknown}; known: {sorted(SAMPLERS)}")

    model = keras.saving.load_model(args.model)
    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    real_stats = reference_statistics(encoder, args.real)
    records = {
        "machine": machine(args.conditions),
        "model": os.path.basename(args.model),
        "parameters": int(model.network.count_params()),
        "real_images": args.real,
        "num_images": args.num,
        "baselines": baselines(encoder, real_stats, args.num),
        "runs": [],
    }
    print(json.dumps(records["baselines"]), flush=True)

    def record(name, sampler, steps):
        result = score(model, encoder, real_stats, sampler, steps, args.num, args.seed)
        records["runs"].append({"sampler": name, "steps": steps, **result})
        print(json.dumps(records["runs"][-1]), flush=True)
        with atomic_path(args.out) as path, open(path, "w") as file:
            json.dump(records, file, indent=1)

    for name in args.samplers:
        for steps in args.steps:
            record(name, SAMPLERS[name], steps)
    if args.ddpm_steps:  # the reference, last: it costs the most
        record("ddpm", {"name": "ddpm"}, args.ddpm_steps)


if __name__ == "__main__":
    main()
