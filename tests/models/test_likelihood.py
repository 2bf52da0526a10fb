"""Bits/dim from the variational bound, against its closed form for Gaussian data.

For 8-bit data drawn from a Gaussian N(μ, s²) and the exact affine denoiser of the
continuous Gaussian (tests/gaussian.py), every term of Ho et al.'s eq. 5 has a
closed form in the first two moments of the data (the KL terms and the prior), and
the decoder term is a one-dimensional Gaussian expectation summed over the 256
levels; both are computed here in float64 with scipy, independently of the library.
"""

import keras
import numpy as np
import pytest
from keras import ops
from scipy import stats

import keras_ddpm as kd
from keras_ddpm.models.likelihood import bound_terms
from tests.gaussian import MU, S, affine_predictions, ideal_denoiser

SCHEDULE = kd.schedules.LinearSchedule(timesteps=100, beta_start=1e-3, beta_end=0.2)
SHAPE = (8, 8, 1)


def gaussian_8bit_data(num, seed):
    # Seeds far from the bound's own (0, 1, ...): equal seeds would make the
    # noise of x_t a copy of the data's.
    x = np.random.default_rng(1000 + seed).normal(MU, S, (num,) + SHAPE)
    return (np.round((np.clip(x, -1, 1) + 1) * 127.5) / 127.5 - 1).astype("float32")


def closed_form_bits_per_dim(schedule, variance):
    levels = np.arange(256) / 127.5 - 1
    upper = np.where(levels < 1, levels + 1 / 255, np.inf)
    lower = np.where(levels > -1, levels - 1 / 255, -np.inf)
    mass = stats.norm.cdf(upper, MU, S) - stats.norm.cdf(lower, MU, S)
    m1, m2 = (mass * levels).sum(), (mass * levels**2).sum()

    ab = schedule.alphas_cumprod
    beta = schedule.betas
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    # Ho et al. 2020, eq. 7: posterior mean coefficient of x0 and variance β̃.
    c = np.sqrt(ab_prev) * beta / (1 - ab)
    beta_tilde = beta * (1 - ab_prev) / (1 - ab)
    sigma2 = beta_tilde if variance == "fixed_small" else beta

    prior = 0.5 * ((1 - ab[-1]) + ab[-1] * m2 - 1 - np.log(1 - ab[-1]))
    diffusion = 0.0
    for t in range(1, len(ab)):
        p, q, _, _ = affine_predictions(ab[t])
        a = 1 - p * np.sqrt(ab[t])  # x0 − x0_hat = a·x0 − q − p·sqrt(1 − ᾱ)·ε
        error2 = a**2 * m2 - 2 * a * q * m1 + q**2 + p**2 * (1 - ab[t])
        diffusion += 0.5 * (
            np.log(sigma2[t] / beta_tilde[t])
            + beta_tilde[t] / sigma2[t]
            - 1
            + c[t] ** 2 * error2 / sigma2[t]
        )
    # Decoder: discretised N(x0_hat, σ0²) at the x0 index, σ0² = β̃_1 or β_0.
    sigma0 = np.sqrt(beta_tilde[1] if variance == "fixed_small" else beta[0])
    p, q, _, _ = affine_predictions(ab[0])
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    x = levels[:, None]
    mean = p * (np.sqrt(ab[0]) * x + np.sqrt(1 - ab[0]) * nodes[None, :]) + q
    bin_mass = stats.norm.cdf(upper[:, None], mean, sigma0) - stats.norm.cdf(
        lower[:, None], mean, sigma0
    )
    decoder = -(
        mass[:, None] * weights[None, :] * np.log(np.maximum(bin_mass, 1e-12))
    ).sum()
    return (prior + diffusion + decoder) / np.log(2)


class GaussianEpsilon(keras.layers.Layer):
    """The exact ε-predictor of Gaussian data, as a network DiffusionModel can wrap."""

    def __init__(self, schedule, **kwargs):
        super().__init__(**kwargs)
        self.denoise = ideal_denoiser(schedule)

    def call(self, inputs):
        x, t = inputs
        return self.denoise(x, ops.reshape(t, (-1, 1, 1, 1)))[1]


def gaussian_model():
    images, timesteps = keras.Input(SHAPE), keras.Input(())
    network = keras.Model(
        [images, timesteps], GaussianEpsilon(SCHEDULE)([images, timesteps])
    )
    return kd.DiffusionModel(network, schedule=SCHEDULE, ema_momentum=None)


def test_bits_per_dim_of_a_gaussian_model_match_the_closed_form():
    expected = closed_form_bits_per_dim(SCHEDULE, "fixed_small")
    data = gaussian_8bit_data(96, seed=0)
    result = gaussian_model().evaluate_nll(data, seed=0)
    assert result["num_images"] == 96
    assert result["bits_per_dim"] == pytest.approx(expected, rel=0.01)
    assert abs(result["bits_per_dim"] - expected) < 5 * result["standard_error"] + 1e-3
    total = result["prior"] + result["diffusion"] + result["decoder"]
    assert total == pytest.approx(result["bits_per_dim"], rel=1e-12)

    # Subsampled timesteps: unbiased, with a larger standard error.
    sampled = gaussian_model().evaluate_nll(data, timesteps=8, seed=1)
    assert abs(sampled["bits_per_dim"] - expected) < 5 * sampled["standard_error"]
    assert sampled["standard_error"] > result["standard_error"]


def test_fixed_large_variance_terms_match_the_closed_form():
    expected = closed_form_bits_per_dim(SCHEDULE, "fixed_large")
    denoise = ideal_denoiser(SCHEDULE)
    terms = bound_terms(
        lambda x, t: denoise(x, ops.reshape(t, (-1, 1, 1, 1))),
        gaussian_8bit_data(96, seed=3),
        SCHEDULE,
        variance="fixed_large",
        rng=np.random.default_rng(0),
    )
    assert terms["total"].mean() == pytest.approx(expected, rel=0.01)


def test_evaluate_nll_rejects_bad_input():
    model = gaussian_model()
    with pytest.raises(ValueError, match="shape \\(B, 8, 8, 1\\)"):
        model.evaluate_nll(np.zeros((2, 4, 4, 1), "float32"))
    with pytest.raises(
        ValueError, match="`timesteps` must be None or an int in \\[1, 99\\]"
    ):
        model.evaluate_nll(gaussian_8bit_data(2, seed=0), timesteps=0)
    with pytest.raises(ValueError, match="`variance` must be one of"):
        model.evaluate_nll(gaussian_8bit_data(2, seed=0), variance="learned")
    with pytest.raises(ValueError, match="in \\[-1, 1\\]"):
        model.evaluate_nll(np.full((2,) + SHAPE, 3.0, "float32"))
