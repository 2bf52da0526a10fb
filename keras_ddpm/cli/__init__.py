"""The `keras-ddpm` command line (`keras-ddpm --help` or `python -m keras_ddpm.cli --help`)."""

from keras_ddpm.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
