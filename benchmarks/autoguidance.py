"""Autoguidance by an earlier state of the same run: FID against the guide's age and scale.

Each seed trains the main job's recipe (`kd.training.train` with its defaults
and a time budget) in a fresh process, keeping the EMA weights at every epoch
end (a callback this script adds to the recipe's `fit`). Then it samples with
the final model alone, and guided at every step (`generate(guide=...,
guide_scale=w, guidance_interval=(0, T))`) by the model as it was at the
first epoch end after a share f of the budget: every f of `--fractions` at
scale 2, and every scale of `--scales` at f = 0.5 (what the recipe keeps as
`guide.keras`); and with that guide only over
each timestep interval of `--intervals` (`guidance_interval=(low, high)`) at
every scale of `--interval-scales`. Each setting scores FID under the
shipped flowers encoder against held-out real flowers (as
`benchmarks/quality.py`, whose floor and baselines it records too), from the
same initial noise, and reads the samples' petal counts with the encoder's
heads.

    KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
        --seeds 0 1 --num 1024 --conditions "quiet machine" \\
        --out benchmarks/results/autoguidance/autoguidance-cpu-tensorflow.json

With `--fractions 0.5 --scales 2 --intervals 0:800 0:700 --interval-scales
5 6.5 8` it measures guidance intervals against guidance at every step (the
benchmarks page gives the commands of every results file).

Training takes most of the time. `--keep DIR` saves each seed's run (the
final model, the EMA weights at every epoch end, the steps and times) in
`DIR/seed-N`, and `--rescore DIR` scores new settings on those saved runs
instead of training (`--minutes` is then the saved runs'):

    KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore runs/kept \\
        --fractions --scales --intervals 0:600 --interval-scales 4 5 6 \\
        --out benchmarks/results/autoguidance/rescored.json
"""

import argparse
import json
import multiprocessing
import os
import tempfile
import time

import keras
import numpy as np
from quality import (
    COMPARED_SAMPLES,
    IMAGE_SIZE,
    baselines,
    block_depths,
    fid,
    machine,
    reference_statistics,
    save_records,
)

import keras_ddpm as kd
from keras_ddpm.callbacks.step_counter import optimizer_steps
from keras_ddpm.cli.options import one_or_list, positive
from keras_ddpm.cli.train import on_off
from keras_ddpm.metrics.flowers import MAX_PETALS, MIN_PETALS
from keras_ddpm.utils import atomic_path

GUIDE_SCALE = 2.0  # the scale of the --fractions rows
RECIPE_FRACTION = 0.5  # the guide the recipe keeps
# What new runs may change in the recipe: its keyword → (type, nargs, what it is).
RECIPE_OPTIONS = {
    "num_images": (int, None, "synthetic_flowers size, 80 %% of it trained on"),
    "batch_size": (int, None, "batch size"),
    "ema_momentum": (float, None, "EMA momentum"),
    "widths": (int, "+", "U-Net level widths"),
    "block_depth": (
        positive(int, "auto"),
        "+",
        "residual blocks per U-Net level (auto, an int, or one int per level)",
    ),
    "attention_levels": (int, "*", "levels with self-attention"),
    "patch_size": (int, None, "U-Net patch size"),
    "zero_init_attention": (on_off, None, "zero start of attention outputs (on/off)"),
    "min_snr_gamma": (float, None, "min-SNR-γ loss weighting's γ"),
    "weight_decay": (float, None, "AdamW's weight decay"),
    "global_clipnorm": (float, None, "gradient clipping's global norm"),
}

# Options recorded under another key in a run's facts.
RECORDED_AS = {"num_images": "dataset_images"}


class EmaHistory(keras.callbacks.Callback):
    """The EMA weights at every epoch end, with the step and the time into `fit`."""

    def __init__(self):
        super().__init__()
        self.snapshots = []
        self._start = None

    def on_train_begin(self, logs=None):
        # The run's `fit`; a timing `fit` before it (`block_depth="auto"`
        # off a TensorFlow CPU) leaves nothing.
        self._start = time.monotonic()
        self.snapshots = []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append(
            {
                "seconds": time.monotonic() - self._start,
                "step": optimizer_steps(self.model),
                "weights": [
                    keras.ops.convert_to_numpy(v.value) for v in self.model.ema_weights
                ],
            }
        )


