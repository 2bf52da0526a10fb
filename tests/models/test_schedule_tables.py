import keras
import numpy as np

import keras_ddpm as kd
from keras_ddpm.schedules.noise_schedule import NoiseSchedule


def _unreadable(self):
    raise AssertionError("the schedule's numpy tables were read after construction")


def test_training_and_sampling_reuse_tables_converted_once(monkeypatch):
    net = kd.models.build_unet(8, widths=(8,), block_depth=1, groups=4)
    model = kd.DiffusionModel(
        net,
        schedule=kd.schedules.LinearSchedule(timesteps=20),
        min_snr_gamma=5.0,
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    expected = model.schedule.signal_rates
    for name in ("signal_rates", "noise_rates", "snr"):
        monkeypatch.setattr(NoiseSchedule, name, property(_unreadable))
    images = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    history = model.fit(images, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    samples = model.generate(2, sampler="ddim", steps=3, seed=0)
    assert samples.shape == (2, 8, 8, 3) and np.isfinite(samples).all()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model._table("signal_rates")), expected
    )
