import keras
import numpy as np
import pytest

import keras_ddpm as kd
from tests.helpers import tiny_compiled_model


class RecordEma(keras.callbacks.Callback):
    """The EMA weights at every epoch end, keyed by the optimizer step."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.weights[step] = [
            keras.ops.convert_to_numpy(v.value) for v in self.model.ema_weights
        ]


def test_saves_the_model_at_the_first_epoch_end_past_its_steps(tmp_path):
    model = tiny_compiled_model()
    images = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 3)).astype("float32")
    path = tmp_path / "guide.keras"
    # Before the snapshot's callback, so that both see the same epoch end.
    record = RecordEma()
    snapshot = kd.callbacks.GuideSnapshot(str(path), after_steps=10)
    model.fit(images, batch_size=8, epochs=3, callbacks=[record, snapshot], verbose=0)
    assert snapshot.saved_step == 16  # 8 steps per epoch
    guide = keras.saving.load_model(path)
    assert int(keras.ops.convert_to_numpy(guide.optimizer.iterations)) == 16
    for saved, recorded in zip(guide.ema_weights, record.weights[16]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), recorded)
    # The guide is a weaker version: the weights moved on after it.
    assert any(
        np.abs(a - b).max() > 0 for a, b in zip(record.weights[16], record.weights[24])
    )
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_time_threshold_and_one_never_reached(tmp_path):
    model = tiny_compiled_model()
    images = np.zeros((16, 8, 8, 3), "float32")
    soon = kd.callbacks.GuideSnapshot(str(tmp_path / "a.keras"), after_minutes=1e-9)
    never = kd.callbacks.GuideSnapshot(str(tmp_path / "b.keras"), after_minutes=60)
    model.fit(images, batch_size=8, epochs=2, callbacks=[soon, never], verbose=0)
    assert soon.saved_step == 2 and (tmp_path / "a.keras").is_file()
    assert never.saved_step is None and not (tmp_path / "b.keras").exists()
    # With both, the first threshold reached.
    both = kd.callbacks.GuideSnapshot(
        str(tmp_path / "c.keras"), after_minutes=60, after_steps=3
    )
    model.fit(images, batch_size=8, epochs=3, callbacks=[both], verbose=0)
    assert both.saved_step == 4 + 4  # this fit's first epoch end past 3 of its steps


def test_config_round_trip_and_bad_arguments():
    snapshot = kd.callbacks.GuideSnapshot("g.keras", after_minutes=4.25)
    again = kd.callbacks.GuideSnapshot(**snapshot.get_config())
    assert again.get_config() == snapshot.get_config()
    for kwargs, message in (
        ({}, "Give `after_minutes`, `after_steps` or both"),
        ({"after_steps": -1}, "`after_steps` must be an int >= 0"),
        ({"after_minutes": 0.0}, "`after_minutes` must be > 0"),
    ):
        with pytest.raises(ValueError) as error:
            kd.callbacks.GuideSnapshot("g.keras", **kwargs)
        assert message in str(error.value)
    with pytest.raises(ValueError, match="must end in .keras"):
        kd.callbacks.GuideSnapshot("g.h5", after_steps=1)
