class StepCounter:
    """The optimizer steps one `fit` has taken, read off Keras' batch indices.

    With `steps_per_execution` N > 1 Keras calls a callback's batch hooks once
    per N steps, with the index of the call's first batch (`begin`) and of its
    last (`end`), so a callback that adds 1 per call counts calls, not steps.
    The indices restart at every epoch, and the last call of an epoch is given
    an `end` N - 1 past its `begin` even when fewer batches were left: the
    count stops at the epoch's batches where Keras knows them (`params`).
    With N = 1 this is one step per call.
    """

    def __init__(self):
        self.steps = 0
        self._epoch_start = 0

    def train_begin(self):
        self.steps = self._epoch_start = 0

    def epoch_begin(self):
        self._epoch_start = self.steps

    def before(self, begin):
        """Steps taken before the call that starts at batch index `begin`."""
        return self._epoch_start + begin

    def after(self, end, params):
        """Count the call that ended at batch index `end`; returns the steps taken."""
        done = end + 1
        per_epoch = (params or {}).get("steps")
        if per_epoch:
            done = min(done, per_epoch)
        self.steps = self._epoch_start + done
        return self.steps
