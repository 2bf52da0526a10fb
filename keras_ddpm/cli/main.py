"""The `keras-ddpm` command line: train, sample, reconstruct, evaluate, serve, info.

Errors a user can fix (bad arguments, missing files, unreadable models) print one
line on stderr and exit with status 2, without a traceback.
"""

import argparse
import math
import os
import signal
import sys

from keras_ddpm.version import __version__

BACKENDS = ("tensorflow", "jax", "torch")

# Defaults of `train`: sized so that the bare command finishes in about ten
# minutes on two CPU cores and its samples are recognisably flowers.
TRAIN_DEFAULTS = {
    "dataset": "synthetic_flowers",
    "image_size": 32,
    "num_images": None,
    "epochs": 7,
    "batch_size": 16,
    "widths": [32, 64, 128],
    "block_depth": 2,
    "attention_levels": None,  # None: the lowest-resolution level
    "schedule": "cosine",
    "timesteps": 1000,
    "prediction": "v",
    "learning_rate": 1e-3,
    "ema": 0.999,
    "out": os.path.join("runs", "flowers"),
    "sampler": "ddim",
    "sample_steps": 50,
    "seed": 0,
    "grid_every": 0,
}


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, not argparse's usage block: the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive(kind):
    """An argparse `type=`: a number of `kind` above 0 (and finite), else one line."""
    expected = (
        "a positive int" if kind is int else f"a positive, finite {kind.__name__}"
    )

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or (kind is float and math.isinf(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def _add_backend(parser):
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else Keras' default)",
    )


def _add_sampling_arguments(parser):
    """`--sampler`, `--steps`, `--eta` and `--seed`, read back by `_generate`."""
    parser.add_argument(
        "--sampler", choices=("ddpm", "ddim"), default="ddim", help="(default: ddim)"
    )
    parser.add_argument(
        "--steps", type=_positive(int), default=50, help="(default: 50)"
    )
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default: 0)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")


def _sampler_from_args(args):
    """The sampler config of `--sampler` (with `--eta` for DDIM)."""
    return {
        "name": args.sampler,
        **({"eta": args.eta} if args.sampler == "ddim" else {}),
    }


def _generate(model, args, **options):
    """`args.num` images from `model` as the sampling arguments and `--raw-weights` say."""
    return model.generate(
        args.num,
        sampler=_sampler_from_args(args),
        steps=args.steps,
        seed=args.seed,
        use_ema=not args.raw_weights,
        progress=True,
        **options,
    )


