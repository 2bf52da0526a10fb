"""Autoguidance (`generate(guide=...)`), against a closed form.

For Gaussian data x0 ~ N(μ, s²) the ideal predictions are affine in μ at a
given x_t: x̂0 = (1 − c√ᾱ)μ + c·x_t with c = √ᾱ s² / (ᾱ s² + 1 − ᾱ), and
ε̂ = (x_t − √ᾱ x̂0) / √(1 − ᾱ), with c independent of μ. So a model that is the exact predictor for mean μ₁, guided by one
exact for μ₀ at scale w, denoises exactly as the predictor for
μ₀ + w(μ₁ − μ₀) would, and every sampler must then reproduce that
Gaussian's exact moments.
"""

import keras
import numpy as np
import pytest

import keras_ddpm as kd
from keras_ddpm.models import sampling
from tests.gaussian import (
    SHAPE,
    assert_moments,
    exact_sampler_moments,
    oracle_model,
)

SCHEDULE = kd.schedules.LinearSchedule()
# Means whose extrapolations stay far inside [-1, 1], where `generate` clips.
MODEL_MU, GUIDE_MU = 0.15, 0.0
STEPS = 20


@pytest.mark.parametrize(
    "sampler,kind",
    [
        (kd.samplers.DDIMSampler(clip=False), "ddim"),
        (kd.samplers.DDPMSampler(clip=False), "ddpm"),
        (kd.samplers.DPMSolverSampler(clip=False), "dpm_solver"),
    ],
)
@pytest.mark.parametrize("scale", [2.0, 0.5])
def test_guided_gaussians_sample_the_extrapolated_gaussian(sampler, kind, scale):
    mu = GUIDE_MU + scale * (MODEL_MU - GUIDE_MU)
    timesteps = sampler.timesteps(SCHEDULE, STEPS)
    mean, std = exact_sampler_moments(kind, SCHEDULE, timesteps, mu=mu)
    out = guided_gaussian_samples(sampler, scale, (0, SCHEDULE.timesteps))  # all
    assert_moments(out, mean, std)


def guided_gaussian_samples(sampler, scale, interval):
    """`STEPS` steps of a model exact for `MODEL_MU` guided by one exact for `GUIDE_MU`."""
    # The two predict different targets: they are mixed as x0 and ε.
    model = oracle_model("v", SCHEDULE, mu=MODEL_MU)
    guide = oracle_model("epsilon", SCHEDULE, mu=GUIDE_MU)
    noise = np.random.default_rng(0).standard_normal(SHAPE).astype("float32")
    return model.generate(
        None,
        sampler=sampler,
        steps=STEPS,
        initial_noise=noise,
        seed=1,
        guide=guide,
        guide_scale=scale,
        guidance_interval=interval,
    )


def tiny_model(widths=(8, 16), image_size=8, num_classes=None, seed=0):
    keras.utils.set_random_seed(seed)
    net = kd.models.build_unet(
        image_size=image_size,
        widths=widths,
        block_depth=1,
        groups=4,
        attention_levels=(),
        num_classes=num_classes,
    )
    # Random weights everywhere: a new U-Net's last layer starts at zero,
    # and then every network would predict the same.
    rng = np.random.default_rng(seed)
    for variable in net.trainable_variables:
        variable.assign(rng.normal(0.0, 0.2, variable.shape).astype("float32"))
    return kd.DiffusionModel(
        net,
        schedule={"name": "cosine", "timesteps": 30},
        num_classes=num_classes,
    )


def test_scale_one_or_the_model_as_its_own_guide_changes_nothing():
    # Equal up to float32 rounding: XLA may order the two calls' sums apart.
    model, other = tiny_model(), tiny_model(widths=(4, 8), seed=1)
    plain = model.generate(3, steps=4, seed=5)
    for guide, scale in ((other, 1.0), (model, 3.0)):
        guided = model.generate(3, steps=4, seed=5, guide=guide, guide_scale=scale)
        np.testing.assert_allclose(guided, plain, atol=1e-4)
    # Scale 0 at every step leaves the guide alone.
    np.testing.assert_allclose(
        model.generate(
            3, steps=4, seed=5, guide=other, guide_scale=0.0, guidance_interval=(0, 30)
        ),
        other.generate(3, steps=4, seed=5),
        atol=1e-4,
    )
    # Another scale differs, and reuses the compiled program.
    programs = len(sampling.programs_of(model))
    guided = model.generate(3, steps=4, seed=5, guide=other, guide_scale=2.5)
    assert np.abs(guided - plain).max() > 1e-3
    assert len(sampling.programs_of(model)) == programs


def test_the_defaults_are_the_measured_scale_and_interval():
    model, other = tiny_model(), tiny_model(widths=(4, 8), seed=1)
    assert kd.models.autoguidance.DEFAULT_SCALE == 5.0

    def guided(interval):
        return model.generate(
            3,
            steps=10,
            seed=5,
            guide=other,
            guide_scale=5.0,
            guidance_interval=interval,
        )

    explicit = guided((0, 18))  # 0.6 T of T = 30: timesteps 17, 14, ... of 29, 26, ...
    np.testing.assert_allclose(
        model.generate(3, steps=10, seed=5, guide=other), explicit, atol=1e-5
    )
    assert np.abs(guided((0, 21)) - explicit).max() > 1e-3  # 20 guided too
    assert np.abs(guided((0, 30)) - explicit).max() > 1e-3  # every step


def test_a_conditional_model_gives_its_labels_to_the_guide():
    model = tiny_model(num_classes=3)
    labels = np.array([0, 2, 1])
    plain = model.generate(3, steps=4, seed=2, labels=labels)
    guided = model.generate(3, steps=4, seed=2, labels=labels, guide=model)
    np.testing.assert_allclose(guided, plain, atol=1e-4)


@pytest.mark.parametrize(
    "guide,kwargs,message",
    [
        (None, {"guide_scale": 2.0}, "`guide_scale` (2.0) needs a `guide` model"),
        ("network", {}, "`guide` must be a DiffusionModel"),
        ("size16", {}, "`guide` makes images of shape (16, 16, 3)"),
        ("linear", {}, "`guide` has the noise schedule"),
        ("conditional", {}, "`guide` has num_classes=2, this model None"),
        ("same", {"guide_scale": float("nan")}, "`guide_scale` must be finite"),
    ],
)
def test_bad_guides_are_one_line_errors(guide, kwargs, message):
    model = tiny_model()
    guides = {
        None: None,
        "network": model.network,
        "size16": tiny_model(image_size=16),
        "linear": kd.DiffusionModel(
            model.network, schedule={"name": "linear", "timesteps": 30}
        ),
        "conditional": tiny_model(num_classes=2),
        "same": model,
    }
    with pytest.raises(ValueError) as error:
        model.generate(2, steps=2, guide=guides[guide], **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_guide_excludes_classifier_free_guidance():
    model = tiny_model(num_classes=2)
    with pytest.raises(ValueError, match="not both"):
        model.generate(2, steps=2, labels=0, guidance_scale=2.0, guide=model)
