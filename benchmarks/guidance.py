"""Class-conditional flowers: class accuracy and FID against the guidance scale.

Trains, with the main job's recipe and time budget, one class-conditional
model on `synthetic_flowers` (classes: the petals' colour family,
`kd.datasets.FLOWER_COLOURS`) and one unconditional model, each in a fresh
process. Then it samples the conditional model at each guidance scale (the
labels cycling through the six classes, so the classes are balanced as in the
real flowers) and scores every set of samples by

- accuracy: the share that `kd.metrics.flower_colours` puts in the asked
  class, beside the same classifier's accuracy on real flowers;
- FID under the shipped flowers encoder against held-out real flowers, beside
  the floor (other real flowers) at the same sample size.

The unconditional model, and the conditional one asked for no class (the null
label), are scored the same way. With `--intervals LOW:HIGH ...` the
conditional model is also guided only at the timesteps of each interval
(`generate(guidance_interval=...)`, the model alone with its labels at the
other steps) at every scale of `--interval-scales`; `--no-unconditional`
skips the unconditional model.

    KERAS_BACKEND=tensorflow python benchmarks/guidance.py --minutes 8.5 \\
        --out benchmarks/results/guidance-cpu-tensorflow.json \\
        --save-model runs/guidance/conditional.keras
"""

import argparse
import json
import multiprocessing
import os
import time

import keras
import numpy as np
from autoguidance import add_interval_arguments
from quality import (
    IMAGE_SIZE,
    REAL_SEED,
    baselines,
    fid,
    machine,
    reference_statistics,
    train_for,
)

import keras_ddpm as kd
from keras_ddpm.utils import atomic_path

SCALES = (1.0, 2.0, 3.0, 5.0)


def score(model, encoder, real_stats, num, sampler, steps, seed, scales, intervals):
    """Score the null label, every scale, and every `(interval, scale)` pair."""
    labels = np.arange(num) % len(kd.datasets.FLOWER_COLOURS)
    rows = []
    settings = [(None, 1.0, None)]  # no label: unconditional samples
    if model.num_classes is not None:
        settings += [(labels, s, None) for s in scales]
        settings += [(labels, s, interval) for interval, s in intervals]
    for asked, scale, interval in settings:
        start = time.monotonic()
        options = {}
        if model.num_classes is not None:
            options = dict(labels=asked, guidance_scale=scale)
        if interval is not None:
            options["guidance_interval"] = interval
        images = model.generate(
            num, sampler=sampler, steps=steps, seed=seed + 100, **options
        )
        rows.append(
            {
                "labels": "none" if asked is None else "cycling",
                "guidance_scale": None if asked is None else scale,
                "guidance_interval": interval,
                "fid": fid(encoder, real_stats, images),
                "accuracy": kd.metrics.class_accuracy(
                    images, labels, kd.metrics.flower_colours
                )
                if asked is not None
                else None,
                "sample_seconds": round(time.monotonic() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_in_process(
    conditional, minutes, seed, num, num_real, sampler, steps, save, scales, intervals
):
    """Train and score one model (in a fresh process): its record."""
    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    real_stats = reference_statistics(encoder, num_real)
    result, seconds = train_for({"minutes": minutes}, seed, conditional=conditional)
    model = result.model
    if save:
        os.makedirs(os.path.dirname(os.path.abspath(save)), exist_ok=True)
        model.save(save)
    return {
        "conditional": conditional,
        "seed": seed,
        "minutes": minutes,
        "wall_seconds": round(seconds, 1),
        "optimizer_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "sampler": sampler,
        "sample_steps": steps,
        "num_images": num,
        "rows": score(
            model, encoder, real_stats, num, sampler, steps, seed, scales, intervals
        ),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=8.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num", type=int, default=500, help="generated images")
    parser.add_argument("--real", type=int, default=2000, help="held-out real images")
    parser.add_argument("--sampler", default="dpm_solver")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", required=True)
    parser.add_argument("--save-model", help="also save the conditional model here")
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    add_interval_arguments(
        parser,
        "guide the conditional model only at these timesteps too",
        default_scale=3.0,
    )
    parser.add_argument(
        "--no-unconditional",
        action="store_true",
        help="train and score the conditional model only",
    )
    parser.add_argument(
        "--conditions", default="", help="free text: the machine's load"
    )
    args = parser.parse_args(argv)

    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    real_stats = reference_statistics(encoder, args.real)
    real, attributes = kd.datasets.synthetic_flowers(
        args.num, IMAGE_SIZE, seed=REAL_SEED + 1, return_attributes=True
    )
    records = {
        "machine": machine(args.conditions),
        "real_images": args.real,
        "baselines": baselines(encoder, real_stats, args.num),
        "real_accuracy": kd.metrics.class_accuracy(
            real * 2 - 1,
            kd.datasets.flower_colour(attributes["hue"]),
            kd.metrics.flower_colours,
        ),
        "runs": [],
    }
    print(json.dumps(records["baselines"]), records["real_accuracy"], flush=True)
    context = multiprocessing.get_context("spawn")
    intervals = [(i, s) for i in args.intervals for s in args.interval_scales]
    for conditional in (True,) if args.no_unconditional else (True, False):
        with context.Pool(1) as pool:
            record = pool.apply(
                run_in_process,
                (conditional, args.minutes, args.seed, args.num, args.real),
                {
                    "sampler": args.sampler,
                    "steps": args.steps,
                    "save": args.save_model if conditional else None,
                    "scales": args.scales,
                    "intervals": intervals,
                },
            )
        records["runs"].append(record)
        with atomic_path(args.out) as path, open(path, "w") as file:
            json.dump(records, file, indent=1)
    return records


if __name__ == "__main__":
    main()
