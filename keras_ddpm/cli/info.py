"""`keras-ddpm info`: the library, Keras and NumPy versions, and the backend."""

import keras
import numpy

from keras_ddpm.cli.options import add_backend
from keras_ddpm.version import __version__


def add_parser(commands):
    """Register `info` on the `keras-ddpm` subcommands."""
    info = commands.add_parser(
        "info", help="print the Keras backend and library versions"
    )
    add_backend(info)
    info.set_defaults(handler=run)
    return info


def run(args):
    """Print the versions; returns the exit status."""
    print(f"keras-ddpm {__version__}")
    print(f"keras {keras.__version__} (backend: {keras.backend.backend()})")
    print(f"numpy {numpy.__version__}")
    return 0
