"""Golden tests: the new samplers against diffusers' schedulers, step for step.

`tests/data/sampler_references.npz` holds the outputs of diffusers'
`DPMSolverMultistepScheduler` (DPM-Solver++ 2M/3M, midpoint, lower-order final,
final σ = 0, trailing), `EulerDiscreteScheduler` and `HeunDiscreteScheduler`
(Karras σ, ρ = 7) on a fixed nonlinear noise predictor from fixed noise, made by
`scripts/make_sampler_references.py`. When diffusers is installed the last test
also recomputes them live.
"""

import importlib.util
import pathlib

import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.gaussian import rate_tables

REFERENCES = pathlib.Path(__file__).parent.parent / "data" / "sampler_references.npz"
SHAPE = (2, 8, 8, 3)


class StoredSchedule(kd.schedules.NoiseSchedule):
    """The linear schedule as diffusers tabulates it (ᾱ accumulated in float32)."""

    def compute_alphas_cumprod(self):
        return np.load(REFERENCES)["alphas_cumprod"]


SCHEDULE = StoredSchedule(timesteps=1000)


def test_stored_schedule_is_the_linear_schedule():
    np.testing.assert_allclose(
        SCHEDULE.alphas_cumprod, kd.schedules.LinearSchedule().alphas_cumprod, rtol=1e-4
    )


def noise_predictor(x, t):
    # The same function as scripts/make_sampler_references.py, in keras.ops.
    t = ops.cast(t, "float32")
    return x * (0.6 + 0.4 * t / 999.0) + 0.2 * ops.sin(3.0 * x) * ops.cos(t / 150.0)


def denoiser(schedule):
    tables = rate_tables(schedule)

    def denoise(x, t):
        alpha, sigma = kd.ops.rates_at(t, *tables)
        eps = noise_predictor(x, t)
        return (x - sigma * eps) / alpha, eps

    return denoise


def initial_noise():
    return np.random.default_rng(0).standard_normal(SHAPE).astype("float32")


CASES = [
    (name, steps, config)
    for steps in (10, 25)
    for name, config in (
        ("dpm_solver_2", {"name": "dpm_solver", "order": 2, "spacing": "trailing"}),
        ("dpm_solver_3", {"name": "dpm_solver", "order": 3, "spacing": "trailing"}),
        # diffusers ramps from the schedule's own σ_max: no cap.
        ("euler", {"name": "euler", "sigma_max": None}),
        ("heun", {"name": "heun", "sigma_max": None}),
    )
]


@pytest.mark.parametrize("name,steps,config", CASES)
def test_sampler_matches_reference_implementation(name, steps, config):
    references = np.load(REFERENCES)
    sampler = kd.samplers.get({**config, "clip": False})
    timesteps = sampler.timesteps(SCHEDULE, steps)
    reference_timesteps = references[f"{name}_{steps}_timesteps"]
    if name == "heun":  # diffusers lists the second evaluation's timestep as well
        reference_timesteps = reference_timesteps[::2]
    np.testing.assert_allclose(timesteps, reference_timesteps, atol=1e-3)
    out = sampler.sample(denoiser(SCHEDULE), initial_noise(), SCHEDULE, steps=steps)
    expected = references[f"{name}_{steps}"]
    # diffusers' Euler and Heun step in float32 in the variance-exploding
    # scaling, where x̃ reaches |x|·157 at the first step: their own round-off is
    # about 5e-4 (measured against float64; see the next test, where ours
    # agrees with float64 to 1e-5). DPM-Solver++ works in the model's scaling.
    tolerance = 1e-4 if name.startswith("dpm_solver") else 1e-3
    np.testing.assert_allclose(
        ops.convert_to_numpy(out), expected, atol=tolerance, rtol=0
    )


def edm_algorithm_1(steps, heun):
    """Karras et al. 2022, Algorithm 1, in float64 numpy, on the same predictor."""
    sampler = kd.samplers.EulerSampler()
    timesteps = np.append(sampler.timesteps(SCHEDULE, steps), 0.0)
    alpha_bar = SCHEDULE.alpha_bar_at(timesteps)
    sigmas = np.sqrt((1 - alpha_bar) / alpha_bar)
    sigmas[-1] = 0.0

    def slope(x, i):  # d = (x − D(x; σ))/σ = eps_hat, the network seeing x/sqrt(σ² + 1)
        x_in = x / np.sqrt(sigmas[i] ** 2 + 1)
        t = timesteps[i]
        return x_in * (0.6 + 0.4 * t / 999.0) + 0.2 * np.sin(3 * x_in) * np.cos(t / 150)

    x = initial_noise().astype(np.float64) * np.sqrt(sigmas[0] ** 2 + 1)
    for i in range(steps):
        d = slope(x, i)
        x_next = x + (sigmas[i + 1] - sigmas[i]) * d
        if heun and sigmas[i + 1] > 0:
            x_next = x + (sigmas[i + 1] - sigmas[i]) * 0.5 * (d + slope(x_next, i + 1))
        x = x_next
    return x


@pytest.mark.parametrize("name", ["euler", "heun"])
@pytest.mark.parametrize("steps", [10, 25])
def test_euler_and_heun_match_edm_algorithm_1_in_float64(name, steps):
    sampler = kd.samplers.get({"name": name, "clip": False})
    out = sampler.sample(denoiser(SCHEDULE), initial_noise(), SCHEDULE, steps=steps)
    expected = edm_algorithm_1(steps, heun=name == "heun")
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, atol=1e-5, rtol=0)


def test_references_are_not_interchangeable():
    # The check above can fail: the samplers' outputs differ from each other by
    # far more than its tolerance.
    references = np.load(REFERENCES)
    outputs = [references[f"{name}_10"] for name, _, _ in CASES[:4]]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert np.abs(outputs[i] - outputs[j]).max() > 1e-2


@pytest.mark.skipif(
    importlib.util.find_spec("diffusers") is None,
    reason="diffusers is not installed: the stored references are checked above",
)
def test_stored_references_are_what_diffusers_computes():
    import scripts.make_sampler_references as make

    stored = np.load(REFERENCES)
    for key, value in make.references().items():
        # float32 recomputed on another CPU or diffusers release moves the
        # last bits of each value (seen: 2.6e-6 on values near 3.7): a
        # relative float32 tolerance on top of the absolute one.
        np.testing.assert_allclose(
            stored[key], value, rtol=1e-6, atol=1e-6, err_msg=key
        )