def build_parser():
    """The argument parser of `keras-ddpm` (also used to render its `--help`).

    Returns:
        An `argparse.ArgumentParser` with the subcommands `train`, `sample`,
        `reconstruct` and `info`.

    Example:

    ```python
    from keras_ddpm.cli import build_parser

    args = build_parser().parse_args(["sample", "--model", "runs/flowers/model.keras"])
    args.steps  # 50
    ```
    """
    parser = _Parser(
        prog="keras-ddpm",
        description=(
            "Denoising diffusion models for Keras 3 on TensorFlow, JAX or PyTorch. "
            "Run 'keras-ddpm train' to train on the built-in synthetic flowers."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-ddpm {__version__}"
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )

    train = commands.add_parser(
        "train",
        help="train a diffusion model, then write samples.png and denoise.gif",
        description=(
            "Train a DDPM and write model.keras, samples.png (4x8), denoise.gif, "
            "history.json and loss.png into --out. With no arguments it trains on "
            "the built-in synthetic flowers. Ctrl-C stops after the current batch "
            "and saves a checkpoint; --resume continues from the newest one."
        ),
    )
    d = TRAIN_DEFAULTS
    train.add_argument(
        "--config",
        help="TOML file of defaults for these options (keys as option names, e.g. image_size = 32)",
    )
    train.add_argument(
        "--dataset",
        help=f"'synthetic_flowers', a TFDS name (oxford_flowers102, oxford_iiit_pet, ...) or a folder of images (default: {d['dataset']})",
    )
    train.add_argument("--data-dir", help="TFDS data directory")
    train.add_argument(
        "--image-size",
        type=_positive(int),
        help=f"image height and width (default: {d['image_size']})",
    )
    train.add_argument(
        "--num-images",
        type=_positive(int),
        help="size of synthetic_flowers (default: 4096), or a cap on other datasets (default: all)",
    )
    train.add_argument(
        "--epochs", type=_positive(int), help=f"(default: {d['epochs']})"
    )
    train.add_argument(
        "--batch-size", type=_positive(int), help=f"(default: {d['batch_size']})"
    )
    train.add_argument(
        "--widths",
        type=_positive(int),
        nargs="+",
        help=f"U-Net level widths (default: {' '.join(map(str, d['widths']))})",
    )
    train.add_argument(
        "--block-depth",
        type=_positive(int),
        help=f"residual blocks per level (default: {d['block_depth']})",
    )
    train.add_argument(
        "--attention-levels",
        type=int,
        nargs="*",
        help="levels with self-attention, 0 = full resolution; give none for no attention "
        "(default: the lowest-resolution level)",
    )
    train.add_argument(
        "--schedule",
        choices=("linear", "cosine", "sigmoid"),
        help=f"(default: {d['schedule']})",
    )
    train.add_argument(
        "--timesteps",
        type=_positive(int),
        help=f"diffusion steps T (default: {d['timesteps']})",
    )
    train.add_argument(
        "--prediction",
        choices=("epsilon", "x0", "v"),
        help=f"(default: {d['prediction']})",
    )
    train.add_argument(
        "--learning-rate",
        type=_positive(float),
        help=f"AdamW learning rate (default: {d['learning_rate']})",
    )
    train.add_argument(
        "--ema", type=float, help=f"EMA momentum, with warmup (default: {d['ema']})"
    )
    train.add_argument("--out", help=f"run folder (default: {d['out']})")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in OUT/checkpoints",
    )
    train.add_argument(
        "--sampler",
        choices=("ddpm", "ddim"),
        help=f"sampler of the final grid and GIF (default: {d['sampler']})",
    )
    train.add_argument(
        "--sample-steps", type=_positive(int), help=f"(default: {d['sample_steps']})"
    )
    train.add_argument(
        "--grid-every",
        type=int,
        help="write a sample grid every N epochs into OUT/samples (default: 0, never)",
    )
    train.add_argument("--seed", type=int, help=f"(default: {d['seed']})")
    train.add_argument(
        "--devices",
        type=_positive(int),
        default=1,
        help="data-parallel devices: tf.distribute.MirroredStrategy on TensorFlow, "
        "keras.distribution.DataParallel on JAX (default: 1)",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="Keras fit verbosity (default: 1, progress bars)",
    )
    _add_backend(train)
    train.set_defaults(handler=_train)

    sample = commands.add_parser(
        "sample", help="generate a grid (and a GIF) from a saved model"
    )
    sample.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    sample.add_argument(
        "--num", type=_positive(int), default=32, help="images (default: 32)"
    )
    _add_sampling_arguments(sample)
    sample.add_argument(
        "--rows", type=_positive(int), help="grid rows (default: near-square)"
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
    _add_backend(sample)
    sample.set_defaults(handler=_sample)

    reconstruct = commands.add_parser(
        "reconstruct", help="noise real images to step t and denoise them back"
    )
    reconstruct.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    reconstruct.add_argument("--images", required=True, help="a folder of images")
    reconstruct.add_argument(
        "--t", type=int, default=300, help="timestep to noise to (default: 300)"
    )
    reconstruct.add_argument(
        "--num", type=_positive(int), default=8, help="images (default: 8)"
    )
    reconstruct.add_argument(
        "--sampler", choices=("ddpm", "ddim"), default="ddim", help="(default: ddim)"
    )
    reconstruct.add_argument(
        "--steps", type=_positive(int), help="(default: the sampler's, capped at t + 1)"
    )
    reconstruct.add_argument("--seed", type=int, default=0, help="(default: 0)")
    reconstruct.add_argument(
        "--out",
        default="reconstruction.png",
        help="rows: originals, noised, reconstructed (default: reconstruction.png)",
    )
    _add_backend(reconstruct)
    reconstruct.set_defaults(handler=_reconstruct)

    from keras_ddpm.cli import evaluate

    evaluate.add_parser(commands)

    from keras_ddpm.cli import serve

    serve.add_parser(commands)

    info = commands.add_parser(
        "info", help="print the Keras backend and library versions"
    )
    _add_backend(info)
    info.set_defaults(handler=_info)
    return parser


def _select_backend(args, argv):
    """Make Keras use `--backend`; re-executes once if Keras is already loaded."""
    wanted = getattr(args, "backend", None)
    if not wanted:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() == wanted:
            return
        os.environ["KERAS_BACKEND"] = wanted
        os.execv(sys.executable, [sys.executable, "-m", "keras_ddpm.cli", *argv])
    os.environ["KERAS_BACKEND"] = wanted


def _train_settings(args):
    settings = dict(TRAIN_DEFAULTS)
    if args.config:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            with open(args.config, "rb") as file:
                config = tomllib.load(file)
        except FileNotFoundError:
            raise UsageError(f"config file not found: {args.config}") from None
        except tomllib.TOMLDecodeError as error:
            raise UsageError(
                f"config file {args.config} is not valid TOML: {error}"
            ) from None
        unknown = sorted(set(config) - set(settings) - {"data_dir"})
        if unknown:
            raise UsageError(f"unknown keys in {args.config}: {', '.join(unknown)}")
        settings.update(config)
    for key in list(settings) + ["data_dir"]:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    settings.setdefault("data_dir", None)
    return settings


def _train(args):
    settings = _train_settings(args)
    import keras_ddpm as kd
    from keras_ddpm.utils import check_writable_folder

    out = settings["out"]
    check_writable_folder(out)
    if settings["batch_size"] % args.devices:
        raise UsageError(
            f"--batch-size {settings['batch_size']} must be a multiple of --devices {args.devices}"
        )
    devices = kd.distribute.device_scope(args.devices)
    checkpoints = os.path.join(out, "checkpoints")
    size = settings["image_size"]
    common = dict(
        image_size=size,
        batch_size=settings["batch_size"],
        seed=settings["seed"],
        num_images=settings["num_images"],
        data_dir=settings["data_dir"],
    )
    train_ds = kd.datasets.load(settings["dataset"], split="train", **common)
    val_ds = kd.datasets.load(
        settings["dataset"], split="validation", augment=False, **common
    )

    with devices:
        return _fit(args, settings, train_ds, val_ds, out, checkpoints)


def _fit(args, settings, train_ds, val_ds, out, checkpoints):
    import keras

    import keras_ddpm as kd
    from keras_ddpm.utils import check_free_space

    size = settings["image_size"]
    restored = kd.callbacks.Checkpoint.restore(checkpoints) if args.resume else None
    if restored is not None:
        model, initial_epoch = restored
        print(
            f"Resuming from {kd.callbacks.list_checkpoints(checkpoints)[0][0]} ({initial_epoch} epochs done)."
        )
    else:
        if args.resume:
            print(f"No checkpoint in {checkpoints}: starting a new run.")
        net = kd.models.build_unet(
            size,
            widths=tuple(settings["widths"]),
            block_depth=settings["block_depth"],
            attention_levels=tuple(
                [len(settings["widths"]) - 1]
                if settings["attention_levels"] is None
                else settings["attention_levels"]
            ),
        )
        model = kd.DiffusionModel(
            net,
            schedule={"name": settings["schedule"], "timesteps": settings["timesteps"]},
            prediction=settings["prediction"],
            ema_momentum=settings["ema"],
            ema_warmup=True,
            sampler=settings["sampler"],
            seed=settings["seed"],
        )
        model.compile(optimizer=keras.optimizers.AdamW(settings["learning_rate"]))
        initial_epoch = 0
    # Two kept checkpoints, one being written and model.keras, each holding the
    # weights, their EMA and two AdamW moments in float32.
    check_free_space(out, 4 * 4 * 4 * model.network.count_params())
    print(
        f"keras-ddpm: {model.network.count_params():,} parameters, backend {keras.backend.backend()}, "
        f"{settings['dataset']} at {size}x{size}, {settings['epochs']} epochs -> {out}"
    )

    checkpoint = kd.callbacks.Checkpoint(checkpoints)
    history = kd.callbacks.HistoryFile(os.path.join(out, "history.json"))
    non_finite = kd.callbacks.TerminateOnNonFinite(verbose=False)
    callbacks = [non_finite, checkpoint, history]
    if settings["grid_every"] > 0:
        callbacks.append(
            kd.callbacks.SampleGrid(
                os.path.join(out, "samples"),
                every_n_epochs=settings["grid_every"],
                steps=settings["sample_steps"],
            )
        )

    def stop(signum, frame):
        print(
            "\nInterrupted: finishing this batch and saving a checkpoint (Ctrl-C again to abort).",
            file=sys.stderr,
        )
        checkpoint.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        if initial_epoch < settings["epochs"]:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=settings["epochs"],
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=args.verbose,
                shuffle=False,  # the dataset shuffles itself
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    if non_finite.step is not None:
        kept = kd.callbacks.list_checkpoints(checkpoints)
        kept = f"kept {kept[0][0]}" if kept else "no checkpoint was written"
        print(
            f"keras-ddpm train: error: {non_finite.message} ({kept})", file=sys.stderr
        )
        return 1
    if checkpoint.stop_requested:
        print(f"Saved {checkpoint.last_path}; run again with --resume to continue.")
        return 130

    from keras_ddpm.utils import atomic_path

    model_path = os.path.join(out, "model.keras")
    with atomic_path(model_path) as temporary:
        model.save(temporary)
    print(
        f"Sampling 32 images ({settings['sampler']}, {settings['sample_steps']} steps)..."
    )
    images, trajectory = model.generate(
        32,
        sampler=settings["sampler"],
        steps=settings["sample_steps"],
        seed=settings["seed"],
        return_trajectory=True,
        batch_size=8,
        progress=True,
    )
    kd.viz.save_samples(images, trajectory, out)
    written = [
        "model.keras",
        "samples.png",
        "denoise.gif",
        "denoise_strip.png",
        "history.json",
    ]
    try:
        kd.viz.plot_history(history.history, os.path.join(out, "loss.png"))
        written.append("loss.png")
    except ImportError as error:
        print(f"Skipping loss.png: {error}", file=sys.stderr)
    print("Wrote " + ", ".join(os.path.join(out, name) for name in written))
    return 0


def _load_model(path):
    if not os.path.isfile(path):
        raise UsageError(f"model file not found: {path}")
    import keras

    import keras_ddpm  # noqa: F401  (registers the classes the file names)

    try:
        return keras.saving.load_model(path)
    except Exception as error:
        message = (
            str(error).strip().splitlines()[0]
            if str(error).strip()
            else error.__class__.__name__
        )
        raise UsageError(f"could not load model {path}: {message}") from None


def _sample(args):
    import keras_ddpm as kd

    model = _load_model(args.model)
    result = _generate(model, args, return_trajectory=bool(args.gif))
    images, trajectory = result if args.gif else (result, None)
    rows = args.rows or max(1, int(round(args.num**0.5)))
    cols = -(-args.num // rows)
    kd.viz.save_grid(images, args.grid, rows=rows, cols=cols)
    print(f"Wrote {args.grid}")
    if args.gif:
        kd.viz.save_gif(trajectory, args.gif, rows=rows, cols=cols, duration=3.0)
        print(f"Wrote {args.gif}")
    return 0


def _reconstruct(args):
    import numpy as np

    import keras_ddpm as kd

    model = _load_model(args.model)
    if not os.path.isdir(args.images):
        raise UsageError(f"image folder not found: {args.images}")
    height, width, channels = model.image_shape
    dataset = kd.datasets.load(
        args.images,
        image_size=(height, width),
        channels=channels,
        batch_size=args.num,
        split="all",
        augment=False,
        shuffle=False,
        validation_fraction=0.0,
    )
    batch = next(iter(dataset))
    originals = np.asarray(batch)
    restored, trajectory = model.reconstruct(
        originals,
        args.t,
        sampler=args.sampler,
        steps=args.steps,
        seed=args.seed,
        return_trajectory=True,
    )
    rows = np.concatenate([originals, trajectory[0], restored])
    kd.viz.save_grid(rows, args.out, rows=3, cols=len(originals))
    print(f"Wrote {args.out} (rows: originals, noised to t={args.t}, reconstructed)")
    return 0


def _info(args):
    import keras
    import numpy

    print(f"keras-ddpm {__version__}")
    print(f"keras {keras.__version__} (backend: {keras.backend.backend()})")
    print(f"numpy {numpy.__version__}")
    return 0


def main(argv=None):
    """Run the command line in this process.

    Errors a user can fix print one line on stderr and give status 2, without a
    traceback.

    Args:
        argv: list of str, the arguments after `keras-ddpm`; None reads
            `sys.argv[1:]`.

    Returns:
        The exit status: 0 on success, 2 for a usage error, 130 when training
        was interrupted with Ctrl-C (after saving a checkpoint).

    Raises:
        SystemExit: as argparse does, for `--help` (status 0) and for arguments
            it rejects (status 2, one line on stderr).

    Example:

    ```python
    from keras_ddpm.cli import main

    main(["info"])  # prints the versions and the backend, returns 0
    ```
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _select_backend(args, argv)
    try:
        return args.handler(args)
    except (UsageError, ValueError, OSError, ImportError) as error:
        print(f"keras-ddpm {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
