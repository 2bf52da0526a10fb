"""The `keras-ddpm` command line: train, sample, reconstruct, inpaint, interpolate, evaluate, serve,
info.

Each subcommand lives in its own module (`add_parser` and `run`); this one only
assembles the parser and dispatches. Errors a user can fix (bad arguments,
missing files, unreadable models) print one line on stderr and exit with status
2, without a traceback.
"""

import argparse
import re
import sys
import warnings

from keras_ddpm.cli import (
    evaluate,
    info,
    inpaint,
    interpolate,
    reconstruct,
    sample,
    serve,
    train,
)
from keras_ddpm.cli.options import Parser, UsageError, select_backend
from keras_ddpm.version import __version__

# The commands whose options take the names of the library's arguments they
# pass on, so that a library error's `argument` is that command's flag
# (`evaluate`'s encoder arguments are not its flags').
FLAG_NAMED = ("train", "sample", "reconstruct", "inpaint", "interpolate", "serve")

# In the order `keras-ddpm --help` lists them.
COMMANDS = (train, sample, reconstruct, inpaint, interpolate, evaluate, serve, info)


def build_parser():
    """The argument parser of `keras-ddpm` (also used to render its `--help`).

    Returns:
        An `argparse.ArgumentParser` with the subcommands `train`, `sample`,
        `reconstruct`, `inpaint`, `interpolate`, `evaluate`, `serve` and `info`.

    Example:

    ```python
    from keras_ddpm.cli import build_parser

    args = build_parser().parse_args(["sample", "--model", "runs/flowers/model.keras"])
    args.steps  # 20
    ```
    """
    parser = Parser(
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
        dest="command", metavar="COMMAND", parser_class=Parser
    )
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv=None):
    """Run the command line in this process.

    Errors a user can fix print one line on stderr and give status 2, without a
    traceback.

    Args:
        argv: list of str, the arguments after `keras-ddpm`; None reads
            `sys.argv[1:]`.

    Returns:
        The exit status: 0 on success, 2 for a usage error (or when memory
        runs out), 1 when the training loss became NaN or infinite, 130 when
        training was interrupted with Ctrl-C (after saving a checkpoint).

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
    args, extras = parser.parse_known_args(argv)
    if extras:  # named by the command they were given to, with its --help
        given_to_command = args.command is not None and argv.index(
            extras[0]
        ) > argv.index(args.command)
        command = _command(parser, args.command) if given_to_command else parser
        command.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        select_backend(args, argv)
        with warnings.catch_warnings():  # restores `showwarning` when done
            warnings.showwarning = _one_line_warning(args.command)
            return args.handler(args)
    except (UsageError, ValueError, OSError, ImportError) as error:
        message = str(error)
        if args.command in FLAG_NAMED:
            message = in_flags(parser, args.command, message)
        print(f"keras-ddpm {args.command}: error: {message}", file=sys.stderr)
        return 2
    except MemoryError as error:  # numpy's names the array it could not allocate
        detail = f" ({error})" if str(error) else ""
        print(
            f"keras-ddpm {args.command}: error: out of memory{detail}; lower the "
            "image size, the batch size or the number of images",
            file=sys.stderr,
        )
        return 2


def _one_line_warning(command):
    """A `warnings.showwarning` that prints `keras-ddpm COMMAND: warning: message`.

    Python's own shows the warning's file, line number and source line, which
    mean nothing to a user of the command line.
    """

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"keras-ddpm {command}: warning: {message}", file=file or sys.stderr)

    return show


def in_flags(parser, command, message):
    """`message` with the library's argument names (`guide_scale`) named as `command`'s flags.

    A library error names its arguments in backticks; where `command` has an
    option of that destination, the flag (`--guide-scale`) replaces it.
    """
    flags = {
        action.dest: max(action.option_strings, key=len)
        for action in _command(parser, command)._actions
        if action.option_strings
    }
    return re.sub(
        r"`(\w+)`", lambda match: flags.get(match.group(1), match.group(0)), message
    )


def _command(parser, command):
    """The parser of `command`, a subcommand of `parser`."""
    subcommands = next(
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return subcommands.choices[command]


if __name__ == "__main__":
    sys.exit(main())
