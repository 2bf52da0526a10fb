"""Guidance over an interval of timesteps (`generate(guidance_interval=...)`).

Against the closed form of `tests.models.test_autoguidance`: for Gaussian data
a model exact for mean μ₁ guided by one exact for μ₀ at scale w denoises as
the exact model for μ₀ + w(μ₁ − μ₀). With an interval, the steps inside it
use that mean and the others μ₁, and the samplers' updates then propagate
those per-step means to exact output moments (`tests.gaussian`).
"""

import numpy as np
import pytest

import keras_ddpm as kd
from keras_ddpm.models import autoguidance, inputs, sampling
from tests.gaussian import assert_moments, exact_sampler_moments
from tests.models.test_autoguidance import (
    GUIDE_MU,
    MODEL_MU,
    SCHEDULE,
    STEPS,
    guided_gaussian_samples,
    tiny_model,
)

SCALE = 2.5
INTERVAL = (300, 700)


@pytest.mark.parametrize(
    "sampler,kind",
    [
        (kd.samplers.DDIMSampler(clip=False), "ddim"),
        (kd.samplers.DDPMSampler(clip=False), "ddpm"),
        (kd.samplers.DPMSolverSampler(clip=False), "dpm_solver"),
        (kd.samplers.HeunSampler(clip=False), "heun"),
    ],
)
def test_guided_gaussians_inside_the_interval_only(sampler, kind):
    guided_mu = GUIDE_MU + SCALE * (MODEL_MU - GUIDE_MU)
    timesteps = np.asarray(sampler.timesteps(SCHEDULE, STEPS))
    inside = (timesteps >= INTERVAL[0]) & (timesteps <= INTERVAL[1])
    assert 0 < inside.sum() < STEPS
    mean, std = exact_sampler_moments(
        kind, SCHEDULE, timesteps, mu=np.where(inside, guided_mu, MODEL_MU)
    )
    # The interval's moments lie apart from both unlimited ones, so that the
    # check below tells them apart.
    for mu in (MODEL_MU, guided_mu):
        unlimited = exact_sampler_moments(kind, SCHEDULE, timesteps, mu=mu)
        assert abs(unlimited[0] - mean) > 0.005
    assert_moments(guided_gaussian_samples(sampler, SCALE, INTERVAL), mean, std)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_an_interval_over_all_steps_or_none(num_classes):
    model = tiny_model(num_classes=num_classes)
    if num_classes is None:
        guidance = dict(guide=tiny_model(widths=(4, 8), seed=1), guide_scale=2.0)
        labels = None
    else:  # classifier-free guidance
        guidance = dict(guidance_scale=3.0)
        labels = np.array([0, 2, 1])
    sampler = kd.samplers.DDIMSampler()
    timesteps = sampler.timesteps(model.schedule, 4)  # [29, 22, 15, 7] or so
    plain = model.generate(3, sampler=sampler, steps=4, seed=5, labels=labels)
    # Guided at every step: the sampling layer without an interval (for
    # autoguidance, `generate` without one takes its default interval).
    conditioning = {"labels": labels, "guidance_scale": np.float32(3.0)}
    if num_classes is None:
        conditioning = {autoguidance.SCALE_KEY: np.float32(2.0)}
    full = sampling.sample(
        model,
        inputs.initial_noise(model.image_shape, 3, 5, None),
        sampler=sampler,
        steps=4,
        seed=5,
        conditioning=conditioning,
        guide=guidance.get("guide"),
    )
    assert np.abs(full - plain).max() > 1e-3

    def limited(interval):
        return model.generate(
            3,
            sampler=sampler,
            steps=4,
            seed=5,
            labels=labels,
            guidance_interval=interval,
            **guidance,
        )

    np.testing.assert_allclose(limited((0, 30)), full, atol=1e-4)
    # Between two visited timesteps: no step is guided.
    between = (min(timesteps) + 1, min(timesteps) + 2)
    programs = len(sampling.programs_of(model))
    np.testing.assert_allclose(limited(between), plain, atol=1e-4)
    # Part of the steps: neither; a new interval reuses the program.
    part = limited((min(timesteps), min(timesteps)))
    assert np.abs(part - plain).max() > 1e-4 and np.abs(part - full).max() > 1e-4
    assert len(sampling.programs_of(model)) == programs


@pytest.mark.parametrize(
    "interval,kwargs,message",
    [
        ((1, 2, 3), {"guidance_scale": 2.0}, "must be a pair of timesteps"),
        ("12", {"guidance_scale": 2.0}, "must be a pair of timesteps"),
        (5, {"guidance_scale": 2.0}, "must be a pair of timesteps"),
        ((10, 5), {"guidance_scale": 2.0}, "0 <= low <= high"),
        ((-1, 5), {"guidance_scale": 2.0}, "0 <= low <= high"),
        ((0, float("nan")), {"guidance_scale": 2.0}, "two finite timesteps"),
        ((0, 31), {"guidance_scale": 2.0}, "reaches past the schedule's 30 timesteps"),
        ((0, 20), {}, "`guidance_interval` limits guidance: give a `guide`"),
        ((0, 20), {"guidance_scale": 1.0}, "`guidance_interval` limits guidance"),
    ],
)
def test_bad_intervals_are_one_line_errors(interval, kwargs, message):
    model = tiny_model(num_classes=2)
    with pytest.raises(ValueError) as error:
        model.generate(2, steps=2, labels=0, guidance_interval=interval, **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)
