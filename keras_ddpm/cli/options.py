"""What the `keras-ddpm` subcommands share: the parser class, option types, common options.

Every subcommand module imports from here and from nowhere else in `cli/`.
"""

import argparse
import importlib.util
import inspect
import math
import os
import sys
import zipfile

import keras

from keras_ddpm import ops, samplers
from keras_ddpm.models import autoguidance
from keras_ddpm.samplers.dpm_solver_sampler import ORDERS as DPM_SOLVER_ORDERS
from keras_ddpm.samplers.sampler import SPACINGS

BACKENDS = ("tensorflow", "jax", "torch")
# DPM-Solver++ 2M at 20 steps: FID within 3 % of DDPM with all 1000 steps on a
# trained flowers model, at 1/50 of the network evaluations (the "Samplers and
# steps" guide); the command line's default for sampling and evaluation.
DEFAULT_SAMPLER, DEFAULT_STEPS = "dpm_solver", 20


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, not argparse's usage block: the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def names(module):
    """The names a registry module's `get` takes (`kd.samplers`, `kd.schedules`), in order.

    Read when a parser is built, so a newly registered sampler or schedule is
    offered by every command without being listed again.
    """
    return tuple(module.names())


PREDICTIONS = tuple(ops.PREDICTION_TYPES)


def positive(kind, word=None):
    """An argparse `type=`: a number of `kind` above 0 (and finite), else one line.

    With `word` ("none", "auto"), that word is accepted too, kept as text.
    """
    expected = (
        "a positive int" if kind is int else f"a positive, finite {kind.__name__}"
    )
    if word is not None:
        expected += f" or {word}"

    def parse(text):
        if word is not None and text == word:
            return text
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or (kind is float and math.isinf(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def int_in(low, high=None):
    """An argparse `type=`: an int >= `low` (and <= `high`), else one line."""
    expected = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def one_or_list(values):
    """A `nargs="+"` flag's values: the one value alone, or the list of several."""
    return values[0] if len(values) == 1 else values


def add_backend(parser):
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else Keras' default)",
    )


def add_sampling_arguments(parser, exclude=()):
    """`--sampler`, `--steps`, `--eta`, `--order`, `--spacing` and `--seed`, read by `generate`.

    `exclude`: sampler names the command cannot use, left out of `--sampler`'s choices.
    """
    parser.add_argument(
        "--sampler",
        choices=[name for name in names(samplers) if name not in exclude],
        default=DEFAULT_SAMPLER,
        help=f"(default: {DEFAULT_SAMPLER}, DPM-Solver++ 2M)",
    )
    parser.add_argument(
        "--steps",
        type=positive(int),
        default=DEFAULT_STEPS,
        help=f"(default: {DEFAULT_STEPS})",
    )
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default: 0)")
    parser.add_argument(
        "--order",
        type=int,
        choices=DPM_SOLVER_ORDERS,
        help="DPM-Solver++ order (default: 2)",
    )
    parser.add_argument(
        "--spacing",
        choices=SPACINGS,
        help="timesteps visited (default: the sampler's own; karras for euler and heun)",
    )
    parser.add_argument("--seed", type=int_in(0), default=0, help="(default: 0)")


def add_class_arguments(parser):
    """`--label` and `--guidance`, read by `class_options`, for conditional models."""
    parser.add_argument(
        "--label",
        help="class to sample, an index or a name (conditional models; default: "
        "none, unconditional)",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        default=1.0,
        help="classifier-free guidance scale; above 1 sharper, more typical "
        "images of the class (default: 1)",
    )


def add_guide_arguments(parser):
    """`--guide`, `--guide-scale` and `--guidance-interval`, read by `guide_options`."""
    parser.add_argument(
        "--guide",
        metavar="MODEL",
        help="autoguidance: a weaker version of --model to guide it with, e.g. "
        "the guide.keras that keras-ddpm train writes beside model.keras",
    )
    parser.add_argument(
        "--guide-scale",
        type=float,
        metavar="SCALE",
        help="autoguidance scale, with --guide; 1 samples --model alone "
        f"(default: {autoguidance.DEFAULT_SCALE:g}, as keras-ddpm train)",
    )
    parser.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="guide only the denoising steps at timesteps LOW to HIGH, and run "
        "the model alone at the others; 0 T guides every step (default with "
        "--guide: 0 to 0.6 T, 0 600 for T = 1000, as keras-ddpm train; else "
        "every step)",
    )


def guide_options(args):
    """`guide`, `guide_scale` and `guidance_interval` of `generate` for `--guide`.

    Without `--guide`: `{}` (`--guide-scale` alone is an error); a scale or
    interval not given is left to `generate`'s defaults, those with which
    `keras-ddpm train` guides its own pictures.
    """
    if args.guide_scale is not None and not args.guide:
        raise UsageError("--guide-scale needs --guide (the model to guide with)")
    if not args.guide:
        return {}
    return {
        "guide": load_model(args.guide, "--guide"),
        "guide_scale": args.guide_scale,
        "guidance_interval": args.guidance_interval,
    }


