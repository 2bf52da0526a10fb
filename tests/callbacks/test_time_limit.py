import time

import keras
import numpy as np
import pytest

import keras_ddpm as kd
from tests.helpers import tiny_compiled_model


class SlowBatches(keras.callbacks.Callback):
    """Makes every batch take at least `seconds`, so the budget is reached predictably."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def test_training_stops_once_the_budget_is_spent(tmp_path):
    model = tiny_compiled_model()
    images = np.zeros((16, 8, 8, 3), "float32")
    model.fit(images, batch_size=8, epochs=1, verbose=0)  # compile outside the budget
    limit = kd.callbacks.TimeLimit(minutes=1.0 / 60.0, verbose=False)
    history_path = tmp_path / "history.json"
    start = time.monotonic()
    history = model.fit(
        images,
        batch_size=8,
        epochs=1000,
        verbose=0,
        callbacks=[
            SlowBatches(0.1),
            limit,
            kd.callbacks.HistoryFile(str(history_path)),
        ],
    )
    elapsed = time.monotonic() - start
    # Stopped at the first batch end past the budget: batches take 0.1 s and
    # more, so at most 10 of them fit in the second.
    assert 1.0 <= limit.elapsed < 6.0 and elapsed < 30.0
    assert 1 <= limit.stopped_step <= 11
    assert len(history.history["loss"]) == (limit.stopped_step + 1) // 2
    assert history_path.exists()


def test_config_and_bad_minutes():
    limit = kd.callbacks.TimeLimit(minutes=2.5, verbose=False)
    assert kd.callbacks.TimeLimit(**limit.get_config()).minutes == 2.5
    for bad in (0, -1.0, float("nan"), "10"):
        with pytest.raises(ValueError, match="`minutes` must"):
            kd.callbacks.TimeLimit(minutes=bad)
