import math

import keras
import numpy as np
import pytest

import keras_ddpm as kd


def test_linear_matches_closed_form():
    schedule = kd.schedules.LinearSchedule(
        timesteps=1000, beta_start=1e-4, beta_end=0.02
    )
    t = np.arange(1000)
    expected_betas = 1e-4 + (0.02 - 1e-4) * t / 999
    np.testing.assert_allclose(schedule.betas, expected_betas, rtol=0, atol=1e-12)
    expected = np.array(
        [math.prod(1 - b for b in expected_betas[: i + 1]) for i in (0, 1, 499, 999)]
    )
    np.testing.assert_allclose(
        schedule.alphas_cumprod[[0, 1, 499, 999]], expected, rtol=1e-12
    )
    assert schedule.betas.dtype == np.float64 and schedule.alphas_cumprod.shape == (
        1000,
    )


def test_cosine_matches_closed_form():
    s, T = 0.008, 1000
    schedule = kd.schedules.CosineSchedule(timesteps=T, s=s, max_beta=0.999)

    def f(t):
        return np.cos((t / T + s) / (1 + s) * np.pi / 2) ** 2

    t = np.arange(T)
    exact = f(t + 1) / f(0)
    clipped = np.flatnonzero(schedule.betas >= 0.999)
    assert list(clipped) == [T - 1]  # only the very last beta hits the clip
    np.testing.assert_allclose(
        schedule.alphas_cumprod[:-1], exact[:-1], rtol=1e-12, atol=1e-15
    )
    assert schedule.betas[-1] == 0.999


def test_sigmoid_matches_closed_form():
    T, start, end, tau = 1000, -3.0, 3.0, 1.0
    schedule = kd.schedules.SigmoidSchedule(timesteps=T, start=start, end=end, tau=tau)

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def gamma(x):
        v_start, v_end = sigmoid(start / tau), sigmoid(end / tau)
        return (v_end - sigmoid((x * (end - start) + start) / tau)) / (v_end - v_start)

    t = np.arange(T)
    exact = gamma((t + 1) / T)
    unclipped = schedule.betas < 0.999
    assert unclipped[:-1].all()
    np.testing.assert_allclose(
        schedule.alphas_cumprod[:-1], exact[:-1], rtol=1e-12, atol=1e-15
    )
    assert schedule.alphas_cumprod[499] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize(
    "factory,message",
    [
        (
            lambda: kd.schedules.LinearSchedule(beta_start=0.0),
            r"`beta_start` must lie in \(0, 1\)",
        ),
        (
            lambda: kd.schedules.LinearSchedule(beta_end=1.0),
            r"`beta_end` must lie in \(0, 1\)",
        ),
        (
            lambda: kd.schedules.LinearSchedule(beta_start=0.02, beta_end=0.01),
            "must be >= `beta_start`",
        ),
        (
            lambda: kd.schedules.LinearSchedule(timesteps=1),
            "`timesteps` must be an int >= 2",
        ),
        (
            lambda: kd.schedules.LinearSchedule(timesteps=10.5),
            "`timesteps` must be an int >= 2",
        ),
        (
            lambda: kd.schedules.CosineSchedule(max_beta=1.5),
            r"`max_beta` must lie in \(0, 1\)",
        ),
        (lambda: kd.schedules.SigmoidSchedule(start=3, end=-3), "must be > `start`"),
        (lambda: kd.schedules.SigmoidSchedule(tau=0), "`tau` must be > 0"),
        (
            lambda: kd.schedules.LinearSchedule(beta_start=float("nan")),
            "must be finite",
        ),
        (
            lambda: kd.schedules.LinearSchedule(timesteps=True),
            "`timesteps` must be an int >= 2, got True",
        ),
        (
            lambda: kd.schedules.LinearSchedule(beta_end="0.02"),
            "`beta_end` must be a number, got '0.02'",
        ),
        (lambda: kd.schedules.CosineSchedule(s=-0.5), "`s` must be >= 0, got -0.5"),
        (
            lambda: kd.schedules.SigmoidSchedule(max_beta=1),
            r"`max_beta` must lie in \(0, 1\), got 1\.",
        ),
    ],
)
def test_invalid_settings_are_clear_errors(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_subclass_with_one_method_and_validation():
    class Quadratic(kd.schedules.NoiseSchedule):
        def compute_betas(self):
            return np.linspace(1e-2, 1.4e-1, self.timesteps) ** 2

    schedule = Quadratic(timesteps=10)
    np.testing.assert_allclose(
        schedule.alphas_cumprod, np.cumprod(1 - np.linspace(1e-2, 1.4e-1, 10) ** 2)
    )

    class FromAlphaBar(kd.schedules.NoiseSchedule):
        def compute_alphas_cumprod(self):
            return np.linspace(0.99, 0.01, self.timesteps)

    np.testing.assert_allclose(
        FromAlphaBar(timesteps=5).alphas_cumprod, np.linspace(0.99, 0.01, 5), rtol=1e-12
    )

    class NonMonotone(kd.schedules.NoiseSchedule):
        def compute_alphas_cumprod(self):
            return np.array([0.9, 0.5, 0.6, 0.1])

    with pytest.raises(ValueError, match="strictly decreasing.*t=2"):
        _ = NonMonotone(timesteps=4).betas

    class BadBetas(kd.schedules.NoiseSchedule):
        def compute_betas(self):
            return np.full(self.timesteps, 1.2)

    with pytest.raises(ValueError, match=r"every beta must lie in \(0, 1\)"):
        _ = BadBetas(timesteps=3).alphas_cumprod

    class WrongLength(kd.schedules.NoiseSchedule):
        def compute_betas(self):
            return np.full(3, 0.1)

    with pytest.raises(ValueError, match=r"must return shape \(5,\)"):
        _ = WrongLength(timesteps=5).betas


def test_get_serialize_deserialize():
    for name, cls in [
        ("linear", kd.schedules.LinearSchedule),
        ("cosine", kd.schedules.CosineSchedule),
        ("sigmoid", kd.schedules.SigmoidSchedule),
    ]:
        schedule = kd.schedules.get(name)
        assert type(schedule) is cls
        assert kd.schedules.get(kd.schedules.serialize(schedule)) == schedule
        assert kd.schedules.get(schedule) is schedule
    custom = kd.schedules.get({"name": "cosine", "timesteps": 300, "s": 0.01})
    assert custom.timesteps == 300 and custom.s == 0.01
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(custom)
    )
    np.testing.assert_array_equal(restored.alphas_cumprod, custom.alphas_cumprod)
    with pytest.raises(ValueError, match="Unknown schedule 'quadratic'"):
        kd.schedules.get("quadratic")
    with pytest.raises(ValueError, match="Could not interpret schedule"):
        kd.schedules.get(3)


def test_float32_rates_are_consistent():
    schedule = kd.schedules.CosineSchedule(timesteps=100)
    assert schedule.signal_rates.dtype == np.float32
    np.testing.assert_allclose(
        schedule.signal_rates**2 + schedule.noise_rates**2, 1.0, atol=1e-6
    )


def test_numpy_settings_become_python_numbers():
    schedule = kd.schedules.LinearSchedule(
        timesteps=np.int64(10), beta_start=np.float32(1e-3)
    )
    config = schedule.get_config()
    assert type(config["timesteps"]) is int and type(config["beta_start"]) is float


def test_names_lists_what_get_takes():
    assert kd.schedules.names() == ("cosine", "linear", "sigmoid")
    for name in kd.schedules.names():
        assert isinstance(kd.schedules.get(name), kd.schedules.NoiseSchedule)
