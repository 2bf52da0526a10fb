"""`keras-ddpm train`: the command-line face of `keras_ddpm.training.train`.

Flags, TOML keys and the library's arguments are one set of names: a flag is
its argument's name with `-` for `_` (`batch_size` is `--batch-size`), except
for the few renamed in `RENAMED`; a TOML key is the flag without `--` and with
`_` for `-`. Defaults come from `training.DEFAULTS` only.
"""

import argparse
import sys

from keras_ddpm import samplers, schedules, training
from keras_ddpm.cli.options import (
    PREDICTIONS,
    UsageError,
    add_backend,
    int_in,
    names,
    one_or_list,
    positive,
)

# Arguments of `training.train` whose flag (and TOML key) has a shorter name.
RENAMED = {"output_dir": "out", "ema_momentum": "ema", "guidance_scale": "guidance"}
# Arguments given only as flags, never from a --config file.
FLAGS_ONLY = ("resume", "overwrite", "verbose", "devices")


def config_keys():
    """`{TOML key: argument of training.train}` of what a --config file may set."""
    return {
        RENAMED.get(argument, argument): argument
        for argument in training.DEFAULTS
        if argument not in FLAGS_ONLY
    }


def words(values):
    """An argparse `type=`: one of the words of the dict `values`, read as its value."""
    *others, last = values
    expected = f"{', '.join(others)} or {last}"

    def parse(text):
        if text not in values:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return values[text]

    return parse


# `--jit-compile`'s values, and those of the on/off flags.
auto_on_off = words({"auto": "auto", "on": True, "off": False})
on_off = words({"on": True, "off": False})


# The arguments whose flag takes one value for every level or one per level.
ONE_OR_PER_LEVEL = ("block_depth",)

# The arguments whose flag (and config key) takes "none" for None.
NONE_ABLE = ("min_snr_gamma", "global_clipnorm", "intra_op_threads")


# A `NONE_ABLE` flag's value: a positive float, or "none" (`settings` makes
# it None).
positive_or_none = positive(float, "none")
_thread_count = positive(int)


def intra_op_threads(text):
    """`--intra-op-threads`' value: auto, none (kept as text) or a positive int."""
    if text in ("auto", "none"):
        return text
    try:
        return _thread_count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected auto, none or a positive int, got {text!r}"
        ) from None


