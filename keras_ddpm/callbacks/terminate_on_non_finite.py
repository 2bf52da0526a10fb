import math

import keras

from keras_ddpm.callbacks.step_counter import batches_done, optimizer_steps


@keras.saving.register_keras_serializable(package="keras_ddpm")
class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    Like `keras.callbacks.TerminateOnNaN`, but it says where: `message` (also
    printed, on one line, unless `verbose=False`) names the optimizer step, the
    epoch and the batch. A `Checkpoint` callback in the same `fit` refuses to
    save non-finite weights, so the last good checkpoint is kept.

    The logged loss is the running mean of the epoch, so it turns non-finite at
    exactly the batch whose own loss first does. When `fit` runs several
    steps per call (`compile(steps_per_execution=N)`), the loss is seen once
    per call: the message then names the call's batches and the step after
    it.

    Args:
        monitor: str, the log entry watched. Defaults to `"loss"`.
        verbose: bool, print the message when training stops. Defaults to True.

    Example:

    ```python
    import keras_ddpm as kd

    stop = kd.callbacks.TerminateOnNonFinite()
    # model.fit(ds, callbacks=[stop, kd.callbacks.Checkpoint("checkpoints")])
    # if stop.step is not None: print(stop.message)
    ```
    """

    def __init__(self, monitor="loss", verbose=True):
        super().__init__()
        self.monitor = monitor
        self.verbose = verbose
        self.step = None
        self.message = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or self.step is not None:
            return
        value = float(keras.ops.convert_to_numpy(value))
        if math.isfinite(value):
            return
        self.step = optimizer_steps(self.model)
        last = batches_done(batch, self.params)
        first = max(batch + 2 - self.model.steps_per_execution, 1)
        where = f"batch {last}" if first >= last else f"batches {first}-{last}"
        self.message = (
            f"{self.monitor} became {value} at step {self.step} (epoch "
            f"{self._epoch + 1}, {where}): training stopped."
        )
        if self.verbose:
            print(self.message, flush=True)
        self.model.stop_training = True

    def get_config(self):
        return {"monitor": self.monitor, "verbose": self.verbose}
