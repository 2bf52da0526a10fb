"""`keras-ddpm info`: versions and backend, and what a saved model is."""

import importlib.metadata
import os
import sys

import keras
import numpy

from keras_ddpm.cli.options import add_backend, load_model
from keras_ddpm.version import __version__

# Each backend's distributions on PyPI, the first installed one read (else
# the imported module's own version).
BACKEND_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-macos"),
    "jax": ("jax",),
    "torch": ("torch",),
}


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
    backend = keras.backend.backend()
    versions = {name: installed_version(name) for name in BACKEND_DISTRIBUTIONS}
    version = versions.get(backend) or getattr(
        sys.modules.get(backend), "__version__", "(version unknown)"
    )
    print(f"keras-ddpm {__version__}")
    print(f"keras {keras.__version__} (backend: {backend} {version})")
    others = [f"{name} {v}" for name, v in versions.items() if v and name != backend]
    print(f"other backends installed: {', '.join(others) or 'none'}")
    print(f"numpy {numpy.__version__}")
    print(f"devices: {', '.join(devices(backend))} ({os.cpu_count()} CPU cores)")
    if args.model:
        describe(load_model(args.model), args.model)
    return 0


def installed_version(backend):
    """The installed version of `backend`'s package, or None."""
    for distribution in BACKEND_DISTRIBUTIONS[backend]:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def devices(backend):
    """The devices `backend` computes on, as `cpu:0`, `gpu:0`, ...

    Never raises: where the query fails (JAX asked for a platform that does
    not start, say), the error is named instead.
    """
    if backend in ("numpy", "openvino"):  # Keras lists no devices for these
        return ["cpu"]
    if backend == "torch":  # Keras has no device listing for PyTorch
        import torch

        if os.environ.get("KERAS_TORCH_DEVICE"):
            return [os.environ["KERAS_TORCH_DEVICE"]]
        gpus = [f"cuda:{k}" for k in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if not gpus and mps is not None and mps.is_available():
            gpus = ["mps"]
        return gpus or ["cpu:0"]
    try:
        return [str(device) for device in keras.distribution.list_devices()]
    except Exception as error:  # anything a device query raises, named
        first = (str(error).splitlines() or [""])[0]
        return [f"not listed ({type(error).__name__}: {first})"]


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