def add_parser(commands):
    """Register `train` on the `keras-ddpm` subcommands."""
    d = training.DEFAULTS
    train = commands.add_parser(
        "train",
        help="train a diffusion model, then write samples.png and denoise.gif",
        description=(
            "Train a DDPM and write model.keras, samples.png (4x8), denoise.gif, denoise_strip.png, "
            "history.json and loss.png (and classes.png with --conditional, or "
            "guide.keras without it unless --guide-scale is 1: the model halfway "
            "through, which guides the final pictures) into "
            "--out. With no arguments it trains on "
            "the built-in synthetic flowers. Ctrl-C stops after the current batch "
            "(up to 8 with TensorFlow) and saves a checkpoint; --resume continues from the newest one."
        ),
    )
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
        type=positive(int),
        help=f"image height and width (default: {d['image_size']})",
    )
    train.add_argument(
        "--num-images",
        type=positive(int),
        help="size of synthetic_flowers (default: 4096), or a cap on other datasets (default: all)",
    )
    train.add_argument(
        "--epochs",
        type=positive(int),
        help="total epochs; with --minutes a cap (default: as many as fit in the budget)",
    )
    train.add_argument(
        "--minutes",
        type=positive(float),
        help="wall-clock budget for training, which stops cleanly when it is spent "
        "(default: 8.5 without --epochs, else none)",
    )
    train.add_argument(
        "--jit-compile",
        type=auto_on_off,
        metavar="{auto,on,off}",
        help="compile the train step (XLA on TensorFlow and JAX, torch.compile "
        "on PyTorch, which takes minutes first); auto measures both ways on a "
        "TensorFlow CPU and keeps the faster, and is off on PyTorch (default: auto)",
    )
    train.add_argument(
        "--intra-op-threads",
        type=intra_op_threads,
        metavar="{auto,none,N}",
        help="TensorFlow's threads per operation; auto times the step with its "
        "default and with 1 in child processes on a CPU and keeps the faster, "
        "none keeps its default (default: auto)",
    )
    train.add_argument(
        "--batch-size", type=positive(int), help=f"(default: {d['batch_size']})"
    )
    train.add_argument(
        "--widths",
        type=positive(int),
        nargs="+",
        help=f"U-Net level widths (default: {' '.join(map(str, d['widths']))})",
    )
    train.add_argument(
        "--block-depth",
        type=positive(int, "auto"),
        nargs="+",
        help="residual blocks per level, or one count per level; auto: 2 when "
        f"the time budget holds {training.recipe.AUTO_DEPTH_STEPS:,} steps of "
        "the one-block network at its timed speed, else 1 (default: "
        f"{d['block_depth']})",
    )
    train.add_argument(
        "--attention-levels",
        type=int,
        nargs="*",
        help="levels with self-attention, 0 = full resolution; give none for no attention "
        "(default: the two lowest-resolution levels)",
    )
    train.add_argument(
        "--zero-init-residual",
        type=on_off,
        metavar="{on,off}",
        help="start each residual block's second convolution at zero "
        f"(default: {'on' if d['zero_init_residual'] else 'off'})",
    )
    train.add_argument(
        "--scale-shift",
        type=on_off,
        metavar="{on,off}",
        help="condition the residual blocks on the time embedding by a scale and "
        "shift of their second group normalization instead of by addition "
        f"(default: {'on' if d['scale_shift'] else 'off'})",
    )
    train.add_argument(
        "--zero-init-attention",
        type=on_off,
        metavar="{on,off}",
        help="start each attention block's output projection at zero "
        f"(default: {'on' if d['zero_init_attention'] else 'off'})",
    )
    train.add_argument(
        "--patch-size",
        type=positive(int),
        help="run the U-Net on patches of this side, its first level at the image "
        f"size over it (default: {d['patch_size']})",
    )
    train.add_argument(
        "--schedule", choices=names(schedules), help=f"(default: {d['schedule']})"
    )
    train.add_argument(
        "--timesteps",
        type=positive(int),
        help=f"diffusion steps T (default: {d['timesteps']})",
    )
    train.add_argument(
        "--prediction", choices=PREDICTIONS, help=f"(default: {d['prediction']})"
    )
    train.add_argument(
        "--learning-rate",
        type=positive(float),
        help=f"AdamW learning rate (default: {d['learning_rate']})",
    )
    train.add_argument(
        "--beta-2",
        type=positive(float),
        help=f"AdamW's second-moment decay rate, in (0, 1) (default: {d['beta_2']})",
    )
    train.add_argument(
        "--weight-decay",
        type=float,
        help=f"AdamW's decoupled weight decay, >= 0 (default: {d['weight_decay']})",
    )
    train.add_argument(
        "--global-clipnorm",
        type=positive_or_none,
        metavar="NORM",
        help="clip each step's gradients to this global norm, or none "
        f"(default: {d['global_clipnorm'] or 'none'})",
    )
    train.add_argument(
        "--learning-rate-schedule",
        choices=("constant", "cosine"),
        help="constant, or cosine: linear warmup, then cosine decay to 0 at the end of "
        "the run (of --epochs, or along the clock of --minutes) "
        f"(default: {d['learning_rate_schedule']})",
    )
    train.add_argument(
        "--warmup-steps",
        type=int,
        help=f"linear warmup steps of the learning rate (default: {d['warmup_steps']})",
    )
    train.add_argument(
        "--min-snr-gamma",
        type=positive_or_none,
        metavar="GAMMA",
        help="min-SNR-gamma loss weighting, or none for plain MSE "
        f"(default: {d['min_snr_gamma'] or 'none'})",
    )
    train.add_argument(
        "--noise-levels",
        choices=("uniform", "lognormal"),
        help="training noise levels: uniform timesteps, or log-normal sigma "
        f"(Karras et al. 2022) (default: {d['noise_levels']})",
    )
    train.add_argument(
        "--ema",
        dest="ema_momentum",
        metavar="EMA",
        type=float,
        help=f"EMA momentum, with warmup (default: {d['ema_momentum']})",
    )
    train.add_argument(
        "--conditional",
        action="store_const",
        const=True,
        help="learn the dataset's classes (synthetic_flowers: petal colour; TFDS: "
        "its label; a folder: one class per sub-folder) with classifier-free "
        "guidance's label dropout",
    )
    train.add_argument(
        "--label-dropout",
        type=float,
        help="share of training labels replaced by the null label, with "
        f"--conditional (default: {d['label_dropout']})",
    )
    train.add_argument(
        "--guidance",
        dest="guidance_scale",
        metavar="SCALE",
        type=float,
        help="guidance scale of a conditional run's final pictures "
        f"(default: {d['guidance_scale']})",
    )
    train.add_argument(
        "--guide-scale",
        metavar="SCALE",
        type=float,
        help="autoguidance scale of an unconditional run's final pictures, "
        "guided by the model at half of its training (OUT/guide.keras); 1: off "
        f"(default: {d['guide_scale']})",
    )
    train.add_argument(
        "--guide-interval",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="guide the final pictures only at timesteps LOW to HIGH, the model "
        "alone at the others; 0 T guides every step (default: 0 to 0.6 T)",
    )
    train.add_argument(
        "--out",
        dest="output_dir",
        metavar="OUT",
        help=f"run folder (default: {d['output_dir']})",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in OUT/checkpoints, with its "
        "network and training settings (other values given for them are an error)",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        default=None,  # the library's default when not given
        help="let a new run replace the run OUT holds (its checkpoints and model.keras are deleted); "
        "without it a new run into such a folder stops with an error",
    )
    train.add_argument(
        "--sampler",
        choices=names(samplers),
        help=f"sampler of the final grid and GIF (default: {d['sampler']})",
    )
    train.add_argument(
        "--sample-steps", type=positive(int), help=f"(default: {d['sample_steps']})"
    )
    train.add_argument(
        "--grid-every",
        type=int,
        help="write a sample grid every N epochs into OUT/samples "
        f"(default: {d['grid_every']}, never)",
    )
    train.add_argument("--seed", type=int_in(0), help=f"(default: {d['seed']})")
    train.add_argument(
        "--devices",
        type=positive(int),
        help="data-parallel devices: tf.distribute.MirroredStrategy on TensorFlow, "
        f"keras.distribution.DataParallel on JAX (default: {d['devices']})",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="Keras fit verbosity: 0 silent, 1 progress bars (also over the "
        f"final pictures), 2 a line per epoch (default: {d['verbose']})",
    )
    add_backend(train)
    train.set_defaults(handler=run)
    return train


