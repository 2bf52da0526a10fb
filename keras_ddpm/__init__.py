"""keras-ddpm: denoising diffusion models for Keras 3 on TensorFlow, JAX and PyTorch."""

import sys

from keras_ddpm.utils import check_backend_installed

if "keras" not in sys.modules:  # else Keras has loaded its backend already
    check_backend_installed()  # before Keras' own import fails without saying why

from keras_ddpm import (  # noqa: E402
    callbacks,
    datasets,
    distribute,
    layers,
    metrics,
    models,
    ops,
    samplers,
    schedules,
    training,
    viz,
)
from keras_ddpm.models.diffusion_model import DiffusionModel  # noqa: E402
from keras_ddpm.version import __version__  # noqa: E402

__all__ = [
    "DiffusionModel",
    "callbacks",
    "datasets",
    "distribute",
    "layers",
    "metrics",
    "models",
    "ops",
    "samplers",
    "schedules",
    "training",
    "viz",
    "__version__",
]
