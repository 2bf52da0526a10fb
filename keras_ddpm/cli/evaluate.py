"""`keras-ddpm evaluate`: KID or FID of a saved model's samples, and reference statistics."""

import os
import warnings

from keras_ddpm import datasets, metrics
from keras_ddpm.cli.options import (
    UsageError,
    add_backend,
    add_sampling_arguments,
    generate,
    int_in,
    load_model,
    positive,
)

BOOTSTRAP_ROUNDS = 10


def add_parser(commands):
    """Register the `evaluate` subcommand on the `keras-ddpm` subparsers."""
    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved model's samples by KID or FID against a dataset",
        description=(
            "Generate --num images with a saved model and compare them with the real "
            "images of --dataset (or with statistics saved by --save-reference) by "
            "KID (mean ± std over subsets) or FID (± bootstrap std). With "
            "--save-reference and no --model, only compute and save the statistics "
            "of the real images."
        ),
    )
    evaluate.add_argument("--model", help="a .keras file written by keras-ddpm")
    evaluate.add_argument(
        "--dataset",
        help="'synthetic_flowers', a TFDS name or a folder of images (the real images)",
    )
    evaluate.add_argument("--data-dir", help="TFDS data directory")
    evaluate.add_argument(
        "--split",
        choices=("train", "validation", "all"),
        default="validation",
        help="(default: validation)",
    )
    evaluate.add_argument(
        "--num-images",
        type=int_in(2),  # a set's statistics need two images
        help="size of synthetic_flowers (default: 4096), or a cap on other datasets",
    )
    evaluate.add_argument(
        "--image-size",
        type=positive(int),
        help="image size of the real images without --model (with --model: the "
        "model's); give the size of the models the statistics will score",
    )
    evaluate.add_argument(
        "--metric", choices=("kid", "fid"), default="kid", help="(default: kid)"
    )
    evaluate.add_argument(
        "--num",
        type=int_in(2),  # a set's statistics need two images
        default=1000,
        help="images generated, and real images used (default: 1000)",
    )
    add_sampling_arguments(evaluate)
    evaluate.add_argument(
        "--raw-weights",
        action="store_true",
        help="sample with the training weights, not the EMA",
    )
    evaluate.add_argument(
        "--reference", help="real-image statistics (.npz) saved by --save-reference"
    )
    evaluate.add_argument(
        "--save-reference",
        metavar="PATH",
        help="compute the statistics of the real images and save them (.npz)",
    )
    evaluate.add_argument(
        "--weights",
        default="imagenet",
        help="InceptionV3 weights: 'imagenet' (download), a local .h5 file, or 'none' "
        "(default: imagenet)",
    )
    evaluate.add_argument(
        "--feature-extractor",
        metavar="PATH|flowers",
        help="a saved .keras model mapping images to (B, d), used instead of InceptionV3; "
        "'flowers' for the shipped synthetic_flowers encoder (offline)",
    )
    evaluate.add_argument(
        "--encoder-size",
        type=positive(int),
        help="encoder input size (default: 75 for kid, 299 for fid)",
    )
    evaluate.add_argument(
        "--subset-size",
        type=int_in(2),
        default=1000,
        help="KID subset size (default: 1000)",
    )
    evaluate.add_argument(
        "--num-subsets",
        type=positive(int),
        default=100,
        help="KID subsets (default: 100)",
    )
    evaluate.add_argument(
        "--batch-size",
        type=positive(int),
        default=64,
        help="images per network call (default: 64)",
    )
    add_backend(evaluate)
    evaluate.set_defaults(handler=run)
    return evaluate


def _metric(args, image_shape):
    extractor = args.feature_extractor
    if extractor == "flowers":
        extractor = metrics.flowers_encoder(image_size=image_shape[0])
    elif extractor:
        extractor = load_model(extractor, "--feature-extractor")
    weights = None if args.weights.lower() == "none" else args.weights
    size = args.encoder_size or (75 if args.metric == "kid" else 299)
    try:
        metric = _make_metric(args, extractor, weights, size)
    except ValueError as error:  # named as the flags that gave them
        message = str(error).replace("`feature_extractor`", "--feature-extractor")
        raise UsageError(message.replace("`image_size`", "--encoder-size")) from None
    _check_encoder_size(args, metric.extractor)
    return metric


