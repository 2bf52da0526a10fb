"""keras-ddpm: denoising diffusion models for Keras 3 on TensorFlow, JAX and PyTorch."""

from keras_ddpm import (
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
from keras_ddpm.models.diffusion_model import DiffusionModel
from keras_ddpm.version import __version__

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
