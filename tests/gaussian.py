"""The exact denoiser of Gaussian data, and the exact moments of samplers fed it.

For x0 ~ N(μ, s²) (per pixel, independent), E[x0 | x_t] and E[eps | x_t] are affine
in x_t, so every sampler step is linear-Gaussian and its output's exact mean and
variance can be propagated in float64 numpy from the papers' formulas. The
sampler's empirical moments must agree within sampling error.
"""

import keras
import numpy as np
from keras import ops

import keras_ddpm as kd

MU, S = 0.1, 0.2
SHAPE = (64, 32, 32, 1)  # 65,536 independent samples


def ideal_denoiser(schedule, mu=MU, s=S):
    alphas_cumprod = ops.convert_to_tensor(schedule.alphas_cumprod.astype("float32"))

    def denoise(x, t):
        ab = ops.take(alphas_cumprod, ops.cast(t, "int32"))
        x0 = mu + ops.sqrt(ab) * s**2 * (x - ops.sqrt(ab) * mu) / (ab * s**2 + 1 - ab)
        eps = (x - ops.sqrt(ab) * x0) / ops.sqrt(1 - ab)
        return x0, eps

    return denoise


def affine_predictions(ab, mu=MU, s=S):
    """x0_hat = p·x + q and eps_hat = r·x + u for the ideal predictor at ᾱ = ab."""
    p = np.sqrt(ab) * s**2 / (ab * s**2 + 1 - ab)
    q = mu - p * np.sqrt(ab) * mu
    r = (1 - np.sqrt(ab) * p) / np.sqrt(1 - ab)
    u = -np.sqrt(ab) * q / np.sqrt(1 - ab)
    return p, q, r, u


def exact_moments(kind, schedule, timesteps, variance="fixed_small", eta=0.0):
    """Propagate mean and variance through the papers' update equations."""
    mean, var = 0.0, 1.0
    alphas_cumprod = schedule.alphas_cumprod
    for i, t in enumerate(timesteps):
        ab = alphas_cumprod[t]
        ab_prev = alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        p, q, r, u = affine_predictions(ab)
        if kind == "ddpm":
            # Ho et al. 2020 eq. 7 on the respaced process; no noise at the last step.
            beta = 1 - ab / ab_prev
            coef_x0 = np.sqrt(ab_prev) * beta / (1 - ab)
            coef_xt = np.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)
            gain, offset = coef_xt + coef_x0 * p, coef_x0 * q
            noise_var = (
                beta * (1 - ab_prev) / (1 - ab) if variance == "fixed_small" else beta
            )
            if i + 1 == len(timesteps):
                noise_var = 0.0
        else:
            # Song et al. 2021 eq. 12 and 16.
            sigma2 = eta**2 * (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)
            direction = np.sqrt(1 - ab_prev - sigma2)
            gain = np.sqrt(ab_prev) * p + direction * r
            offset = np.sqrt(ab_prev) * q + direction * u
            noise_var = sigma2
        mean, var = gain * mean + offset, gain**2 * var + noise_var
    return mean, np.sqrt(var)


def assert_moments(samples, mean, std):
    samples = np.asarray(samples, dtype=np.float64).ravel()
    n = samples.size
    assert abs(samples.mean() - mean) < 5 * std / np.sqrt(n), (samples.mean(), mean)
    assert abs(samples.std() / std - 1) < 5 / np.sqrt(2 * n), (samples.std(), std)


class GaussianOracle(keras.layers.Layer):
    """The exact E[prediction | x_t] for data x0 ~ N(MU, S²), as a 'network'."""

    def __init__(self, alphas_cumprod, prediction, **kwargs):
        super().__init__(**kwargs)
        self.table = np.asarray(alphas_cumprod, "float32")
        self.prediction = prediction

    def call(self, inputs):
        x, t = inputs
        ab = ops.reshape(
            ops.take(ops.convert_to_tensor(self.table), ops.cast(t, "int32")),
            (-1, 1, 1, 1),
        )
        x0 = MU + ops.sqrt(ab) * S**2 * (x - ops.sqrt(ab) * MU) / (ab * S**2 + 1 - ab)
        eps = (x - ops.sqrt(ab) * x0) / ops.sqrt(1 - ab)
        return {
            "epsilon": eps,
            "x0": x0,
            "v": ops.sqrt(ab) * eps - ops.sqrt(1 - ab) * x0,
        }[self.prediction]


def oracle_model(prediction, schedule, image_shape=SHAPE[1:]):
    """A `DiffusionModel` whose network is the exact predictor of Gaussian data."""
    images = keras.Input(image_shape)
    timesteps = keras.Input(())
    outputs = GaussianOracle(schedule.alphas_cumprod, prediction)([images, timesteps])
    return kd.DiffusionModel(
        keras.Model([images, timesteps], outputs),
        schedule=schedule,
        prediction=prediction,
    )
