"""DPM-Solver++, Euler and Heun, Karras spacing and fractional timesteps.

The solvers are checked on the exact Gaussian denoiser (tests/gaussian.py)
against the papers' updates propagated in float64 numpy; the golden comparison
with diffusers is in test_references.py.
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.gaussian import (
    SHAPE,
    S,
    assert_moments,
    exact_ode_moments,
    ideal_denoiser,
    oracle_model,
    rate_tables,
)
from tests.helpers import count_calls

BACKEND = keras.backend.backend()
LINEAR = kd.schedules.LinearSchedule()

SOLVERS = [
    ("dpm_solver", {"order": 1}),
    ("dpm_solver", {"order": 2}),
    ("dpm_solver", {"order": 3}),
    ("euler", {}),
    ("heun", {}),
]


@pytest.mark.parametrize("steps", [6, 20])
@pytest.mark.parametrize("kind,kwargs", SOLVERS)
def test_solver_reproduces_exact_gaussian_moments(kind, kwargs, steps):
    sampler = kd.samplers.get({"name": kind, "clip": False, **kwargs})
    timesteps = sampler.timesteps(LINEAR, steps)
    mean, std = exact_ode_moments(kind, LINEAR, timesteps, **kwargs)
    noise = np.random.default_rng(0).standard_normal(SHAPE).astype("float32")
    out = sampler.sample(ideal_denoiser(LINEAR), noise, LINEAR, steps=steps)
    assert_moments(ops.convert_to_numpy(out), mean, std)


def test_first_order_dpm_solver_is_ddim():
    # DPM-Solver++ at order 1 is DDIM with η = 0 (Lu et al. 2022, sec. 4.1).
    noise = np.random.default_rng(1).standard_normal((2, 4, 4, 1)).astype("float32")
    outputs = [
        ops.convert_to_numpy(
            sampler.sample(ideal_denoiser(LINEAR), noise, LINEAR, steps=12)
        )
        for sampler in (
            kd.samplers.DPMSolverSampler(order=1, clip=False, spacing="trailing"),
            kd.samplers.DDIMSampler(clip=False, spacing="trailing"),
        )
    ]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-4)


def test_higher_orders_converge_faster_on_the_gaussian():
    # Error of the output std against the data's s, from the exact propagation,
    # on Karras spacing (trailing spacing ends with a first-order jump from
    # t = T/N − 1, whose error dominates every solver's).
    def error(kind, steps, **kwargs):
        sampler = kd.samplers.get({"name": kind, "spacing": "karras", **kwargs})
        timesteps = sampler.timesteps(LINEAR, steps)
        return abs(exact_ode_moments(kind, LINEAR, timesteps, **kwargs)[1] - S)

    for steps in (40, 80):
        first_order = error("dpm_solver", steps, order=1)
        assert error("euler", steps) == pytest.approx(first_order, rel=1e-6)
        assert error("dpm_solver", steps, order=2) < first_order / 3
        assert error("dpm_solver", steps, order=3) < first_order / 3
        assert error("heun", steps) < first_order / 3
    # First order halves its error when the steps double; second order quarters it.
    assert error("euler", 40) / error("euler", 80) == pytest.approx(2, abs=0.3)
    assert error("heun", 40) / error("heun", 80) > 3.5


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
@pytest.mark.parametrize("kind,kwargs", [("dpm_solver", {"order": 3}), ("heun", {})])
def test_every_prediction_type_through_the_model(prediction, kind, kwargs):
    # `generate` clips its output to [-1, 1]: a step count where the output
    # std is near the data's keeps the clipped tails negligible.
    model = oracle_model(prediction, LINEAR, image_shape=(16, 16, 1))
    sampler = kd.samplers.get({"name": kind, "clip": False, **kwargs})
    images = model.generate(64, sampler=sampler, steps=12, seed=3)
    mean, std = exact_ode_moments(kind, LINEAR, sampler.timesteps(LINEAR, 12), **kwargs)
    assert_moments(images, mean, std)


def test_clipping_keeps_a_solver_inside_the_data_range():
    # An over-confident denoiser (x0_hat = 3·x_t) is clipped at every step.
    def wild(x, t):
        alpha, sigma = kd.ops.rates_at(t, *rate_tables(LINEAR))
        x0 = 3.0 * x
        return x0, (x - alpha * x0) / sigma

    noise = np.random.default_rng(2).standard_normal((2, 4, 4, 1)).astype("float32")
    for kind in ("dpm_solver", "heun"):
        out = kd.samplers.get(kind).sample(wild, noise, LINEAR, steps=8)
        assert np.abs(ops.convert_to_numpy(out)).max() <= 1.0 + 1e-5


def test_dpm_solver_orders_per_step():
    solver = kd.samplers.DPMSolverSampler(order=3)
    np.testing.assert_array_equal(solver.orders(6), [1, 2, 3, 3, 2, 1])
    np.testing.assert_array_equal(solver.orders(16)[-3:], [3, 3, 1])
    np.testing.assert_array_equal(solver.orders(1), [1])
    plain = kd.samplers.DPMSolverSampler(order=3, lower_order_final=False)
    np.testing.assert_array_equal(plain.orders(6), [1, 2, 3, 3, 3, 1])


def test_karras_sigmas_follow_eq_5():
    sigmas = kd.samplers.karras_sigmas(0.002, 80.0, 4, rho=7.0)
    ramp = np.array([0, 1 / 3, 2 / 3, 1])
    expected = (80 ** (1 / 7) + ramp * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(sigmas, expected, rtol=1e-12)
    np.testing.assert_allclose(
        kd.samplers.karras_sigmas(1.0, 5.0, 5, rho=1.0), [5, 4, 3, 2, 1]
    )
    assert kd.samplers.karras_sigmas(1.0, 5.0, 1).tolist() == [5.0]


def test_karras_spacing_visits_fractional_timesteps_on_the_curve():
    sampler = kd.samplers.DDIMSampler(spacing="karras", sigma_max=None)
    timesteps = sampler.timesteps(LINEAR, 10)
    assert timesteps[0] == 999 and timesteps[-1] == 0
    assert np.all(np.diff(timesteps) < 0)
    assert not np.allclose(timesteps, np.round(timesteps))
    sigmas = np.sqrt(
        (1 - LINEAR.alpha_bar_at(timesteps)) / LINEAR.alpha_bar_at(timesteps)
    )
    expected = kd.samplers.karras_sigmas(LINEAR.sigmas[0], LINEAR.sigmas[-1], 10)
    np.testing.assert_allclose(sigmas, expected, rtol=1e-9)
    # From a later start (reconstruction), the curve starts at that timestep's σ.
    assert sampler.timesteps(LINEAR, 5, start=300)[0] == 300


def test_karras_spacing_caps_the_largest_sigma():
    cosine = kd.schedules.CosineSchedule()
    assert cosine.sigmas[-1] > 1e4  # reached only in the last few timesteps
    timesteps = kd.samplers.EulerSampler().timesteps(cosine, 8)  # sigma_max=80
    ab = cosine.alpha_bar_at(timesteps)
    sigmas = np.sqrt((1 - ab) / ab)
    np.testing.assert_allclose(
        sigmas, kd.samplers.karras_sigmas(cosine.sigmas[0], 80.0, 8), rtol=1e-9
    )
    assert 900 < timesteps[0] < 999
    # A cap above the schedule's σ_max changes nothing.
    wide = kd.samplers.EulerSampler(sigma_max=1e6).timesteps(LINEAR, 8)
    np.testing.assert_array_equal(
        wide, kd.samplers.EulerSampler(sigma_max=None).timesteps(LINEAR, 8)
    )


def test_alpha_bar_at_interpolates_log_sigma():
    sigmas = LINEAR.sigmas
    assert LINEAR.alpha_bar_at(10) == LINEAR.alphas_cumprod[10]
    # Halfway between two timesteps, σ is their geometric mean.
    ab = LINEAR.alpha_bar_at(10.5)
    np.testing.assert_allclose(np.sqrt((1 - ab) / ab), np.sqrt(sigmas[10] * sigmas[11]))
    t = np.array([0.0, 3.25, 500.5, 999.0])
    np.testing.assert_allclose(
        LINEAR.timestep_at(
            np.sqrt((1 - LINEAR.alpha_bar_at(t)) / LINEAR.alpha_bar_at(t))
        ),
        t,
        atol=1e-9,
    )
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 999\]"):
        LINEAR.alpha_bar_at(999.5)
    with pytest.raises(ValueError, match="noise levels must lie in"):
        LINEAR.timestep_at(1e4)


def test_rates_at_agrees_with_the_schedule():
    t = np.array([0.0, 10.0, 10.5, 333.3, 998.9, 999.0], "float32")
    alpha, sigma = kd.ops.rates_at(t, *rate_tables(LINEAR))
    ab = LINEAR.alpha_bar_at(t.astype(np.float64))
    np.testing.assert_allclose(ops.convert_to_numpy(alpha), np.sqrt(ab), rtol=2e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(sigma), np.sqrt(1 - ab), rtol=2e-5)
    # Integer timesteps read the tables exactly.
    assert ops.convert_to_numpy(alpha)[1] == LINEAR.signal_rates[10]


def test_the_model_denoises_at_fractional_timesteps():
    # Karras spacing through a real network and `generate`: runs, and the
    # model's rates at fractional t are the schedule's interpolated ones.
    network = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, attention_levels=()
    )
    model = kd.DiffusionModel(network, schedule={"name": "linear", "timesteps": 50})
    images = model.generate(2, sampler="euler", steps=4, seed=0)
    assert images.shape == (2, 8, 8, 3) and np.all(np.isfinite(images))


@pytest.mark.parametrize("name", ["dpm_solver", "euler", "heun"])
def test_registered_serialisable_and_saved_as_the_default_sampler(name, tmp_path):
    sampler = kd.samplers.get({"name": name, "spacing": "linspace", "default_steps": 7})
    again = kd.samplers.deserialize(kd.samplers.serialize(sampler))
    assert again == sampler and again.default_steps == 7
    network = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, attention_levels=()
    )
    model = kd.DiffusionModel(network, sampler=sampler)
    path = str(tmp_path / "model.keras")
    model.save(path)
    assert keras.saving.load_model(path).sampler == sampler


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="`order` must be one of 1, 2, 3, got 4"):
        kd.samplers.DPMSolverSampler(order=4)
    with pytest.raises(ValueError, match="`rho`"):
        kd.samplers.HeunSampler(rho=0.0)
    with pytest.raises(ValueError, match="`sigma_max`"):
        kd.samplers.DPMSolverSampler(sigma_max=-1.0)
    with pytest.raises(ValueError, match="'karras'"):
        kd.samplers.EulerSampler(spacing="karas")
    with pytest.raises(ValueError, match=r"`steps` must lie in \[1, 1000\]"):
        kd.samplers.EulerSampler().timesteps(LINEAR, 1001)


@pytest.mark.parametrize(
    "config,evaluations", [({"name": "dpm_solver", "order": 3}, 10), ("heun", 19)]
)
def test_one_compiled_loop_and_the_evaluations_per_run(
    config, evaluations, monkeypatch
):
    model = oracle_model("epsilon", LINEAR, image_shape=(4, 4, 1))
    calls = count_calls(monkeypatch, model, "denoise")
    noise = np.random.default_rng(0).standard_normal((3, 4, 4, 1)).astype("float32")
    first = model.generate(None, sampler=config, steps=10, initial_noise=noise)
    second = model.generate(None, sampler=config, steps=10, initial_noise=noise[::-1])
    np.testing.assert_allclose(second, first[::-1], atol=1e-5)
    if BACKEND == "torch":  # eager: every evaluation runs, Heun's last step has one
        assert calls[0] == 2 * evaluations
    else:  # traced once for both calls (Heun's body holds its two evaluations)
        assert calls[0] == (2 if config == "heun" else 1)
