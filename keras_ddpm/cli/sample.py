"""`keras-ddpm sample`: a grid (and a GIF) of a saved model's samples."""

from keras_ddpm import viz
from keras_ddpm.cli.options import (
    UsageError,
    add_backend,
    add_class_arguments,
    add_guide_arguments,
    add_sampling_arguments,
    check_output_files,
    class_options,
    generate,
    guide_options,
    load_model,
    positive,
    sampling_options,
)

# Images in a grid without --num.
DEFAULT_NUM = 32


def add_parser(commands):
    """Register `sample` on the `keras-ddpm` subcommands."""
    sample = commands.add_parser(
        "sample", help="generate a grid (and a GIF) from a saved model"
    )
    sample.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    sample.add_argument(
        "--num", type=positive(int), help=f"images (default: {DEFAULT_NUM})"
    )
    add_sampling_arguments(sample)
    add_class_arguments(sample)
    sample.add_argument(
        "--per-class",
        type=positive(int),
        metavar="N",
        help="a grid of one row of N samples per class instead (conditional "
        "models; --num, --rows and --gif do not apply)",
    )
    sample.add_argument(
        "--rows", type=positive(int), help="grid rows (default: near-square)"
    )
    sample.add_argument(
        "--grid", default="samples.png", help="output PNG (default: samples.png)"
    )
    sample.add_argument("--gif", help="also write the denoising process as a GIF")
    add_guide_arguments(sample)
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
    if args.per_class and args.guide:
        raise UsageError("--guide does not apply with --per-class")
    if args.per_class and args.guidance_interval:
        raise UsageError("--guidance-interval does not apply with --per-class")
    if args.guide and args.guidance != 1.0:
        raise UsageError(
            "--guide (autoguidance) and --guidance (classifier-free) exclude each "
            "other: give one"
        )
    if args.per_class and args.gif:
        raise UsageError("--gif does not apply with --per-class")
    if args.per_class and (args.num is not None or args.rows is not None):
        raise UsageError(
            "--num and --rows do not apply with --per-class: its grid has one "
            "row of N samples per class"
        )
    args.num = DEFAULT_NUM if args.num is None else args.num
    check_output_files({"--grid": (args.grid, ".png"), "--gif": (args.gif, ".gif")})
    guided = guide_options(args)
    model = load_model(args.model)
    conditioning = class_options(model, args)
    if args.per_class:
        return _per_class(model, args, conditioning)
    conditioning["guidance_interval"] = args.guidance_interval  # classifier-free
    conditioning.update(guided)
    result = generate(model, args, return_trajectory=bool(args.gif), **conditioning)
    images, trajectory = result if args.gif else (result, None)
    rows = args.rows or max(1, int(round(args.num**0.5)))
    cols = -(-args.num // rows)
    viz.save_grid(images, args.grid, rows=rows, cols=cols)
    print(f"Wrote {args.grid}")
    if args.gif:
        viz.save_gif(trajectory, args.gif, rows=rows, cols=cols, duration=3.0)
        print(f"Wrote {args.gif}")
    return 0


def _per_class(model, args, conditioning):
    """`--per-class N`: one row of N samples per class (or of `--label`'s class)."""
    if model.num_classes is None:
        raise UsageError(
            "--per-class needs a class-conditional model; this one has none"
        )
    classes = (
        [conditioning["labels"]]
        if "labels" in conditioning
        else list(range(model.num_classes))
    )
    viz.save_class_grid(
        model,
        args.grid,
        per_class=args.per_class,
        classes=classes,
        guidance_scale=conditioning["guidance_scale"],
        scale=1,
        **sampling_options(args),
    )
    names = model.class_names or [str(k) for k in range(model.num_classes)]
    print(f"Wrote {args.grid} (rows: {', '.join(names[k] for k in classes)})")
    return 0