def train_recording(folder, minutes, seed, **recipe):
    """`kd.training.train` with an `EmaHistory` added to its `fit`; (result, history).

    `recipe` holds keywords of the recipe to set (the others keep its defaults).
    """
    history = EmaHistory()
    fit = kd.DiffusionModel.fit

    def recording_fit(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), history], **kwargs)

    kd.DiffusionModel.fit = recording_fit
    try:
        result = kd.training.train(
            folder, seed=seed, minutes=minutes, verbose=0, **recipe
        )
    finally:
        kd.DiffusionModel.fit = fit
    return result, history


def snapshot_at(snapshots, fraction, minutes):
    """The first snapshot at or after `fraction` of the budget (as `GuideSnapshot`)."""
    for snapshot in snapshots:
        if snapshot["seconds"] >= fraction * 60.0 * minutes:
            return snapshot
    raise ValueError(
        f"no epoch ended after {fraction} of the {minutes}-minute budget: "
        "expected a longer run or a smaller fraction"
    )


def guide_weights(snapshots, fraction, minutes):
    """`(weights, step)` of the guide at `fraction` of the budget.

    `fraction` is a share of the budget (the snapshot `snapshot_at` finds,
    and its step) or a window `[low, high]`: the mean of the EMA snapshots at
    the epoch ends from `low` to `high` of the budget, a longer average of
    the same run, and the list of their steps.
    """
    if not isinstance(fraction, (list, tuple)):
        snapshot = snapshot_at(snapshots, fraction, minutes)
        return snapshot["weights"], snapshot["step"]
    low, high = (share * 60.0 * minutes for share in fraction)
    chosen = [s for s in snapshots if low <= s["seconds"] <= high]
    if not chosen:
        raise ValueError(
            f"no epoch ended between {fraction[0]} and {fraction[1]} of the "
            f"{minutes}-minute budget: expected a wider window"
        )
    weights = [
        np.mean([s["weights"][i] for s in chosen], axis=0)
        for i in range(len(chosen[0]["weights"]))
    ]
    return weights, [s["step"] for s in chosen]


def save_run(folder, model, snapshots, meta):
    """Write a trained run for `--rescore`: the model, the EMA snapshots, the facts."""
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, "model.keras"))
    weights = {
        f"snapshot{i}_weight{j}": weight
        for i, snapshot in enumerate(snapshots)
        for j, weight in enumerate(snapshot["weights"])
    }
    with atomic_path(os.path.join(folder, "snapshots.npz")) as path:
        with open(path, "wb") as file:
            np.savez(file, **weights)
    times = [{k: s[k] for k in ("seconds", "step")} for s in snapshots]
    with atomic_path(os.path.join(folder, "run.json")) as path:  # written last
        with open(path, "w") as file:
            json.dump({**meta, "snapshots": times}, file, indent=1)


def load_run(folder):
    """(model, its copy to hold guides, snapshots, facts) of a run `save_run` wrote."""
    facts_path = os.path.join(folder, "run.json")
    if not os.path.exists(facts_path):
        raise FileNotFoundError(
            f"{facts_path} not found: expected a run saved by --keep"
        )
    with open(facts_path) as file:
        facts = json.load(file)
    model, guide = (
        keras.saving.load_model(os.path.join(folder, "model.keras")) for _ in range(2)
    )
    with np.load(os.path.join(folder, "snapshots.npz")) as weights:
        count = len(model.ema_weights)
        snapshots = [
            {
                **times,
                "weights": [weights[f"snapshot{i}_weight{j}"] for j in range(count)],
            }
            for i, times in enumerate(facts.pop("snapshots"))
        ]
    return model, guide, snapshots, facts


