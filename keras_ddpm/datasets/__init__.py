"""Image datasets as `tf.data` pipelines: TFDS, folders, arrays and synthetic flowers."""

from keras_ddpm.datasets.loader import load, preprocess
from keras_ddpm.datasets.synthetic_flowers import (
    FLOWER_COLOURS,
    flower_colour,
    render_flower,
    synthetic_flowers,
)

__all__ = [
    "load",
    "preprocess",
    "synthetic_flowers",
    "render_flower",
    "flower_colour",
    "FLOWER_COLOURS",
]
