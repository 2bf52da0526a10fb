import math
import time

import keras

from keras_ddpm.callbacks.step_counter import StepCounter
from keras_ddpm.utils import check_float, check_int


def has_float_rate(optimizer):
    """Whether `optimizer` has a plain learning rate (a variable), not a schedule."""
    return isinstance(getattr(optimizer, "_learning_rate", None), keras.Variable)


@keras.saving.register_keras_serializable(package="keras_ddpm")
class BudgetCosineDecay(keras.callbacks.Callback):
    """Warm the learning rate up, then decay it to 0 along a wall-clock budget.

    A cosine decay needs the run's length. When a run is bounded by time (a
    `TimeLimit`), the number of steps that fit is only known afterwards, and a
    few timed steps misjudge it on a machine whose speed drifts. This callback
    follows the clock instead: after `warmup_steps` steps of linear warmup
    from 0, the rate at a fraction f of the budget spent is
    `learning_rate · (1 + cos(π f)) / 2`, reaching 0 when the budget ends,
    however many steps that took. The clock starts when `fit` starts, as
    `TimeLimit`'s does, and the warmup counts the steps of this `fit` (pass
    `warmup_steps=0` to decay a resumed run over a new budget). When `fit`
    runs several steps per call (`compile(steps_per_execution=N)`), the rate
    is set before each call, for its first step: the warmup still counts
    optimizer steps, in stairs of N.

    The optimizer must have a plain (float) learning rate, which this callback
    assigns before a batch whenever the target has moved by `resolution` of
    the peak since the last assignment (every batch during the warmup), so
    about `1 / resolution` assignments follow the warmup. With JAX, a
    callback's access to the model syncs the training state back to the
    variables (Keras does it, so that the assignment is the rate trained
    with), which is why they are not made on every batch.

    Args:
        learning_rate: float > 0, the peak rate, reached after the warmup.
        minutes: float > 0, the budget along which the rate decays.
        warmup_steps: int >= 0, steps of linear warmup. Defaults to 0.
        resolution: float in (0, 1], the change (a share of the peak) that
            triggers an assignment after the warmup. Defaults to 0.005.

    Raises:
        ValueError: for an argument out of range, or (when training starts)
            an optimizer whose learning rate is a schedule or a callable.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    decay = kd.callbacks.BudgetCosineDecay(1e-3, minutes=0.05, warmup_steps=10)
    limit = kd.callbacks.TimeLimit(minutes=0.05, verbose=False)
    images = np.zeros((64, 8, 8, 3), "float32")
    model.fit(images, batch_size=8, epochs=1000, callbacks=[decay, limit], verbose=0)
    float(model.optimizer.learning_rate)  # close to 0: the budget is spent
    ```

    References:
        - [Loshchilov & Hutter, 2017. SGDR: Stochastic Gradient Descent with
          Warm Restarts](https://arxiv.org/abs/1608.03983)
    """

    def __init__(self, learning_rate, minutes, warmup_steps=0, resolution=0.005):
        super().__init__()
        self.learning_rate = check_float(
            "learning_rate", learning_rate, low=0.0, low_inclusive=False
        )
        self.minutes = check_float("minutes", minutes, low=0.0, low_inclusive=False)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, low=0)
        self.resolution = check_float("resolution", resolution, 0.0, 1.0, False)
        self._start = None
        self._counter = StepCounter()
        self._assigned = None

    def rate(self, steps, elapsed):
        """The learning rate this callback sets at a point of the run.

        Args:
            steps: int, steps taken in this `fit` (for the warmup).
            elapsed: float, seconds since `fit` started.

        Returns:
            The rate, a float: 0 once `elapsed` reaches the budget.
        """
        fraction = min(max(elapsed / (60.0 * self.minutes), 0.0), 1.0)
        value = self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * fraction))
        if steps < self.warmup_steps:
            value *= (steps + 1) / self.warmup_steps
        return value

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not has_float_rate(optimizer):
            current = getattr(optimizer, "_learning_rate", None)
            raise ValueError(
                "BudgetCosineDecay needs an optimizer with a float learning rate, "
                f"got {type(current).__name__}; compile with e.g. AdamW(1e-3)."
            )
        self._start = time.monotonic()
        self._counter.train_begin(self.model)
        self._assigned = None

    def on_epoch_begin(self, epoch, logs=None):
        self._counter.epoch_begin(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        steps = self._counter.before(batch)
        value = self.rate(steps, time.monotonic() - self._start)
        moved = (
            self._assigned is None
            or steps <= self.warmup_steps
            or abs(value - self._assigned) >= self.resolution * self.learning_rate
        )
        if moved:
            self.model.optimizer.learning_rate = value
            self._assigned = value

    def on_train_batch_end(self, batch, logs=None):
        self._counter.after(batch, self.params)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "minutes": self.minutes,
            "warmup_steps": self.warmup_steps,
            "resolution": self.resolution,
        }
