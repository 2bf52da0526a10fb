"""`keras-ddpm interpolate`: a walk between two samples, as a strip (and a GIF)."""

import numpy as np

from keras_ddpm import viz
from keras_ddpm.cli.options import (
    UsageError,
    add_backend,
    add_sampling_arguments,
    check_output_files,
    int_in,
    load_model,
    positive,
    sampler_config,
)


def add_parser(commands):
    """Register `interpolate` on the `keras-ddpm` subcommands."""
    interpolate = commands.add_parser(
        "interpolate",
        help="walk between two samples: spherical interpolation of their noise",
    )
    interpolate.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    add_sampling_arguments(interpolate, exclude=("ddpm",))  # stochastic at any eta
    interpolate.add_argument(
        "--seed-b",
        type=int_in(0),
        default=1,
        help="seed of the last sample; --seed is the first's (default: 1)",
    )
    interpolate.add_argument(
        "--num",
        type=positive(int),
        default=8,
        help="frames, ends included (default: 8)",
    )
    interpolate.add_argument(
        "--out",
        default="interpolation.png",
        help="output PNG (default: interpolation.png)",
    )
    interpolate.add_argument(
        "--gif", help="also write the walk there and back as a looping GIF"
    )
    interpolate.add_argument(
        "--raw-weights",
        action="store_true",
        help="sample with the training weights, not the EMA",
    )
    add_backend(interpolate)
    interpolate.set_defaults(handler=run)
    return interpolate


def run(args):
    """Write the strip (and the GIF); returns the exit status."""
    if args.num < 2:
        raise UsageError(f"--num must be at least 2 (both ends), got {args.num}")
    check_output_files({"--out": (args.out, ".png"), "--gif": (args.gif, ".gif")})
    model = load_model(args.model)
    try:
        frames = model.interpolate(
            args.seed,
            args.seed_b,
            num=args.num,
            sampler=sampler_config(args),
            steps=args.steps,
            use_ema=not args.raw_weights,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    viz.save_grid(frames, args.out, rows=1, cols=len(frames), scale=2)
    print(f"Wrote {args.out} (seed {args.seed} to seed {args.seed_b})")
    if args.gif:
        there_and_back = np.concatenate([frames, frames[-2:0:-1]])
        viz.save_gif(
            there_and_back[:, None], args.gif, duration=2.0, hold_last=0.0, scale=4
        )
        print(f"Wrote {args.gif}")
    return 0
