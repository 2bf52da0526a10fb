"""Samplers fed the exact noise predictor of Gaussian data (see tests/gaussian.py)."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.gaussian import SHAPE, S, assert_moments, exact_moments, ideal_denoiser

# 1000 steps run as one compiled loop on JAX; TensorFlow and PyTorch run the
# sampler eagerly here (a minute or more per case), and the step rule is the
# same code on every backend, checked on all three at 50 steps.
LONG_CHAIN = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="DDPM's step rule is checked at 1000 steps on JAX, at 50 on every backend",
)
CASES = [
    pytest.param("ddpm", 1000, {"variance": "fixed_small"}, marks=LONG_CHAIN),
    pytest.param("ddpm", 1000, {"variance": "fixed_large"}, marks=LONG_CHAIN),
    ("ddpm", 50, {"variance": "fixed_small"}),
    ("ddpm", 50, {"variance": "fixed_large"}),
    ("ddim", 50, {"eta": 0.0}),
    ("ddim", 50, {"eta": 1.0}),
]


@pytest.mark.parametrize("kind,steps,kwargs", CASES)
def test_sampler_reproduces_exact_gaussian_moments(kind, steps, kwargs):
    schedule = kd.schedules.LinearSchedule()
    sampler = kd.samplers.get({"name": kind, "clip": False, **kwargs})
    timesteps = sampler.timesteps(schedule, steps)
    mean, std = exact_moments(kind, schedule, timesteps, **kwargs)
    noise = np.random.default_rng(0).standard_normal(SHAPE).astype("float32")
    out = sampler.sample(ideal_denoiser(schedule), noise, schedule, steps=steps, seed=1)
    assert_moments(ops.convert_to_numpy(out), mean, std)


def test_reference_propagation_matches_known_values():
    # Known values for μ=0.1, s=0.2: DDIM-50 (leading spacing, the diffusers
    # default) keeps ~0.88·s, DDPM-1000 ~0.98·s.
    schedule = kd.schedules.LinearSchedule()
    ddim = kd.samplers.DDIMSampler(clip=False, spacing="leading")
    _, std = exact_moments("ddim", schedule, ddim.timesteps(schedule, 50))
    assert std / S == pytest.approx(0.88, abs=0.01)
    ddpm = kd.samplers.DDPMSampler(clip=False)
    _, std = exact_moments("ddpm", schedule, ddpm.timesteps(schedule, 1000))
    assert std / S == pytest.approx(0.98, abs=0.01)


def test_ddim_eta_zero_is_deterministic_and_trajectory_has_all_frames():
    schedule = kd.schedules.CosineSchedule(timesteps=200)
    sampler = kd.samplers.DDIMSampler(eta=0.0)
    noise = np.random.default_rng(3).standard_normal((4, 8, 8, 3)).astype("float32")
    first, trajectory = sampler.sample(
        ideal_denoiser(schedule),
        noise,
        schedule,
        steps=20,
        seed=1,
        return_trajectory=True,
    )
    second = sampler.sample(ideal_denoiser(schedule), noise, schedule, steps=20, seed=2)
    np.testing.assert_allclose(
        ops.convert_to_numpy(first), ops.convert_to_numpy(second), atol=1e-6
    )
    trajectory = ops.convert_to_numpy(trajectory)
    assert trajectory.shape == (21, 4, 8, 8, 3)
    np.testing.assert_array_equal(trajectory[0], noise)
    np.testing.assert_allclose(trajectory[-1], ops.convert_to_numpy(first), atol=1e-6)
