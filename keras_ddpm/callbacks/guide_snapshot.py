import time

import keras

from keras_ddpm.callbacks.step_counter import optimizer_steps
from keras_ddpm.utils import atomic_path, check_float, check_int


@keras.saving.register_keras_serializable(package="keras_ddpm")
class GuideSnapshot(keras.callbacks.Callback):
    """Save the model once, part-way through training, as a guide for autoguidance.

    Autoguidance (Karras et al. 2024) steers a model away from the errors of
    a weaker version of itself; an earlier state of the same training run is
    such a version, and costs nothing to keep. At the end of the first epoch
    that ends after `after_minutes` of this `fit` or after `after_steps` of
    its optimizer steps (whichever comes first when both are given), the
    whole model is saved to `filepath` (written to a temporary file and
    renamed into place), EMA weights included; later
    `model.generate(..., guide=keras.saving.load_model(filepath))` samples
    with it. Epoch ends are where every backend's training state is in the
    model's variables. `saved_step` tells the optimizer step of the snapshot
    (None until it is taken).

    Args:
        filepath: str, where to write the guide (a `.keras` file).
        after_minutes: float > 0 or None, take the snapshot at the first
            epoch end after this much wall time of `fit`.
        after_steps: int >= 0 or None, take it at the first epoch end after
            this many optimizer steps of `fit`. Give this, `after_minutes`
            or both.
        verbose: bool, print a line when the snapshot is written. Defaults to
            False.

    Raises:
        ValueError: if neither `after_minutes` nor `after_steps` is given, one
            is out of range, or `filepath` does not end in `.keras`.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    images = np.zeros((64, 8, 8, 3), "float32")
    snapshot = kd.callbacks.GuideSnapshot("guide.keras", after_steps=16)
    model.fit(images, batch_size=8, epochs=4, callbacks=[snapshot], verbose=0)
    guide = keras.saving.load_model("guide.keras")  # the model after 2 epochs
    images = model.generate(4, steps=5, seed=0, guide=guide)
    ```

    References:
        Karras et al., "Guiding a Diffusion Model with a Bad Version of
        Itself", NeurIPS 2024 (arXiv:2406.02507).
    """

    def __init__(self, filepath, after_minutes=None, after_steps=None, verbose=False):
        super().__init__()
        filepath = str(filepath)
        if not filepath.endswith(".keras"):
            raise ValueError(f"`filepath` must end in .keras, got {filepath!r}.")
        if after_minutes is None and after_steps is None:
            raise ValueError(
                "Give `after_minutes`, `after_steps` or both: when to take the "
                "snapshot."
            )
        self.filepath = filepath
        self.after_minutes = (
            None
            if after_minutes is None
            else check_float(
                "after_minutes", after_minutes, low=0.0, low_inclusive=False
            )
        )
        self.after_steps = (
            None
            if after_steps is None
            else check_int("after_steps", after_steps, low=0)
        )
        self.verbose = bool(verbose)
        self.saved_step = None
        self._start = None
        self._first_step = 0

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        self._first_step = optimizer_steps(self.model)
        self.saved_step = None

    def on_epoch_end(self, epoch, logs=None):
        if self.saved_step is not None:
            return
        step = optimizer_steps(self.model)
        due = (
            self.after_steps is not None and step - self._first_step >= self.after_steps
        ) or (
            self.after_minutes is not None
            and time.monotonic() - self._start >= 60.0 * self.after_minutes
        )
        if not due:
            return
        with atomic_path(self.filepath) as temporary:
            self.model.save(temporary)
        self.saved_step = step
        if self.verbose:
            print(f"\nSaved the guide {self.filepath} at step {step}.")

    def get_config(self):
        return {
            "filepath": self.filepath,
            "after_minutes": self.after_minutes,
            "after_steps": self.after_steps,
            "verbose": self.verbose,
        }