def read_config(path):
    """`{argument: value}` of a TOML file of `train` settings."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as file:
            config = tomllib.load(file)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config file {path} is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text, as TOML is") from None
    keys = config_keys()
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise UsageError(f"unknown keys in {path}: {', '.join(unknown)}")
    return {keys[key]: value for key, value in config.items()}


def settings(args):
    """The arguments of `training.train` given by `--config` and the flags (flags win)."""
    given = read_config(args.config) if args.config else {}
    for argument in training.DEFAULTS:
        value = getattr(args, argument, None)
        if argument in ONE_OR_PER_LEVEL and value is not None:
            value = one_or_list(value)
        if value is not None:
            given[argument] = value
    # "none" (a flag's, or a config file's: TOML has no null) switches the
    # weighting, the clipping or the thread choice off whatever the default.
    for argument in NONE_ABLE:
        if given.get(argument) == "none":
            given[argument] = None
    return given


def run(args):
    """Train as the flags say; returns the exit status (1: non-finite loss, 130: Ctrl-C)."""
    # A ValueError names the library's arguments; `main` names them as flags.
    result = training.train(**settings(args))
    if result.status == "non_finite":
        print(f"keras-ddpm train: error: {result.message}", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        print(f"Saved {result.checkpoint}; run again with --resume to continue.")
        return 130
    return 0
