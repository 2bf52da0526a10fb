import keras


def optimizer_steps(model):
    """`model.optimizer.iterations` as an int."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def batches_done(end, params):
    """Batches of the epoch done after a call that ended at batch index `end`.

    Keras gives the last call of an epoch an `end` N - 1 past its first batch
    even when fewer were left; where it knows the epoch's batches
    (`params["steps"]`), the count stops there.
    """
    per_epoch = (params or {}).get("steps")
    return min(end + 1, per_epoch) if per_epoch else end + 1


class StepCounter:
    """The optimizer steps one `fit` has taken, for callbacks' batch hooks.

    With `steps_per_execution` N > 1 Keras calls a callback's batch hooks once
    per N steps, with the index of the call's first batch (`begin`) and of its
    last (`end`), so a callback that adds 1 per call counts calls, not steps.
    The indices restart at every epoch, and the last call of an epoch is given
    an `end` N - 1 past its `begin` even when fewer batches were left. So the
    count is anchored to the optimizer's own at every epoch's start (where
    JAX's training state is in the variables too), and within an epoch it
    follows the indices, capped at the epoch's batches where Keras knows them
    (`params`). With N = 1 the indices are exact.
    """

    def __init__(self):
        self.steps = 0
        self._first = 0
        self._epoch_start = 0

    def train_begin(self, model):
        self._first = optimizer_steps(model)
        self.steps = self._epoch_start = 0

    def epoch_begin(self, model):
        self.steps = self._epoch_start = optimizer_steps(model) - self._first

    def before(self, begin):
        """Steps taken before the call that starts at batch index `begin`."""
        return self._epoch_start + begin

    def after(self, end, params):
        """Count the call that ended at batch index `end`; returns the steps taken."""
        self.steps = self._epoch_start + batches_done(end, params)
        return self.steps

    def train_end(self, model):
        """The exact count, from the optimizer, once `fit` has ended."""
        self.steps = optimizer_steps(model) - self._first
        return self.steps
