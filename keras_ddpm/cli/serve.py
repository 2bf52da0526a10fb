"""`keras-ddpm serve`: the web demo of a saved model."""

import socket

from keras_ddpm.cli.options import (
    UsageError,
    add_backend,
    add_guide_arguments,
    guide_options,
    int_in,
    load_model,
    positive,
)


def add_parser(commands):
    """Register `serve` on the `keras-ddpm` subcommands."""
    serve = commands.add_parser(
        "serve",
        help="try a saved model in the browser (web demo)",
        description=(
            "Serve a web page that generates images with a saved model (grid, "
            "progress, denoising animation) and reconstructs uploaded pictures. "
            "Needs Gradio: pip install 'keras-ddpm[demo]'."
        ),
    )
    serve.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; "
        "0.0.0.0 opens it to the network)",
    )
    serve.add_argument(
        "--port", type=int_in(1, 65535), default=7860, help="(default: 7860)"
    )
    serve.add_argument(
        "--max-images",
        type=positive(int),
        default=16,
        help="most images per request (default: 16)",
    )
    serve.add_argument(
        "--max-steps",
        type=positive(int),
        default=250,
        help="most denoising steps per request, capped at the schedule's T (default: 250)",
    )
    serve.add_argument(
        "--batch-size",
        type=positive(int),
        default=4,
        help="images per compiled sampling call; the grid updates after each (default: 4)",
    )
    serve.add_argument(
        "--max-queue",
        type=positive(int),
        default=32,
        help="most requests waiting for the model; more are turned away (default: 32)",
    )
    add_guide_arguments(serve)
    add_backend(serve)
    serve.set_defaults(handler=run)
    return serve


def _check_address(host, port):
    """Fail in one line, before the model loads, where the page cannot listen.

    The server binds later: a port taken in between still fails there.
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as error:
        raise UsageError(f"--host {host} names no address: {error.strerror}") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        try:
            probe.bind(address)
        except OSError as error:
            raise UsageError(
                f"cannot listen on {host}:{port}: {error.strerror}; give another "
                "--port (or --host)"
            ) from None


def run(args):
    """Load the model, build the demo and serve it until Ctrl-C."""
    import os

    from keras_ddpm.demo.app import _gradio, build_demo, launch_demo

    if args.guidance_interval and not args.guide:
        raise UsageError("--guidance-interval needs --guide (the model to guide with)")
    guided = guide_options(args)
    _check_address(args.host, args.port)
    _gradio()  # fail on a missing extra before spending time loading the model
    model = load_model(args.model)
    demo = build_demo(
        model,
        max_images=args.max_images,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        max_queue=args.max_queue,
        model_name=os.path.basename(args.model),
        **guided,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"keras-ddpm serve: listening on {args.host}: anyone who can reach this "
            "machine can use the page."
        )
    print(
        f"keras-ddpm serve: {args.model} at http://{args.host}:{args.port}/ "
        "(Ctrl-C to stop)",
        flush=True,
    )
    launch_demo(demo, host=args.host, port=args.port, block=True)
    return 0
