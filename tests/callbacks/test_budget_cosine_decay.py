import math

import keras
import numpy as np
import pytest

import keras_ddpm as kd
from keras_ddpm.callbacks import budget_cosine_decay
from tests.helpers import FakeClock


def tiny_model(learning_rate=1e-2):
    keras.utils.set_random_seed(3)
    net = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, groups=4, attention_levels=()
    )
    model = kd.DiffusionModel(
        net, schedule={"name": "linear", "timesteps": 20}, ema_momentum=None, seed=5
    )
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate))
    return model


class ClockAtBatch(keras.callbacks.Callback):
    """Moves a `FakeClock` to `times[batch]` before each batch (listed first)."""

    def __init__(self, clock, times):
        super().__init__()
        self.clock, self.times = clock, times

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.now = self.times[batch]


def test_the_rate_is_a_cosine_of_the_budget_after_a_linear_warmup():
    decay = kd.callbacks.BudgetCosineDecay(0.4, minutes=2.0, warmup_steps=4)
    # Closed form: peak · (1 + cos(π f)) / 2 at the fraction f of 120 s.
    for elapsed in (0.0, 17.0, 60.0, 100.0, 120.0):
        expected = 0.4 * 0.5 * (1 + math.cos(math.pi * elapsed / 120.0))
        assert decay.rate(10, elapsed) == pytest.approx(expected, rel=1e-12)
    assert decay.rate(10, 60.0) == pytest.approx(0.2)
    assert decay.rate(10, 500.0) == 0.0  # past the budget: stays at 0
    # Warmup: step s of 4 runs at (s + 1) / 4 of the decayed rate.
    assert [decay.rate(s, 0.0) for s in range(5)] == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.4]
    )


def test_the_optimizer_follows_the_clock_and_ends_at_zero(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(budget_cosine_decay, "time", clock)
    model = tiny_model()
    rates = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            rates.append(
                float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
            )

    # One minute of budget; batch b starts at 15·b seconds, 0 to 60.
    times = [15.0 * b for b in range(5)]
    decay = kd.callbacks.BudgetCosineDecay(1e-2, minutes=1.0, warmup_steps=2)
    images = np.zeros((40, 8, 8, 3), "float32")
    model.fit(
        images,
        batch_size=8,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[ClockAtBatch(clock, times), decay, Record()],
    )
    expected = [1e-2 * 0.5 * (1 + math.cos(math.pi * t / 60.0)) for t in times]
    expected[0] *= 0.5  # the first of two warmup steps
    assert rates == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert rates[-1] == 0.0


def test_a_rate_of_zero_mid_epoch_stops_the_updates_on_every_backend(monkeypatch):
    """The assigned rate is the one training uses (with JAX, after a state sync).

    Two runs from the same weights and draws: one trains 3 batches, the other
    6 in one epoch with the budget spent from its fourth batch on. If the
    rate of 0 reached the train step, both end with the same weights.
    """
    clock = FakeClock()
    monkeypatch.setattr(budget_cosine_decay, "time", clock)
    images = np.random.default_rng(0).uniform(-1, 1, (48, 8, 8, 3)).astype("float32")

    def trained(count, times):
        model = tiny_model()
        decay = kd.callbacks.BudgetCosineDecay(1e-2, minutes=1.0, resolution=1e-6)
        model.fit(
            images[: 8 * count],
            batch_size=8,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[ClockAtBatch(clock, times), decay],
        )
        return [keras.ops.convert_to_numpy(w) for w in model.network.weights]

    short = trained(3, [0.0, 0.0, 0.0])
    long = trained(6, [0.0, 0.0, 0.0, 60.0, 61.0, 62.0])
    changed = trained(4, [0.0, 0.0, 0.0, 0.0])  # the check can fail: a 4th step moves
    assert any(not np.allclose(a, b) for a, b in zip(short, changed))
    for a, b in zip(short, long):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_schedule_rate_is_refused_with_one_line():
    model = tiny_model(
        learning_rate=keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)
    )
    decay = kd.callbacks.BudgetCosineDecay(1e-3, minutes=1.0)
    with pytest.raises(
        ValueError, match="needs an optimizer with a float learning rate"
    ):
        model.fit(
            np.zeros((8, 8, 8, 3), "float32"), epochs=1, callbacks=[decay], verbose=0
        )


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"learning_rate": 0.0, "minutes": 1.0}, "`learning_rate` must"),
        ({"learning_rate": 1e-3, "minutes": -1.0}, "`minutes` must"),
        (
            {"learning_rate": 1e-3, "minutes": 1.0, "warmup_steps": -1},
            "`warmup_steps` must",
        ),
        (
            {"learning_rate": 1e-3, "minutes": 1.0, "resolution": 0.0},
            "`resolution` must",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        kd.callbacks.BudgetCosineDecay(**arguments)


def test_config_round_trip():
    decay = kd.callbacks.BudgetCosineDecay(2e-3, minutes=8.5, warmup_steps=100)
    again = kd.callbacks.BudgetCosineDecay(**decay.get_config())
    assert again.get_config() == decay.get_config()
