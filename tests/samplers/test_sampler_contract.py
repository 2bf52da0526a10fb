"""The sampler contract: carried state, several evaluations per step, one compiled loop.

Two toy samplers that the linear (a, b, c, d) rule cannot express run inside
`DiffusionModel.generate`'s compiled loop, fed the exact Gaussian denoiser, and
are checked against the same rules written in float64 numpy; conditioning
tensors reach the denoiser without retracing.
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from keras_ddpm.models import sampling
from tests.gaussian import affine_predictions, oracle_model
from tests.helpers import count_calls

BACKEND = keras.backend.backend()
SCHEDULE = kd.schedules.LinearSchedule(timesteps=100)
SHAPE = (4, 4, 1)


def ddim_tables(schedule, steps):
    timesteps = kd.samplers.spaced_timesteps(schedule.timesteps, steps, "trailing")
    alpha_bar = schedule.alphas_cumprod[timesteps]
    alpha_bar_prev = np.append(alpha_bar[1:], 1.0)
    return timesteps, alpha_bar, alpha_bar_prev


class AveragedHistorySampler(kd.samplers.Sampler):
    """Multistep toy: a DDIM step on the mean of this step's and the previous x0_hat."""

    def tables(self, schedule, steps=None, start=None):
        timesteps, alpha_bar, alpha_bar_prev = ddim_tables(schedule, steps)
        tables = {
            "t": timesteps,
            "signal": np.sqrt(alpha_bar),
            "noise": np.sqrt(1 - alpha_bar),
            "signal_prev": np.sqrt(alpha_bar_prev),
            "noise_prev": np.sqrt(1 - alpha_bar_prev),
            "first": (np.arange(len(timesteps)) == 0).astype(float),
        }
        return {k: np.asarray(v, "float32") for k, v in tables.items()}

    def initial_state(self, x):
        return (ops.zeros_like(x),)

    def step(self, denoise, x, state, row, noise):
        (previous,) = state
        x0, _ = self.predict(denoise, x, row["t"], row["signal"], row["noise"])
        mixed = row["first"] * x0 + (1 - row["first"]) * 0.5 * (x0 + previous)
        eps = (x - row["signal"] * mixed) / row["noise"]
        return row["signal_prev"] * mixed + row["noise_prev"] * eps, (x0,)


class TwiceEvaluatedSampler(kd.samplers.Sampler):
    """Two-evaluation toy: a DDIM step, then x0_hat re-evaluated at the proposal."""

    def tables(self, schedule, steps=None, start=None):
        timesteps, alpha_bar, alpha_bar_prev = ddim_tables(schedule, steps)
        t_prev = np.append(timesteps[1:], 0)
        tables = {
            "t": timesteps,
            "t_prev": t_prev,
            "signal": np.sqrt(alpha_bar),
            "noise": np.sqrt(1 - alpha_bar),
            "signal_prev": np.sqrt(alpha_bar_prev),
            "noise_prev": np.sqrt(1 - alpha_bar_prev),
            "signal_at_t_prev": np.sqrt(schedule.alphas_cumprod[t_prev]),
            "noise_at_t_prev": np.sqrt(1 - schedule.alphas_cumprod[t_prev]),
        }
        return {k: np.asarray(v, "float32") for k, v in tables.items()}

    def step(self, denoise, x, state, row, noise):
        x0, eps = self.predict(denoise, x, row["t"], row["signal"], row["noise"])
        proposal = row["signal_prev"] * x0 + row["noise_prev"] * eps
        x0_again, _ = self.predict(
            denoise,
            proposal,
            row["t_prev"],
            row["signal_at_t_prev"],
            row["noise_at_t_prev"],
        )
        x0 = 0.5 * (x0 + x0_again)
        eps = (x - row["signal"] * x0) / row["noise"]
        return row["signal_prev"] * x0 + row["noise_prev"] * eps, state


def numpy_averaged_history(x, steps):
    timesteps, alpha_bar, alpha_bar_prev = ddim_tables(SCHEDULE, steps)
    previous = None
    for ab, ab_prev in zip(alpha_bar, alpha_bar_prev):
        p, q, _, _ = affine_predictions(ab)
        x0 = p * x + q
        mixed = x0 if previous is None else 0.5 * (x0 + previous)
        eps = (x - np.sqrt(ab) * mixed) / np.sqrt(1 - ab)
        x, previous = np.sqrt(ab_prev) * mixed + np.sqrt(1 - ab_prev) * eps, x0
    return x


