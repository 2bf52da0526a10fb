import numpy as np
import pytest

import keras_ddpm as kd

# Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed",
# Table 2: T = 1000, 10 sampling steps.
PINNED = {
    "linspace": [999, 888, 777, 666, 555, 444, 333, 222, 111, 0],
    "leading": [900, 800, 700, 600, 500, 400, 300, 200, 100, 0],
    "trailing": [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
}


@pytest.mark.parametrize("spacing", sorted(PINNED))
def test_spacing_matches_published_table(spacing):
    np.testing.assert_array_equal(
        kd.samplers.spaced_timesteps(1000, 10, spacing), PINNED[spacing]
    )


@pytest.mark.parametrize("spacing", sorted(PINNED))
@pytest.mark.parametrize("steps", [1, 7, 50, 333, 1000])
def test_spacing_is_strictly_decreasing_and_in_range(spacing, steps):
    timesteps = kd.samplers.spaced_timesteps(1000, steps, spacing)
    assert len(timesteps) == steps
    assert np.all(np.diff(timesteps) < 0)
    assert timesteps[0] <= 999 and timesteps[-1] >= 0


def test_full_ddpm_is_algorithm_2():
    schedule = kd.schedules.LinearSchedule()
    tables = kd.samplers.DDPMSampler().tables(schedule)
    assert list(tables["t"][:3]) == [999, 998, 997] and tables["t"][-1] == 0
    betas = schedule.betas[::-1]
    alpha_bar = schedule.alphas_cumprod[::-1]
    alpha_bar_prev = np.append(alpha_bar[1:], 1.0)
    np.testing.assert_allclose(
        tables["b"], np.sqrt(alpha_bar_prev) * betas / (1 - alpha_bar), rtol=1e-5
    )
    np.testing.assert_allclose(
        tables["a"],
        np.sqrt(1 - betas) * (1 - alpha_bar_prev) / (1 - alpha_bar),
        rtol=1e-5,
    )
    expected_sigma = np.sqrt(betas * (1 - alpha_bar_prev) / (1 - alpha_bar))
    np.testing.assert_allclose(tables["d"][:-1], expected_sigma[:-1], rtol=1e-5)
    assert tables["d"][-1] == 0


def test_ddim_eta_one_has_ddpm_posterior_noise():
    schedule = kd.schedules.CosineSchedule()
    ddim = kd.samplers.DDIMSampler(eta=1.0).tables(schedule, 20)
    ddpm = kd.samplers.DDPMSampler().tables(schedule, 20)
    np.testing.assert_allclose(ddim["d"], ddpm["d"], rtol=1e-5)
    assert kd.samplers.DDIMSampler(eta=0.0).tables(schedule, 20)["d"].max() == 0


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda s: kd.samplers.DDIMSampler().timesteps(s, 1001),
            r"`steps` must lie in \[1, 1000\]",
        ),
        (
            lambda s: kd.samplers.DDIMSampler().timesteps(s, 0),
            r"`steps` must lie in \[1, 1000\]",
        ),
        (lambda s: kd.samplers.DDIMSampler(eta=-0.1), "`eta` must be >= 0"),
        (
            lambda s: kd.samplers.DDPMSampler(variance="learned"),
            "`variance` must be one of",
        ),
        (
            lambda s: kd.samplers.DDIMSampler(spacing="uniform"),
            "`spacing` must be one of",
        ),
        (lambda s: kd.samplers.get("euler_a"), "Unknown sampler 'euler_a'"),
        (
            lambda s: kd.samplers.DDPMSampler().timesteps(s, 5, start=1000),
            r"`start` must lie in \[0, 999\]",
        ),
        (
            lambda s: kd.samplers.DDIMSampler().timesteps(s, 50, start=10),
            r"`steps` must lie in \[1, 11\] \(at most one a timestep, from "
            r"timestep 10 down\), got 50\.",
        ),
    ],
)
def test_bad_settings_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(kd.schedules.LinearSchedule())


def test_get_and_serialization_round_trip():
    for sampler in [
        kd.samplers.DDPMSampler(variance="fixed_large", clip=False),
        kd.samplers.DDIMSampler(eta=0.3, spacing="leading"),
    ]:
        assert kd.samplers.get(kd.samplers.serialize(sampler)) == sampler
    assert kd.samplers.get("ddim") == kd.samplers.DDIMSampler()
    assert (
        kd.samplers.get({"name": "ddpm", "variance": "fixed_large"}).variance
        == "fixed_large"
    )


def test_default_steps_are_capped_when_starting_part_way():
    schedule = kd.schedules.LinearSchedule()
    timesteps = kd.samplers.DDIMSampler().timesteps(schedule, start=9)
    assert timesteps[0] == 9 and len(timesteps) == 10
