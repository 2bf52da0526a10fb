import time

import keras

from keras_ddpm.callbacks.step_counter import StepCounter
from keras_ddpm.utils import check_float


@keras.saving.register_keras_serializable(package="keras_ddpm")
class TimeLimit(keras.callbacks.Callback):
    """Stop training cleanly once a wall-clock budget is spent.

    The clock starts when `fit` starts (compilation included, since that is
    what the user waits for). After every batch the callback checks the time
    and, once `minutes` have passed, asks Keras to stop: the current epoch
    ends early, `on_train_end` runs, and callbacks listed after this one (a
    `Checkpoint`, a `HistoryFile`) save as they do at any end of training.
    `stopped_step` and `elapsed` tell how far training got. When `fit` runs
    several steps per call (`compile(steps_per_execution=N)`), the time is
    checked once per call and `stopped_step` still counts optimizer steps
    (read from the optimizer when `fit` ends).

    Args:
        minutes: float > 0, the budget for `fit`, in minutes.
        verbose: bool, print one line when the budget stops training.
            Defaults to True.

    Raises:
        ValueError: if `minutes` is not a finite number > 0.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    images = np.zeros((64, 8, 8, 3), "float32")
    limit = kd.callbacks.TimeLimit(minutes=0.05)  # three seconds
    model.fit(images, batch_size=8, epochs=1000, callbacks=[limit], verbose=0)
    limit.stopped_step  # the optimizer steps taken within the budget
    ```
    """

    def __init__(self, minutes, verbose=True):
        super().__init__()
        self.minutes = check_float("minutes", minutes, low=0.0, low_inclusive=False)
        self.verbose = bool(verbose)
        self.stopped_step = None
        self.elapsed = None
        self._start = None
        self._counter = StepCounter()

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        self._counter.train_begin(self.model)
        self.stopped_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self._counter.epoch_begin(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._counter.after(batch, self.params)
        self.elapsed = time.monotonic() - self._start
        if self.elapsed >= 60.0 * self.minutes and not self.model.stop_training:
            self.model.stop_training = True
            self.stopped_step = self._counter.steps

    def on_train_end(self, logs=None):
        if self.stopped_step is None:
            return
        self.stopped_step = self._counter.train_end(self.model)
        if self.verbose:
            print(
                f"\nTime limit of {self.minutes:g} min reached after "
                f"{self.stopped_step} steps: stopped."
            )

    def get_config(self):
        return {"minutes": self.minutes, "verbose": self.verbose}
