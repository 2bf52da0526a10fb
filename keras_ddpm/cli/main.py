"""The `keras-ddpm` command line."""

import argparse
import sys

from keras_ddpm.version import __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-ddpm",
        description=(
            "Denoising diffusion models for Keras 3 (TensorFlow, JAX or PyTorch: "
            "choose with the KERAS_BACKEND environment variable)."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-ddpm {__version__}"
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = subcommands.add_parser(
        "info", help="print the Keras backend and library versions"
    )
    info.set_defaults(handler=_info)
    return parser


def _info(args):
    import keras
    import numpy

    print(f"keras-ddpm {__version__}")
    print(f"keras {keras.__version__} (backend: {keras.backend.backend()})")
    print(f"numpy {numpy.__version__}")
    return 0


def main(argv=None):
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
