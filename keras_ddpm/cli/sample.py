"""`keras-ddpm sample`: a grid (and a GIF) of a saved model's samples."""

from keras_ddpm import viz
from keras_ddpm.cli.options import (
    add_backend,
    add_sampling_arguments,
    generate,
    load_model,
    positive,
)


def add_parser(commands):
    """Register `sample` on the `keras-ddpm` subcommands."""
    sample = commands.add_parser(
        "sample", help="generate a grid (and a GIF) from a saved model"
    )
    sample.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    sample.add_argument(
        "--num", type=positive(int), default=32, help="images (default: 32)"
    )
    add_sampling_arguments(sample)
    sample.add_argument(
        "--rows", type=positive(int), help="grid rows (default: near-square)"
    )
    sample.add_argument(
        "--grid", default="samples.png", help="output PNG (default: samples.png)"
    )
    sample.add_argument("--gif", help="also write the denoising process as a GIF")
    sample.add_argument(
        "--raw-weights",
        action="store_true",
        help="sample with the training weights, not the EMA",
    )
    add_backend(sample)
    sample.set_defaults(handler=run)
    return sample


def run(args):
    """Write the grid (and the GIF); returns the exit status."""
    model = load_model(args.model)
    result = generate(model, args, return_trajectory=bool(args.gif))
    images, trajectory = result if args.gif else (result, None)
    rows = args.rows or max(1, int(round(args.num**0.5)))
    cols = -(-args.num // rows)
    viz.save_grid(images, args.grid, rows=rows, cols=cols)
    print(f"Wrote {args.grid}")
    if args.gif:
        viz.save_gif(trajectory, args.gif, rows=rows, cols=cols, duration=3.0)
        print(f"Wrote {args.gif}")
    return 0
