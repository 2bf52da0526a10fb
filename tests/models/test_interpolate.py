"""`DiffusionModel.interpolate`: a spherical walk between two samples' initial noise."""

import numpy as np
import pytest

import keras_ddpm as kd
from keras_ddpm.models import inputs
from tests.gaussian import oracle_model

SHAPE = (4, 4, 1)


@pytest.fixture(scope="module")
def model():
    return oracle_model("epsilon", kd.schedules.CosineSchedule(), image_shape=SHAPE)


def test_slerp_follows_the_great_circle():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(32)
    b = rng.standard_normal(32)
    b -= a * (a @ b) / (a @ a)  # orthogonal to a
    b *= np.linalg.norm(a) / np.linalg.norm(b)  # and of the same norm
    frames = inputs.slerp(a, b, [0.0, 0.5, 1.0]).astype(np.float64)
    # For orthogonal ends of equal norm, θ = π/2: the middle is (a + b)/√2.
    np.testing.assert_allclose(frames[1], (a + b) / np.sqrt(2), rtol=1e-5)
    np.testing.assert_allclose(frames[[0, 2]], [a, b], rtol=1e-6)
    weights = np.linspace(0, 1, 9)
    norms = np.linalg.norm(inputs.slerp(a, b, weights), axis=1)
    np.testing.assert_allclose(norms, np.linalg.norm(a), rtol=1e-5)
    # Parallel ends (the arc is undefined) fall back to the straight line.
    line = inputs.slerp(a, 2 * a, [0.5])[0]
    np.testing.assert_allclose(line, 1.5 * a, rtol=1e-6)


@pytest.mark.parametrize("sampler", ["ddim", "dpm_solver", "heun"])
def test_ends_are_the_two_seeds_samples(model, sampler):
    frames = model.interpolate(3, 11, num=5, sampler=sampler, steps=6)
    assert frames.shape == (5,) + SHAPE and frames.dtype == np.float32
    for frame, seed in ((frames[0], 3), (frames[-1], 11)):
        expected = model.generate(1, sampler=sampler, steps=6, seed=seed)[0]
        np.testing.assert_allclose(frame, expected, atol=1e-5)
    # A walk, not a jump: consecutive frames are closer than the two ends.
    steps = np.linalg.norm(np.diff(frames.reshape(5, -1), axis=0), axis=1)
    assert steps.max() < np.linalg.norm(frames[-1] - frames[0])


def test_noise_ends_and_the_default_sampler(model):
    noise = inputs.initial_noise(SHAPE, 1, 3)
    by_noise = model.interpolate(
        noise_a=noise, seed_b=11, num=3, sampler="ddim", steps=6
    )
    by_seed = model.interpolate(3, 11, num=3, sampler="ddim", steps=6)
    np.testing.assert_allclose(by_noise, by_seed, atol=1e-6)
    # The model's default (DDPM) draws noise: the walk falls back to DDIM.
    np.testing.assert_allclose(
        model.interpolate(3, 11, num=3, steps=6), by_seed, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"sampler": "ddpm"}, "needs a deterministic sampler.*DDPMSampler"),
        ({"sampler": {"name": "ddim", "eta": 1.0}}, "DDIMSampler with eta=1.0"),
        ({"num": 1}, "`num` must be"),
        ({"noise_a": np.zeros(SHAPE)}, "`seed_a` or `noise_a`.*not both"),
        ({"seed_b": None}, "`seed_b` or `noise_b`.*got neither"),
        ({"seed_a": None, "noise_a": np.zeros((2, 2))}, r"`noise_a` must have shape"),
        ({"seed_a": None, "noise_a": np.full(SHAPE, np.nan)}, "`noise_a`"),
    ],
)
def test_bad_arguments(model, kwargs, message):
    arguments = {"seed_a": 0, "seed_b": 1, "num": 3, "sampler": "ddim", **kwargs}
    with pytest.raises(ValueError, match=message):
        model.interpolate(**arguments)
