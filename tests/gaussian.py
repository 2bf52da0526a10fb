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


def rate_tables(schedule):
    """The float32 tables `kd.ops.rates_at` reads, for timesteps that may be fractional."""
    names = ("signal_rates", "noise_rates", "log_sigmas")
    return [ops.convert_to_tensor(getattr(schedule, name)) for name in names]


def ideal_denoiser(schedule, mu=MU, s=S):
    tables = rate_tables(schedule)

    def denoise(x, t):
        alpha, _ = kd.ops.rates_at(t, *tables)
        ab = alpha**2
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


def _step_means(mu, timesteps):
    """The data mean each step's denoiser assumes: `mu` scalar, or one per step."""
    return np.broadcast_to(np.asarray(mu, np.float64), (len(timesteps),))


def exact_moments(kind, schedule, timesteps, variance="fixed_small", eta=0.0, mu=MU):
    """Propagate mean and variance through the papers' update equations.

    `mu` is the data mean, or one per step: the denoiser of step i is then
    the exact one for mean `mu[i]` (as guidance over an interval makes it).
    """
    means = _step_means(mu, timesteps)
    mean, var = 0.0, 1.0
    alphas_cumprod = schedule.alphas_cumprod
    for i, t in enumerate(timesteps):
        ab = alphas_cumprod[t]
        ab_prev = alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        p, q, r, u = affine_predictions(ab, means[i])
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


def exact_ode_moments(
    kind, schedule, timesteps, order=2, lower_order_final=True, mu=MU
):
    """Mean and std of a deterministic solver's output, from the papers' updates.

    The solvers' only randomness is the initial noise z ~ N(0, 1): with the ideal
    denoiser every iterate is `g·z + o`, so (g, o) pairs are propagated.
    `kind`: "dpm_solver" (Lu et al. 2022, DPM-Solver++ multistep in the D0/D1/D2
    form of the paper's Algorithm 2 and 3M update), "euler" or "heun" (Karras et
    al. 2022, Algorithm 1, in the variance-exploding scaling x̃ = x/sqrt(ᾱ)).
    `mu` as in `exact_moments`.
    """
    means = np.append(_step_means(mu, timesteps), 0.0)  # Heun's last look unused
    timesteps = np.asarray(timesteps, np.float64)
    ab = np.append(schedule.alpha_bar_at(timesteps), 1.0)
    n = len(timesteps)
    x = np.array([1.0, 0.0])  # (gain, offset) of x at the current step

    def x0_hat(x, i):
        p, q, _, _ = affine_predictions(ab[i], means[i])
        return np.array([p * x[0], p * x[1] + q])

    def eps_hat(x, i):
        _, _, r, u = affine_predictions(ab[i], means[i])
        return np.array([r * x[0], r * x[1] + u])

    if kind == "dpm_solver":
        alpha, sigma = np.sqrt(ab), np.sqrt(1 - ab)
        lam = np.log(alpha[:-1]) - np.log(sigma[:-1])
        history = []
        for i in range(n):
            m0 = x0_hat(x, i)
            history.insert(0, m0)
            if i == n - 1:
                x = m0  # the last step reaches σ = 0 and returns x0_hat
                break
            use = min(order, i + 1)
            if lower_order_final and n < 15 and i == n - 2:
                use = min(use, 2)
            h = lam[i + 1] - lam[i]
            ratio = sigma[i + 1] / sigma[i]
            step = -alpha[i + 1] * (np.exp(-h) - 1.0)
            if use == 1:
                x = ratio * x + step * m0
            elif use == 2:
                r0 = (lam[i] - lam[i - 1]) / h
                d1 = (m0 - history[1]) / r0
                x = ratio * x + step * m0 + 0.5 * step * d1
            else:
                r0 = (lam[i] - lam[i - 1]) / h
                r1 = (lam[i - 1] - lam[i - 2]) / h
                d1_0 = (m0 - history[1]) / r0
                d1_1 = (history[1] - history[2]) / r1
                d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = (
                    ratio * x
                    + step * m0
                    + alpha[i + 1] * ((np.exp(-h) - 1.0) / h + 1.0) * d1
                    - alpha[i + 1] * ((np.exp(-h) - 1.0 + h) / h**2 - 0.5) * d2
                )
        return x[1], abs(x[0])
    sig = np.sqrt((1 - ab) / ab)
    xt = x / np.sqrt(ab[0])  # x̃ = x / sqrt(ᾱ)
    for i in range(n):
        d = eps_hat(xt * np.sqrt(ab[i]), i)
        proposal = xt + (sig[i + 1] - sig[i]) * d
        if kind == "heun" and i < n - 1:
            d_next = eps_hat(proposal * np.sqrt(ab[i + 1]), i + 1)
            proposal = xt + (sig[i + 1] - sig[i]) * 0.5 * (d + d_next)
        xt = proposal
    return xt[1], abs(xt[0])


def exact_sampler_moments(kind, schedule, timesteps, mu=MU):
    """`exact_moments` for DDIM and DDPM, else `exact_ode_moments` (solvers)."""
    if kind in ("ddim", "ddpm"):
        return exact_moments(kind, schedule, timesteps, mu=mu)
    return exact_ode_moments(kind, schedule, timesteps, mu=mu)


def assert_moments(samples, mean, std):
    samples = np.asarray(samples, dtype=np.float64).ravel()
    n = samples.size
    assert abs(samples.mean() - mean) < 5 * std / np.sqrt(n), (samples.mean(), mean)
    assert abs(samples.std() / std - 1) < 5 / np.sqrt(2 * n), (samples.std(), std)


class GaussianOracle(keras.layers.Layer):
    """The exact E[prediction | x_t] for data x0 ~ N(mu, S²), as a 'network'."""

    def __init__(self, schedule, prediction, mu=MU, **kwargs):
        super().__init__(**kwargs)
        self.tables = rate_tables(schedule)
        self.prediction = prediction
        self.mu = mu

    def call(self, inputs):
        x, t = inputs
        alpha, _ = kd.ops.rates_at(t, *self.tables)
        ab = ops.reshape(alpha**2, (-1, 1, 1, 1))
        mu = self.mu
        x0 = mu + ops.sqrt(ab) * S**2 * (x - ops.sqrt(ab) * mu) / (ab * S**2 + 1 - ab)
        eps = (x - ops.sqrt(ab) * x0) / ops.sqrt(1 - ab)
        return {
            "epsilon": eps,
            "x0": x0,
            "v": ops.sqrt(ab) * eps - ops.sqrt(1 - ab) * x0,
        }[self.prediction]


def oracle_model(prediction, schedule, image_shape=SHAPE[1:], mu=MU):
    """A `DiffusionModel` whose network is the exact predictor of N(mu, S²) data."""
    images = keras.Input(image_shape)
    timesteps = keras.Input(())
    outputs = GaussianOracle(schedule, prediction, mu=mu)([images, timesteps])
    return kd.DiffusionModel(
        keras.Model([images, timesteps], outputs),
        schedule=schedule,
        prediction=prediction,
    )