def train_run(seed, minutes, recipe):
    """(model, its copy to hold guides, snapshots, facts) of one fresh recipe run."""
    with tempfile.TemporaryDirectory() as folder:
        run = os.path.join(folder, "run")
        start = time.monotonic()
        result, history = train_recording(run, minutes, seed, **recipe)
        trained = time.monotonic() - start
        recipe_guide = keras.saving.load_model(os.path.join(run, "guide.keras"))
        guide = keras.saving.load_model(os.path.join(run, "model.keras"))
    facts = {
        "seed": seed,
        "minutes": minutes,
        # Each recipe option as run (None: the recipe's default); the
        # dataset size is recorded as "dataset_images".
        **{RECORDED_AS.get(name, name): recipe.get(name) for name in RECIPE_OPTIONS},
        # What the network has (the option may be "auto").
        "block_depth_used": block_depths(result.model.network),
        "wall_seconds": round(trained, 1),
        "optimizer_steps": optimizer_steps(result.model),
        "recipe_guide_step": optimizer_steps(recipe_guide),
    }
    return result.model, guide, history.snapshots, facts


def run_seed(
    seed, minutes, settings, num, num_real, sampler, steps, keep, rescore, recipe
):
    """Train one seed (or read it from `rescore`) and score every setting.

    A setting is `(fraction, scale, interval)`: the guide at `fraction` of the
    budget (None: the model alone), its scale and its guided timesteps (None:
    every step).
    """
    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    heads = kd.metrics.flowers_encoder(IMAGE_SIZE, include_top=True)
    real_stats = reference_statistics(encoder, num_real)
    if rescore:
        model, guide, snapshots, facts = load_run(os.path.join(rescore, f"seed-{seed}"))
    else:
        model, guide, snapshots, facts = train_run(seed, minutes, recipe)
        if keep:
            save_run(os.path.join(keep, f"seed-{seed}"), model, snapshots, facts)
    minutes = facts["minutes"]

    def score(fraction, scale, interval):
        options = {}
        guide_step = None
        if fraction is not None:
            weights, guide_step = guide_weights(snapshots, fraction, minutes)
            for variable, value in zip(guide.ema_weights, weights):
                variable.assign(value)
            every_step = (0, model.schedule.timesteps)  # recorded as a null interval
            options = dict(
                guide=guide,
                guide_scale=scale,
                guidance_interval=every_step if interval is None else interval,
            )
        begin = time.monotonic()
        images = model.generate(
            num, sampler=sampler, steps=steps, seed=seed + 100, **options
        )
        seconds = time.monotonic() - begin
        petals = np.argmax(heads.predict(images, verbose=0)["petals"], axis=1)
        record = {
            "guide_fraction": fraction,
            "guide_step": guide_step,  # a window's: the steps it averages
            "guide_scale": scale,
            "guidance_interval": interval,
            "sample_seconds": round(seconds, 1),
            "fid": fid(encoder, real_stats, images),
            "petal_counts": [
                int(np.sum(petals + MIN_PETALS == count))
                for count in range(MIN_PETALS, MAX_PETALS + 1)
            ],
        }
        if num > COMPARED_SAMPLES:
            record[f"fid_first_{COMPARED_SAMPLES}"] = fid(
                encoder, real_stats, images[:COMPARED_SAMPLES]
            )
        print(json.dumps(record), flush=True)
        return record

    return {
        **facts,
        "snapshot_steps": [snapshot["step"] for snapshot in snapshots],
        "scores": [score(*setting) for setting in settings],
    }


def interval_argument(text):
    """`"LOW:HIGH"` → `[low, high]` (timesteps), for `--intervals`."""
    try:
        low, high = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LOW:HIGH timesteps such as 100:800, got {text!r}"
        ) from None
    return [low, high]