def class_index(model, text):
    """The class index `text` names: an index, or one of the model's class names."""
    if model.num_classes is None:
        raise UsageError("--label needs a class-conditional model; this one has none")
    names = list(model.class_names or [])
    if text in names:
        return names.index(text)
    try:
        index = int(text)
    except ValueError:
        known = f"one of {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}"
        raise UsageError(
            f"--label {text!r} is not a class of this model: expected an index in "
            f"[0, {model.num_classes})" + (f" or {known}" if names else "")
        ) from None
    if not 0 <= index < model.num_classes:
        raise UsageError(
            f"--label {index} is out of range: expected [0, {model.num_classes})"
        )
    return index


def class_options(model, args):
    """`labels` and `guidance_scale` of `generate` from `--label` and `--guidance`."""
    if args.guidance != 1.0 and model.num_classes is None:
        raise UsageError(
            "--guidance needs a class-conditional model; this one has none"
        )
    if not math.isfinite(args.guidance):
        raise UsageError(f"--guidance must be a finite float, got {args.guidance}")
    options = {}
    if args.label is not None:
        options["labels"] = class_index(model, args.label)
    if model.num_classes is not None:
        options["guidance_scale"] = args.guidance
    return options


def sampler_config(args):
    """The sampler config of `--sampler`, with the options that sampler takes.

    `--eta` reaches a sampler with an `eta` argument and `--order` one with an
    `order`; `--spacing`, when given, every sampler. An option given to a
    sampler that does not take it is a `UsageError`.
    """
    sampler = type(samplers.get(args.sampler))
    parameters = inspect.signature(sampler).parameters
    config = {"name": args.sampler}
    if "eta" in parameters:
        config["eta"] = args.eta
    elif getattr(args, "eta", 0.0):
        raise UsageError(f"--eta is an option of ddim, not of {args.sampler}")
    order = getattr(args, "order", None)
    if order is not None:
        if "order" not in parameters:
            raise UsageError(
                f"--order is an option of dpm_solver, not of {args.sampler}"
            )
        config["order"] = order
    if getattr(args, "spacing", None) is not None:
        config["spacing"] = args.spacing
    return config


def sampling_options(args):
    """The `generate` arguments of the sampling options and `--raw-weights`."""
    return dict(
        sampler=sampler_config(args),
        steps=args.steps,
        seed=args.seed,
        use_ema=not args.raw_weights,
        progress=True,
    )


def generate(model, args, **options):
    """`args.num` images from `model` as the sampling arguments and `--raw-weights` say."""
    return model.generate(args.num, **sampling_options(args), **options)


def check_output_files(files):
    """Fail before any work when the files a command will write cannot be written.

    Args:
        files: `{flag: (path, extension)}`, e.g. `{"--grid": ("samples.png",
            ".png")}`; a path of None (a flag not given) is skipped.

    Raises:
        UsageError: for a path without its extension (so that a grid and a
            GIF never overwrite each other), one that names a folder, or one
            whose folder could not be written (nor, where missing, created
            as the command would: the nearest folder that exists is
            checked, and nothing is created).
    """
    for name, (path, extension) in files.items():
        if path is None:
            continue
        if not path.lower().endswith(extension):
            raise UsageError(f"{name} must name a {extension} file, got {path}")
        if os.path.isdir(path):
            raise UsageError(f"{name} names a folder, not a {extension} file: {path}")
        folder = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(folder):
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"{name} {path}: cannot write into {folder}")


def load_model(path, flag="--model"):
    """The model saved at `path` (given as `flag`), or a `UsageError` that says why it cannot be read."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} names a folder, not a .keras file: {path}")
    if not os.path.isfile(path):
        raise UsageError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise UsageError(
            f"could not load model {path}: not a .keras file (a zip archive "
            "written by model.save)"
        )
    try:
        return keras.saving.load_model(path)
    except Exception as error:
        message = (
            str(error).strip().splitlines()[0]
            if str(error).strip()
            else error.__class__.__name__
        )
        raise UsageError(f"could not load model {path}: {message}") from None


def select_backend(args, argv):
    """Make Keras use `--backend`: Keras is loaded by now, so re-execute once with it."""
    wanted = getattr(args, "backend", None)
    if wanted and keras.backend.backend() != wanted:
        if importlib.util.find_spec(wanted) is None:  # jax, torch or tensorflow
            raise UsageError(
                f"--backend {wanted}: {wanted} is not installed "
                f"(pip install 'keras-ddpm[{wanted}]')"
            )
        os.environ["KERAS_BACKEND"] = wanted
        os.execv(sys.executable, [sys.executable, "-m", "keras_ddpm.cli", *argv])
