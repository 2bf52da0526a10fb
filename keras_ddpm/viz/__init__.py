"""Pictures of what a model makes: grids, denoising GIFs and strips, training curves."""

from keras_ddpm.viz.images import (
    image_grid,
    save_class_grid,
    save_gif,
    save_grid,
    save_samples,
    save_strip,
    to_uint8,
)
from keras_ddpm.viz.plots import plot_history

__all__ = [
    "image_grid",
    "save_grid",
    "save_gif",
    "save_strip",
    "save_samples",
    "save_class_grid",
    "plot_history",
    "to_uint8",
]
