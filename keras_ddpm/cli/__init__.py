"""The `keras-ddpm` command line (`python -m keras_ddpm.cli.main --help`)."""

from keras_ddpm.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