def fraction_argument(text):
    """`"F"` → F, or `"LOW:HIGH"` → `[low, high]` (shares of the budget)."""
    try:
        parts = [float(part) for part in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1 and 0 < parts[0] < 1:
        return parts[0]
    if len(parts) == 2 and 0 < parts[0] < parts[1] < 1:
        return parts
    raise argparse.ArgumentTypeError(
        f"expected a share of the budget in (0, 1) such as 0.5, or a window "
        f"LOW:HIGH such as 0.4:0.6, got {text!r}"
    )


def add_interval_arguments(parser, help, default_scale):
    """`--intervals LOW:HIGH ...` (default none) and `--interval-scales`."""
    parser.add_argument(
        "--intervals",
        type=interval_argument,
        nargs="*",
        default=[],
        metavar="LOW:HIGH",
        help=help,
    )
    parser.add_argument(
        "--interval-scales", type=float, nargs="+", default=[default_scale]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=8.5, help="(default: 8.5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    for name, (kind, nargs, what) in RECIPE_OPTIONS.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            nargs=nargs,
            help=f"the recipe's {what} (default: the recipe's)",
        )
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="*",
        default=[0.25, RECIPE_FRACTION, 0.75],
        help="guides' ages, each guiding every step at scale 2",
    )
    parser.add_argument(
        "--scales",
        type=float,
        nargs="*",
        default=[1.5, 2.0, 2.5, 3.0],
        help="scales of the 50%% guide at every step",
    )
    add_interval_arguments(
        parser,
        "guidance intervals in timesteps, each scored with every guide of "
        "--interval-fractions at every scale of --interval-scales",
        default_scale=2.5,
    )
    parser.add_argument(
        "--interval-fractions",
        type=fraction_argument,
        nargs="+",
        default=[RECIPE_FRACTION],
        metavar="F or LOW:HIGH",
        help="guides of the interval rows: the snapshot at F of the budget, or "
        "the mean of the snapshots from LOW to HIGH of it",
    )
    parser.add_argument("--num", type=int, default=1024, help="generated images")
    parser.add_argument("--real", type=int, default=2000, help="held-out real images")
    parser.add_argument("--sampler", default="dpm_solver")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--keep", metavar="DIR", help="save each seed's run here for --rescore"
    )
    parser.add_argument(
        "--rescore",
        metavar="DIR",
        help="score the runs --keep saved here instead of training new ones",
    )
    parser.add_argument(
        "--conditions", default="", help="free text: the machine's load"
    )
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    if not all(0 < fraction < 1 for fraction in args.fractions):
        parser.error(f"--fractions must lie in (0, 1), got {args.fractions}")
    if args.keep and args.rescore:
        parser.error("--keep saves new runs and --rescore reads saved ones: not both")
    recipe = {
        name: getattr(args, name)
        for name in RECIPE_OPTIONS
        if getattr(args, name) is not None
    }
    if "block_depth" in recipe:  # one for every level, or one per level
        recipe["block_depth"] = one_or_list(recipe["block_depth"])
    if recipe and args.rescore:
        flags = ", ".join("--" + name.replace("_", "-") for name in recipe)
        parser.error(f"{flags} (how new runs train) cannot go with --rescore")

    settings = [(None, 1.0, None)]
    settings += [(fraction, GUIDE_SCALE, None) for fraction in args.fractions]
    settings += [
        (RECIPE_FRACTION, scale, None)
        for scale in args.scales
        if scale != GUIDE_SCALE or RECIPE_FRACTION not in args.fractions
    ]
    settings += [
        (fraction, scale, interval)
        for fraction in args.interval_fractions
        for interval in args.intervals
        for scale in args.interval_scales
    ]
    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    real_stats = reference_statistics(encoder, args.real)
    records = {
        "kind": "autoguidance",
        "machine": machine(args.conditions),
        "sampler": args.sampler,
        "sample_steps": args.steps,
        "num_images": args.num,
        "real_images": args.real,
        "baselines": baselines(encoder, real_stats, args.num),
        "rescored_runs": args.rescore,
        "runs": [],
    }
    print(json.dumps(records["baselines"]), flush=True)
    context = multiprocessing.get_context("spawn")
    for seed in args.seeds:
        with context.Pool(1) as pool:  # a fresh process per run, as quality.py
            record = pool.apply(
                run_seed,
                (seed, args.minutes, settings, args.num),
                {
                    "num_real": args.real,
                    "sampler": args.sampler,
                    "steps": args.steps,
                    "keep": args.keep,
                    "rescore": args.rescore,
                    "recipe": recipe,
                },
            )
        records["runs"].append(record)
        save_records(args.out, records)
    return records


if __name__ == "__main__":
    main()