def numpy_twice_evaluated(x, steps):
    timesteps, alpha_bar, alpha_bar_prev = ddim_tables(SCHEDULE, steps)
    t_prev = np.append(timesteps[1:], 0)
    for ab, ab_prev, t_next in zip(alpha_bar, alpha_bar_prev, t_prev):
        p, q, r, u = affine_predictions(ab)
        x0, eps = p * x + q, r * x + u
        proposal = np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps
        p2, q2, _, _ = affine_predictions(SCHEDULE.alphas_cumprod[t_next])
        x0 = 0.5 * (x0 + p2 * proposal + q2)
        eps = (x - np.sqrt(ab) * x0) / np.sqrt(1 - ab)
        x = np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps
    return x


@pytest.mark.parametrize(
    "sampler,reference,evaluations",
    [
        (AveragedHistorySampler(clip=False), numpy_averaged_history, 1),
        (TwiceEvaluatedSampler(clip=False), numpy_twice_evaluated, 2),
    ],
    ids=["multistep", "two-evaluations"],
)
def test_toy_solvers_run_in_the_compiled_loop(
    sampler, reference, evaluations, monkeypatch
):
    model = oracle_model("epsilon", SCHEDULE, image_shape=SHAPE)
    calls = count_calls(monkeypatch, model, "denoise")
    noise = np.random.default_rng(0).standard_normal((6,) + SHAPE).astype("float32")
    first = model.generate(None, sampler=sampler, steps=10, initial_noise=noise)
    expected = reference(noise.astype(np.float64), 10)
    np.testing.assert_allclose(first, np.clip(expected, -1, 1), atol=2e-4)
    second = model.generate(
        None, sampler=sampler, steps=10, initial_noise=noise[::-1].copy()
    )
    np.testing.assert_allclose(second, first[::-1], atol=1e-5)
    # JAX and TensorFlow trace the loop body once for both calls; torch runs
    # the Python loop: one call per evaluation and step.
    expected_calls = evaluations * (1 if BACKEND != "torch" else 2 * 10)
    assert calls[0] == expected_calls


class GainOracle(kd.DiffusionModel):
    """The Gaussian oracle with x0_hat scaled by a conditioning `gain` per image."""

    def denoise(self, weights, non_trainable, x_t, t, conditioning=None):
        conditioning = dict(conditioning or {})
        gain = conditioning.pop("gain", None)
        scale = conditioning.pop("scale", 1.0)
        x0, eps = super().denoise(weights, non_trainable, x_t, t, conditioning)
        if gain is not None:
            x0 = x0 * ops.reshape(gain, (-1, 1, 1, 1)) * scale
        return x0, eps


def gain_model():
    base = oracle_model("x0", SCHEDULE, image_shape=SHAPE)
    return GainOracle(base.network, schedule=SCHEDULE, prediction="x0")


def test_conditioning_reaches_the_denoiser_per_image_and_whole(monkeypatch):
    model = gain_model()
    calls = count_calls(monkeypatch, model, "denoise")
    x = np.random.default_rng(1).standard_normal((5,) + SHAPE).astype("float32")
    sampler = kd.samplers.DDIMSampler(clip=False)
    plain = sampling.sample(model, x, sampler=sampler, steps=4)
    ones = sampling.sample(
        model,
        x,
        sampler=sampler,
        steps=4,
        batch_size=2,
        conditioning={"gain": np.ones(5, "float32"), "scale": np.float32(1.0)},
    )
    np.testing.assert_allclose(ones, plain, atol=1e-5)
    traced = calls[0]
    gains = np.array([0.0, 0.5, 1.0, 1.5, 2.0], "float32")
    scaled = sampling.sample(
        model,
        x,
        sampler=sampler,
        steps=4,
        batch_size=2,
        conditioning={"gain": gains, "scale": np.float32(0.5)},
    )
    if BACKEND != "torch":  # new values, same program
        assert calls[0] == traced
    # The last step returns x0_hat: zero where the gain is zero.
    assert np.abs(scaled[0]).max() == 0
    assert np.abs(scaled[2] - plain[2]).max() > 1e-3


def test_unconditional_model_refuses_conditioning_and_bad_rows():
    model = oracle_model("epsilon", SCHEDULE, image_shape=SHAPE)
    x = np.zeros((3,) + SHAPE, "float32")
    with pytest.raises(ValueError, match="takes no conditioning"):
        sampling.sample(model, x, steps=2, conditioning={"labels": np.zeros(3)})
    with pytest.raises(ValueError, match="must be a scalar or have 3 rows"):
        sampling.sample(model, x, steps=2, conditioning={"labels": np.zeros(2)})
