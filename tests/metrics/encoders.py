"""A tiny image encoder and structured test images, so metric tests need no download."""

import keras
import numpy as np

SIZE = 16


def tiny_encoder(seed=0, size=SIZE):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="tiny_encoder",
    )


def smooth_images(num, seed=0, size=SIZE, channels=3):
    """Random low-frequency patterns in [-1, 1]: images with structure, unlike noise."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 2 * np.pi, size)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images = np.zeros((num, size, size, channels))
    for _ in range(3):
        fx, fy = rng.uniform(0.3, 1.5, (2, num, 1, 1, 1))
        phase = rng.uniform(0, 2 * np.pi, (num, 1, 1, channels))
        images += np.sin(fx * xx[..., None] + fy * yy[..., None] + phase)
    return np.tanh(images / 1.5).astype("float32")
