"""`keras-ddpm info`: versions and backend, and what a saved model is."""

import keras
import numpy

from keras_ddpm.cli.options import add_backend, load_model
from keras_ddpm.version import __version__


def add_parser(commands):
    """Register `info` on the `keras-ddpm` subcommands."""
    info = commands.add_parser(
        "info",
        help="print the Keras backend and library versions (and describe a model)",
    )
    info.add_argument(
        "--model",
        help="also describe this .keras file: image shape, parameters, schedule, "
        "prediction, sampler and classes",
    )
    add_backend(info)
    info.set_defaults(handler=run)
    return info


def run(args):
    """Print the versions (and the model's description); returns the exit status."""
    print(f"keras-ddpm {__version__}")
    print(f"keras {keras.__version__} (backend: {keras.backend.backend()})")
    print(f"numpy {numpy.__version__}")
    if args.model:
        describe(load_model(args.model), args.model)
    return 0


def describe(model, path):
    """Print what `model`, loaded from `path`, is."""
    height, width, channels = model.image_shape
    print(f"model {path}")
    print(f"  images: {height}x{width}x{channels}")
    print(f"  parameters: {model.network.count_params():,}")
    schedule = type(model.schedule).__name__
    print(f"  schedule: {schedule}, {model.schedule.timesteps} timesteps")
    print(f"  prediction: {model.prediction}")
    print(f"  sampler: {type(model.sampler).__name__}")
    if model.num_classes is None:
        print("  classes: none (unconditional)")
        return
    names = model.class_names or [str(k) for k in range(model.num_classes)]
    print(f"  classes: {model.num_classes} (label dropout {model.label_dropout:g})")
    for index, name in enumerate(names):
        print(f"    {index}: {name}")
