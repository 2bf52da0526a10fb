"""`keras-ddpm reconstruct`: noise real images to step t and denoise them back."""

import os

import numpy as np

from keras_ddpm import datasets, samplers, viz
from keras_ddpm.cli.options import (
    DEFAULT_SAMPLER,
    UsageError,
    add_backend,
    add_class_arguments,
    check_output_files,
    class_options,
    int_in,
    load_model,
    names,
    positive,
)
from keras_ddpm.models import inputs

# Without --t or --strength: a start 0.3 of the way, t = 300 of 1000 timesteps,
# whatever the model's T.
DEFAULT_STRENGTH = 0.3


def add_parser(commands):
    """Register `reconstruct` on the `keras-ddpm` subcommands."""
    reconstruct = commands.add_parser(
        "reconstruct", help="noise real images to step t and denoise them back"
    )
    reconstruct.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    reconstruct.add_argument("--images", required=True, help="a folder of images")
    start = reconstruct.add_mutually_exclusive_group()
    start.add_argument(
        "--t",
        type=int,
        help="timestep to noise to (default: --strength 0.3, which is t = 300 "
        "of 1000 timesteps)",
    )
    start.add_argument(
        "--strength",
        type=float,
        help="SDEdit strength in (0, 1] instead of --t: t = round(strength * (T - 1))",
    )
    reconstruct.add_argument(
        "--num", type=positive(int), default=8, help="images (default: 8)"
    )
    reconstruct.add_argument(
        "--sampler",
        choices=names(samplers),
        default=DEFAULT_SAMPLER,
        help=f"(default: {DEFAULT_SAMPLER})",
    )
    reconstruct.add_argument(
        "--steps", type=positive(int), help="(default: the sampler's, capped at t + 1)"
    )
    reconstruct.add_argument("--seed", type=int_in(0), default=0, help="(default: 0)")
    add_class_arguments(reconstruct)
    reconstruct.add_argument(
        "--out",
        default="reconstruction.png",
        help="rows: originals, noised, reconstructed (default: reconstruction.png)",
    )
    add_backend(reconstruct)
    reconstruct.set_defaults(handler=run)
    return reconstruct


def run(args):
    """Write the three-row picture; returns the exit status."""
    if os.path.isfile(args.images):
        raise UsageError(
            f"--images names a file, not a folder of images: {args.images}"
        )
    if not os.path.isdir(args.images):
        raise UsageError(f"image folder not found: {args.images}")
    check_output_files({"--out": (args.out, ".png")})
    model = load_model(args.model)
    conditioning = class_options(model, args)
    height, width, channels = model.image_shape
    dataset = datasets.load(
        args.images,
        image_size=(height, width),
        channels=channels,
        batch_size=args.num,
        split="all",
        augment=False,
        shuffle=False,
        validation_fraction=0.0,
    )
    originals = np.asarray(next(iter(dataset)))
    if args.t is None and args.strength is None:
        args.strength = DEFAULT_STRENGTH
    try:
        t = inputs.reconstruction_timestep(
            args.t, args.strength, model.schedule.timesteps
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    restored, trajectory = model.reconstruct(
        originals,
        t,
        sampler=args.sampler,
        steps=args.steps,
        seed=args.seed,
        return_trajectory=True,
        **conditioning,
    )
    rows = np.concatenate([originals, trajectory[0], restored])
    viz.save_grid(rows, args.out, rows=3, cols=len(originals))
    print(f"Wrote {args.out} (rows: originals, noised to t={t}, reconstructed)")
    return 0
