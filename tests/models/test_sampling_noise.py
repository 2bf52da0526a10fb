"""Stochastic samplers draw independent noise in every chunk of a call and per seed.

The network is the exact predictor of Gaussian data (tests/gaussian.py), so any
correlation between two sets of samples can only come from shared noise.
"""

import keras
import numpy as np
import pytest

import keras_ddpm as kd
from tests.gaussian import assert_moments, exact_moments, oracle_model

SCHEDULE = kd.schedules.LinearSchedule()
SMALL = (16, 16, 1)
STOCHASTIC = [
    pytest.param(kd.samplers.DDPMSampler(clip=False), 250, id="ddpm"),
    pytest.param(kd.samplers.DDIMSampler(eta=1.0, clip=False), 50, id="ddim-eta1"),
]


def correlation(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def model():
    return oracle_model("epsilon", SCHEDULE, image_shape=SMALL)


@pytest.mark.parametrize("sampler,steps", STOCHASTIC)
def test_chunks_of_one_call_draw_independent_noise(model, sampler, steps):
    images = model.generate(128, sampler=sampler, steps=steps, seed=1, batch_size=64)
    assert abs(correlation(images[:64], images[64:])) < 0.05


@pytest.mark.parametrize("sampler,steps", STOCHASTIC)
def test_nearby_seeds_draw_independent_noise(model, sampler, steps):
    first, second = (
        model.generate(64, sampler=sampler, steps=steps, seed=seed) for seed in (1, 2)
    )
    assert abs(correlation(first, second)) < 0.05


def test_same_seed_same_images_across_chunks(model):
    sampler = kd.samplers.DDPMSampler(clip=False)
    first = model.generate(70, sampler=sampler, steps=20, seed=3, batch_size=32)
    second = model.generate(70, sampler=sampler, steps=20, seed=3, batch_size=32)
    np.testing.assert_array_equal(first, second)
    other = model.generate(70, sampler=sampler, steps=20, seed=4, batch_size=32)
    assert np.abs(first - other).max() > 0.1


@pytest.mark.parametrize(
    "kind,steps,kwargs",
    [
        ("ddpm", 250, {"variance": "fixed_small"}),
        ("ddpm", 100, {"variance": "fixed_large"}),
        ("ddim", 50, {"eta": 1.0}),
    ],
)
def test_exact_gaussian_moments_with_many_chunks(kind, steps, kwargs):
    # 2,048 images in 8 chunks of 256: shared noise between chunks would shrink
    # the effective sample size 8×, and the moments would miss their 5σ bounds.
    model = oracle_model("epsilon", SCHEDULE, image_shape=(8, 8, 1))
    sampler = kd.samplers.get({"name": kind, "clip": False, **kwargs})
    mean, std = exact_moments(
        kind, SCHEDULE, sampler.timesteps(SCHEDULE, steps), **kwargs
    )
    images = model.generate(2048, sampler=sampler, steps=steps, seed=5, batch_size=256)
    assert_moments(images, mean, std)


def test_seed_states_never_share_a_draw_within_a_call():
    # Each chunk draws from its state onwards, one per step. JAX and TensorFlow
    # key on the pair; PyTorch on the pair's sum modulo 2**32.
    draws = 10_000
    for seed in range(20):
        states = (
            np.array([kd.samplers.noise_seed_state(seed, c) for c in range(64)]).astype(
                np.int64
            )
            % 2**32
        )
        sums = np.sort((states[:, 0] + states[:, 1]) % 2**32)
        assert np.diff(sums).min() >= draws
        assert len({tuple(s) for s in states}) == 64
    # Past 4096 chunks the pair still differs (JAX and TensorFlow).
    assert tuple(kd.samplers.noise_seed_state(0, 0)) != tuple(
        kd.samplers.noise_seed_state(0, 4096)
    )


def test_nearby_seeds_start_far_apart():
    # Seeds differing by one must not start streams that are shifted copies.
    starts = (
        np.array([kd.samplers.noise_seed_state(seed)[0] for seed in range(100)]).astype(
            np.int64
        )
        % 2**32
    )
    assert np.diff(np.sort(starts)).min() > 10_000


def test_seed_state_dtype_and_bad_input():
    state = kd.samplers.noise_seed_state(2**31 - 1, 5)
    assert state.shape == (2,)
    expected = {"jax": "uint32", "tensorflow": "int64", "torch": "int32"}
    assert str(state.dtype) == expected[keras.backend.backend()]
    with pytest.raises(ValueError, match="`seed` must be an int >= 0"):
        kd.samplers.noise_seed_state(-1)
    with pytest.raises(ValueError, match="`chunk` must be an int >= 0"):
        kd.samplers.noise_seed_state(0, True)