def _check_encoder_size(args, extractor):
    """`--encoder-size` resizes for InceptionV3 or an extractor of any input size.

    `extractor`: the metric's `FeatureExtractor`, whose `input_size` is its
    model's fixed one where it declares one.
    """
    wanted = (args.encoder_size, args.encoder_size)
    if args.encoder_size and not extractor.inception and extractor.input_size != wanted:
        height, width = extractor.input_size
        raise UsageError(
            f"--encoder-size does not apply with --feature-extractor "
            f"{args.feature_extractor}: it takes {height}x{width} images"
        )


def _make_metric(args, extractor, weights, size):
    common = dict(
        image_size=size,
        feature_extractor=extractor,
        weights=weights,
        batch_size=args.batch_size,
    )
    if args.metric == "kid":
        return metrics.KernelInceptionDistance(
            subset_size=args.subset_size,
            num_subsets=args.num_subsets,
            seed=args.seed,
            **common,
        )
    return metrics.FrechetInceptionDistance(keep_generated_features=True, **common)


def _real_images(args, image_shape):
    height, width, channels = image_shape
    return datasets.load(
        args.dataset,
        image_size=(height, width),
        channels=channels,
        batch_size=args.batch_size,
        split=args.split,
        augment=False,
        shuffle=False,
        num_images=args.num_images,
        data_dir=args.data_dir,
        seed=args.seed,
    )


def run(args):
    """Handle `keras-ddpm evaluate`; returns the exit status."""
    if not args.model and not args.save_reference:
        raise UsageError(
            "give --model to evaluate, or --save-reference to save statistics"
        )
    if not args.model and not args.image_size:
        raise UsageError(
            "give --image-size without --model: the size of the images of the "
            "models these statistics will score"
        )
    if args.model and args.image_size:
        raise UsageError("--image-size does not apply with --model: its size is used")
    if not args.dataset and not args.reference:
        raise UsageError(
            "give --dataset (the real images) or --reference (their statistics)"
        )
    if args.reference and args.save_reference:
        raise UsageError("--reference and --save-reference exclude each other")
    if args.save_reference and not args.save_reference.endswith(".npz"):
        raise UsageError(
            f"--save-reference must name a .npz file, got {args.save_reference}"
        )
    if args.reference and not os.path.isfile(args.reference):
        raise UsageError(f"reference statistics not found: {args.reference}")

    model = load_model(args.model) if args.model else None
    image_shape = (
        model.image_shape
        if model is not None
        else (args.image_size, args.image_size, 3)
    )
    metric = _metric(args, image_shape)

    if args.reference:
        metric.set_reference(args.reference)
        source = args.reference
    else:
        stats = metric.extractor.statistics(
            _real_images(args, image_shape),
            max_images=args.num,
            keep_features=True,
        )
        source = f"{stats.count} real images of {args.dataset} ({args.split})"
        if stats.count < args.num:
            warnings.warn(
                f"the {args.split} split of {args.dataset} holds {stats.count} "
                f"images, fewer than --num {args.num}: the reference takes them all",
                stacklevel=2,
            )
        if args.save_reference:
            stats.save(args.save_reference)
            print(
                f"Wrote {args.save_reference} ({stats.count} images, {stats.extractor})"
            )
        metric.set_reference(stats)
    if model is None:
        return 0

    images = generate(model, args, batch_size=args.batch_size)
    metric.update_state(generated=images)
    what = (
        f"{args.num} generated images ({args.sampler}, {args.steps} steps) vs {source}"
    )
    if args.metric == "kid":
        mean, std = metric.result_and_std()
        size = min(args.subset_size, args.num, metric.real_statistics.count)
        print(
            f"KID {mean:.6f} ± {std:.6f} (mean ± std over {args.num_subsets} subsets of {size}; {what})"
        )
        return 0
    value, std = metric.result_and_std(num_bootstrap=BOOTSTRAP_ROUNDS, seed=args.seed)
    print(
        f"FID {value:.4f} ± {std:.4f} (± bootstrap std over "
        f"{BOOTSTRAP_ROUNDS} resamples of the generated images; {what})"
    )
    return 0
