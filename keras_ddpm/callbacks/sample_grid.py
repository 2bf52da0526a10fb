import os

import keras

from keras_ddpm.utils import check_int
from keras_ddpm.viz import save_grid


@keras.saving.register_keras_serializable(package="keras_ddpm")
class SampleGrid(keras.callbacks.Callback):
    """Write a grid of samples every few epochs, always from the same noise.

    Because the seed is fixed, successive grids show the same images improving.

    Args:
        directory: folder for `epoch_0001.png`, `epoch_0002.png`, ...
        every_n_epochs: int, epochs between grids. Defaults to 1.
        rows: int, grid rows. Defaults to 4.
        cols: int, grid columns. Defaults to 8.
        sampler: sampler name, config or instance. Defaults to `"ddim"`.
        steps: int, sampling steps. Defaults to 50.
        seed: int, seed of the noise. Defaults to 0.
        scale: int, nearest-neighbour upscaling of the PNG. Defaults to 1.

    Raises:
        ValueError: if `every_n_epochs` is not a positive int.

    Example:

    ```python
    import keras_ddpm as kd

    callback = kd.callbacks.SampleGrid("samples/", every_n_epochs=5, steps=25)
    # model.fit(ds, epochs=50, callbacks=[callback])
    ```
    """

    def __init__(
        self,
        directory,
        every_n_epochs=1,
        rows=4,
        cols=8,
        sampler="ddim",
        steps=50,
        seed=0,
        scale=1,
    ):
        super().__init__()
        self.directory = os.fspath(directory)
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, low=1)
        self.rows, self.cols = rows, cols
        self.sampler, self.steps, self.seed, self.scale = sampler, steps, seed, scale
        self.last_path = None

    def get_config(self):
        return {
            "directory": self.directory,
            "every_n_epochs": self.every_n_epochs,
            "rows": self.rows,
            "cols": self.cols,
            "sampler": self.sampler,
            "steps": self.steps,
            "seed": self.seed,
            "scale": self.scale,
        }

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        images = self.model.generate(
            self.rows * self.cols,
            sampler=self.sampler,
            steps=self.steps,
            seed=self.seed,
        )
        self.last_path = os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png")
        save_grid(
            images, self.last_path, rows=self.rows, cols=self.cols, scale=self.scale
        )
