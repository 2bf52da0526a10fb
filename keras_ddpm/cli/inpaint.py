"""`keras-ddpm inpaint`: fill in a region of an image with a saved model (RePaint)."""

import os

import numpy as np

from keras_ddpm import viz
from keras_ddpm.cli.options import (
    UsageError,
    add_backend,
    check_output_files,
    int_in,
    load_model,
    positive,
)


def add_parser(commands):
    """Register `inpaint` on the `keras-ddpm` subcommands."""
    inpaint = commands.add_parser(
        "inpaint", help="fill in a region of an image (RePaint)"
    )
    inpaint.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    inpaint.add_argument(
        "--image",
        required=True,
        help="the image (cropped to a centred square and resized to the model's size)",
    )
    region = inpaint.add_mutually_exclusive_group(required=True)
    region.add_argument(
        "--mask",
        help="a mask image: white = keep the pixel, black = fill it in "
        "(grey blends; resized like --image)",
    )
    region.add_argument(
        "--box",
        nargs=4,
        type=int,
        metavar=("X0", "Y0", "X1", "Y1"),
        help="fill in this box instead, in pixels of the model's resolution "
        "(X1, Y1 exclusive)",
    )
    inpaint.add_argument(
        "--num", type=positive(int), default=4, help="fillings to draw (default: 4)"
    )
    inpaint.add_argument(
        "--sampler",
        choices=("ddpm", "ddim"),
        default="ddpm",
        help="(default: ddpm, RePaint's)",
    )
    inpaint.add_argument(
        "--steps",
        type=positive(int),
        default=250,
        help="sampler steps (default: 250)",
    )
    inpaint.add_argument(
        "--jump-length",
        type=positive(int),
        default=10,
        help="steps per jump back (default: 10)",
    )
    inpaint.add_argument(
        "--jump-n-sample",
        type=positive(int),
        default=10,
        help="walks over each stretch; 1 for no resampling (default: 10)",
    )
    inpaint.add_argument("--seed", type=int_in(0), default=0, help="(default: 0)")
    inpaint.add_argument(
        "--out",
        default="inpainted.png",
        help="one row: the original, the region to fill (grey), then each filling "
        "(default: inpainted.png)",
    )
    add_backend(inpaint)
    inpaint.set_defaults(handler=run)
    return inpaint


def read_image(path, size, channels, what):
    """An image file as float32 `(H, W, C)` in [0, 1]: centre square, resized."""
    from PIL import Image, ImageOps

    if os.path.isdir(path):
        raise UsageError(f"--{what} names a folder, not an image file: {path}")
    if not os.path.isfile(path):
        raise UsageError(f"{what} not found: {path}")
    try:
        with Image.open(path) as picture:
            picture = ImageOps.exif_transpose(picture)
            picture = picture.convert("L" if channels == 1 else "RGB")
            side = min(picture.size)
            left = (picture.width - side) // 2
            top = (picture.height - side) // 2
            picture = picture.crop((left, top, left + side, top + side))
            picture = picture.resize(size[::-1], Image.Resampling.LANCZOS)
            array = np.asarray(picture, dtype=np.float32) / 255.0
    except UsageError:
        raise
    except Exception:  # PIL raises many kinds for files that are not images
        raise UsageError(f"{what} is not a readable image: {path}") from None
    return array.reshape(size + (channels,))


def box_mask(box, height, width):
    """The mask of `--box`: 1 everywhere but the box, which is 0."""
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise UsageError(
            f"--box must satisfy 0 <= X0 < X1 <= {width} and 0 <= Y0 < Y1 <= "
            f"{height} (the model's {height}x{width} pixels), got {x0} {y0} {x1} {y1}"
        )
    mask = np.ones((height, width, 1), np.float32)
    mask[y0:y1, x0:x1] = 0.0
    return mask


def run(args):
    """Write the row of pictures; returns the exit status."""
    check_output_files({"--out": (args.out, ".png")})
    model = load_model(args.model)
    height, width, channels = model.image_shape
    image = read_image(args.image, (height, width), channels, "image") * 2.0 - 1.0
    if args.mask is not None:
        mask = read_image(args.mask, (height, width), 1, "mask")
    else:
        mask = box_mask(args.box, height, width)
    if mask.min() > 0.999:
        raise UsageError("the mask keeps every pixel: nothing to fill in")
    try:
        filled = model.inpaint(
            np.repeat(image[None], args.num, axis=0),
            mask,
            sampler=args.sampler,
            steps=args.steps,
            jump_length=args.jump_length,
            jump_n_sample=args.jump_n_sample,
            seed=args.seed,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    shown = mask * image  # the region to fill in as mid grey (0 in [-1, 1])
    row = np.concatenate([image[None], shown[None], filled])
    viz.save_grid(row, args.out, rows=1, cols=len(row), scale=2)
    print(f"Wrote {args.out} (the original, the region to fill, {args.num} fillings)")
    return 0
