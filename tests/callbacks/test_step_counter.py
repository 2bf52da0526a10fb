import keras
import numpy as np
import pytest

import keras_ddpm as kd
from keras_ddpm.callbacks import budget_cosine_decay, time_limit
from tests.helpers import FakeClock

# PyTorch's trainer refuses steps_per_execution > 1.
EXECUTIONS = [1] if keras.backend.backend() == "torch" else [1, 3]


class Tick(keras.callbacks.Callback):
    """Moves a `FakeClock` on by one second after each call (listed first)."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.now += 1.0

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(
            float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        )


def tiny_model(per_call):
    net = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, groups=4, attention_levels=()
    )
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    model.compile(optimizer=keras.optimizers.SGD(1e-3), steps_per_execution=per_call)
    return model


IMAGES = np.zeros((40, 8, 8, 3), "float32")  # 5 batches of 8 per epoch


@pytest.mark.parametrize("per_call", EXECUTIONS)
def test_time_limit_reports_the_optimizer_steps(monkeypatch, per_call):
    clock = FakeClock()
    monkeypatch.setattr(time_limit, "time", clock)
    model = tiny_model(per_call)
    # The clock passes the budget at the end of the 4th call: the 2nd call of
    # the 2nd epoch, whose last call has 2 batches where 3 fit.
    limit = kd.callbacks.TimeLimit(minutes=3.5 / 60, verbose=False)
    model.fit(IMAGES, batch_size=8, epochs=5, callbacks=[Tick(clock), limit], verbose=0)
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert limit.stopped_step == iterations == {1: 4, 3: 10}[per_call]


@pytest.mark.parametrize("per_call", EXECUTIONS)
def test_budget_decay_warms_up_over_steps_not_calls(monkeypatch, per_call):
    clock = FakeClock()
    monkeypatch.setattr(budget_cosine_decay, "time", clock)
    model = tiny_model(per_call)
    decay = kd.callbacks.BudgetCosineDecay(0.8, minutes=100.0, warmup_steps=8)
    tick = Tick(clock)
    model.fit(IMAGES, batch_size=8, epochs=2, callbacks=[tick, decay], verbose=0)
    # The rate of each call is set before it, from the steps taken by then.
    begins = {1: range(10), 3: [0, 3, 5, 8]}[per_call]
    expected = [decay.rate(s, i + 1.0) for i, s in enumerate(begins)]
    assert tick.rates == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("per_call", EXECUTIONS)
@pytest.mark.parametrize("epoch", ["unknown length", "steps_per_epoch"])
def test_time_limit_counts_epochs_keras_cannot_split_evenly(
    monkeypatch, per_call, epoch
):
    import tensorflow as tf

    clock = FakeClock()
    monkeypatch.setattr(time_limit, "time", clock)
    model = tiny_model(per_call)
    limit = kd.callbacks.TimeLimit(minutes=4.5 / 60, verbose=False)  # 5 calls
    if epoch == "unknown length":  # 5 batches, Keras learns it at the end
        data = tf.data.Dataset.from_tensor_slices(IMAGES).filter(lambda x: True)
        kwargs = {}
    else:  # 4 batches of 5 per epoch, the last call reads on into the next
        data = tf.data.Dataset.from_tensor_slices(IMAGES).repeat()
        kwargs = {"steps_per_epoch": 4}
    callbacks = [Tick(clock), limit]
    model.fit(data.batch(8), epochs=5, callbacks=callbacks, verbose=0, **kwargs)
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert limit.stopped_step == iterations >= 5
