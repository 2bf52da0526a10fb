"""Training noise levels: `noise_levels="lognormal"` against its formula.

The drawn timesteps are mapped back to σ with the schedule's own numpy
interpolation (`NoiseSchedule.alpha_bar_at`), an independent path from the
`keras.ops` inverse that draws them, and their log σ is compared with the
normal distribution of Karras et al. (2022), eq. in Table 1: ln σ ~ N(P_mean, P_std²).
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from keras_ddpm.models import objective


def log_sigmas_tensor(schedule):
    return ops.convert_to_tensor(schedule.log_sigmas)


def draw(schedule, batch, mean=-1.2, std=1.2, seed=0, replica=None):
    timesteps, noise = objective.draw_timesteps_and_noise(
        keras.random.SeedGenerator(seed),
        schedule.timesteps,
        (batch, 2),
        replica,
        "lognormal",
        log_sigmas_tensor(schedule),
        mean,
        std,
    )
    return ops.convert_to_numpy(timesteps), ops.convert_to_numpy(noise)


def log_sigma_of(schedule, timesteps):
    alpha_bar = schedule.alpha_bar_at(np.asarray(timesteps, np.float64))
    return 0.5 * np.log((1.0 - alpha_bar) / alpha_bar)


@pytest.mark.parametrize("mean,std", [(-1.2, 1.2), (0.5, 0.6)])
def test_lognormal_draws_have_the_asked_log_sigma_distribution(mean, std):
    schedule = kd.schedules.CosineSchedule()
    n = 20000
    timesteps, _ = draw(schedule, n, mean, std)
    assert timesteps.dtype == np.float32
    assert timesteps.min() >= 0.0 and timesteps.max() <= schedule.timesteps - 1
    log_sigma = log_sigma_of(schedule, timesteps)
    # Clipping at the schedule's ends (log σ in [-5.0, 9.9]) is far beyond
    # ±3 standard deviations here, so the draws are the plain normal.
    assert abs(log_sigma.mean() - mean) < 4 * std / np.sqrt(n)
    assert abs(log_sigma.std() - std) < 4 * std / np.sqrt(2 * n)
    for z, cdf in [(-1.0, 0.158655), (0.0, 0.5), (1.5, 0.933193)]:
        fraction = np.mean(log_sigma < mean + z * std)
        assert abs(fraction - cdf) < 4 * np.sqrt(cdf * (1 - cdf) / n)


def test_draws_beyond_the_schedule_are_clipped_to_its_ends():
    schedule = kd.schedules.LinearSchedule()
    high, _ = draw(schedule, 64, mean=40.0, std=0.1)
    low, _ = draw(schedule, 64, mean=-40.0, std=0.1)
    np.testing.assert_array_equal(high, schedule.timesteps - 1)
    np.testing.assert_array_equal(low, 0.0)


def test_timesteps_of_log_sigmas_inverts_rates_at():
    schedule = kd.schedules.CosineSchedule()
    table = schedule.log_sigmas
    rng = np.random.default_rng(0)
    targets = rng.uniform(table[0], table[-1], 256).astype("float32")
    targets[:3] = table[[0, 417, -1]]
    timesteps = objective.timesteps_of_log_sigmas(
        ops.convert_to_tensor(targets), log_sigmas_tensor(schedule)
    )
    timesteps = ops.convert_to_numpy(timesteps)
    np.testing.assert_allclose(timesteps[:3], [0.0, 417.0, 999.0], atol=1e-3)
    alpha, sigma = kd.ops.rates_at(
        timesteps, schedule.signal_rates, schedule.noise_rates, table
    )
    recovered = np.log(ops.convert_to_numpy(sigma) / ops.convert_to_numpy(alpha))
    np.testing.assert_allclose(recovered, targets, atol=2e-4)
    np.testing.assert_allclose(log_sigma_of(schedule, timesteps), targets, atol=2e-4)


def test_replicas_draw_slices_of_the_global_batch():
    schedule = kd.schedules.CosineSchedule()
    whole_t, whole_noise = draw(schedule, 8, seed=3)
    halves = [draw(schedule, 4, seed=3, replica=(2, i)) for i in range(2)]
    np.testing.assert_array_equal(np.concatenate([h[0] for h in halves]), whole_t)
    np.testing.assert_array_equal(np.concatenate([h[1] for h in halves]), whole_noise)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_fractional_timestep_loss_follows_its_formula(prediction):
    schedule = kd.schedules.CosineSchedule()
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (4, 3, 3, 1)).astype("float32")
    noise = rng.standard_normal(images.shape).astype("float32")
    timesteps = np.array([0.25, 10.5, 500.0, 998.75], "float32")
    output = rng.standard_normal(images.shape).astype("float32")
    tables = {
        name: ops.convert_to_tensor(np.asarray(getattr(schedule, name), "float32"))
        for name in ("signal_rates", "noise_rates", "log_sigmas", "snr")
    }
    seen = {}

    def network(inputs):
        seen["x_t"], seen["t"] = (ops.convert_to_numpy(x) for x in inputs)
        return ops.convert_to_tensor(output)

    loss = objective.diffusion_loss(
        network,
        ops.convert_to_tensor(images),
        ops.convert_to_tensor(timesteps),
        ops.convert_to_tensor(noise),
        tables,
        prediction,
        "mse",
        min_snr_gamma=5.0,
    )
    # The reference, in float64 from the schedule's numpy interpolation.
    alpha_bar = schedule.alpha_bar_at(timesteps.astype(np.float64))
    alpha = np.sqrt(alpha_bar)[:, None, None, None]
    sigma = np.sqrt(1 - alpha_bar)[:, None, None, None]
    x_t = alpha * images + sigma * noise
    target = {"epsilon": noise, "x0": images, "v": alpha * noise - sigma * images}
    snr = alpha_bar / (1 - alpha_bar)
    # min-SNR-γ (Hang et al. 2023): min(SNR, γ) on the x0 loss, so divided by
    # SNR for ε and by SNR + 1 for v.
    weight = (
        np.minimum(snr, 5.0) / {"epsilon": snr, "x0": 1.0, "v": snr + 1}[prediction]
    )
    per_sample = ((output - target[prediction]) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(seen["x_t"], x_t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(seen["t"], timesteps)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(loss)), (weight * per_sample).mean(), rtol=1e-4
    )


def tiny_model(**kwargs):
    network = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, groups=4)
    return kd.DiffusionModel(network, schedule="cosine", seed=0, **kwargs)


def test_lognormal_model_trains_and_keeps_its_settings(tmp_path):
    model = tiny_model(
        prediction="v", noise_levels="lognormal", lognormal_mean=-0.8, lognormal_std=1.0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype("float32")
    history = model.fit(data, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert (loaded.noise_levels, loaded.lognormal_mean, loaded.lognormal_std) == (
        "lognormal",
        -0.8,
        1.0,
    )
    assert tiny_model().noise_levels == "uniform"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"noise_levels": "normal"}, "`noise_levels` must be one of"),
        ({"lognormal_std": 0.0}, "`lognormal_std` must be"),
        ({"lognormal_mean": float("nan")}, "`lognormal_mean` must be"),
        ({"lognormal_mean": "low"}, "`lognormal_mean` must be"),
    ],
)
def test_bad_noise_level_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**kwargs)
