"""The diffusion equations, written once over `keras.ops`.

Every function works on any backend and on symbolic tensors, and on numpy arrays
too (then in numpy, float64 kept), so reference maths and tables reuse them.
Per-sample scalars (`alpha`, `sigma`, shaped `(B,)`) are broadcast to image rank
by `expand_to_rank`. The true posterior's coefficients, tables over visited
timesteps, are computed once here for the DDPM sampler and the likelihood.
Notation follows Ho et al. (2020) and Salimans & Ho (2022): `alpha = sqrt(ᾱ_t)`,
`sigma = sqrt(1 - ᾱ_t)`, so that `x_t = alpha * x0 + sigma * eps`.
"""

import numpy as np
from keras import ops

from keras_ddpm.utils import check_choice

PREDICTION_TYPES = ("epsilon", "x0", "v")
POSTERIOR_VARIANCES = ("fixed_small", "fixed_large")

__all__ = [
    "expand_to_rank",
    "q_sample",
    "q_posterior",
    "prediction_target",
    "predict_x0_and_eps",
    "min_snr_weight",
    "rates_at",
]


def expand_to_rank(values, rank):
    """Reshape a per-sample vector `(B,)` to `(B, 1, ..., 1)` of the given rank.

    Scalars are returned unchanged, so the same code serves a whole batch at one
    timestep (sampling) and one timestep per sample (training).

    Args:
        values: a scalar or a vector `(B,)` (array or tensor).
        rank: int, the rank of the tensors it will multiply (4 for images).

    Returns:
        A tensor of shape `(B, 1, ..., 1)` with `rank` dimensions, or the scalar.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    kd.ops.expand_to_rank(np.ones(8, "float32"), 4).shape  # (8, 1, 1, 1)
    ```
    """
    if isinstance(values, (np.ndarray, np.generic, float, int)):
        values = np.asarray(values)
        return values if values.ndim == 0 else values.reshape((-1,) + (1,) * (rank - 1))
    values = ops.convert_to_tensor(values)
    if len(values.shape) == 0:
        return values
    return ops.reshape(values, (-1,) + (1,) * (rank - 1))


def q_sample(x0, noise, alpha, sigma):
    """Forward process q(x_t | x_0) (Ho et al. 2020, eq. 4): `alpha·x0 + sigma·eps`.

    Args:
        x0: clean images `(B, H, W, C)`.
        noise: standard normal noise shaped like `x0`.
        alpha: sqrt(ᾱ_t), a scalar or one value per sample `(B,)`.
        sigma: sqrt(1 − ᾱ_t), a scalar or `(B,)`.

    Returns:
        The noised images x_t, shaped like `x0`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    schedule = kd.schedules.CosineSchedule()
    t = np.array([10, 500])
    x0 = np.zeros((2, 8, 8, 3), "float32")
    noise = np.random.default_rng(0).standard_normal(x0.shape).astype("float32")
    x_t = kd.ops.q_sample(x0, noise, schedule.signal_rates[t], schedule.noise_rates[t])
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
    """
    rank = len(x0.shape)
    return expand_to_rank(alpha, rank) * x0 + expand_to_rank(sigma, rank) * noise


def q_posterior(alpha_bar, alpha_bar_prev, variance="fixed_small"):
    """The true posterior q(x_prev | x_t, x0) between visited timesteps, as float64 tables.

    Ho et al. (2020), eq. 6–7: the posterior mean is `coef_x0·x0 + coef_xt·x_t`
    with `coef_x0 = sqrt(ᾱ_prev)·β / (1 − ᾱ_t)` and
    `coef_xt = sqrt(1 − β)·(1 − ᾱ_prev) / (1 − ᾱ_t)`, its variance
    `β̃ = β·(1 − ᾱ_prev) / (1 − ᾱ_t)`. Between two timesteps that are not
    neighbours, `β = 1 − ᾱ_t / ᾱ_prev` is the respaced process's β (Nichol &
    Dhariwal 2021, eq. 19), which keeps every marginal of the forward process;
    between neighbours it is the schedule's β_t.

    Args:
        alpha_bar: ᾱ at the current timesteps, float array.
        alpha_bar_prev: ᾱ at the previous (less noisy) timesteps, same shape
            (1.0 past t = 0).
        variance: `"fixed_small"` (β̃) or `"fixed_large"` (β): the `"variance"`
            entry returned. Defaults to `"fixed_small"`.

    Returns:
        A dict of float64 numpy arrays: `"coef_x0"`, `"coef_xt"`, `"beta"`,
        `"posterior_variance"` (β̃) and `"variance"` (as asked).

    Raises:
        ValueError: for an unknown `variance`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    schedule = kd.schedules.LinearSchedule()
    t = np.array([999, 500])
    q = kd.ops.q_posterior(schedule.alphas_cumprod[t], schedule.alphas_cumprod[t - 1])
    q["posterior_variance"] <= q["beta"]  # array([ True,  True])
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
        - [Nichol & Dhariwal, 2021. Improved Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2102.09672)
    """
    check_choice("variance", variance, POSTERIOR_VARIANCES)
    alpha_bar = np.asarray(alpha_bar, np.float64)
    alpha_bar_prev = np.asarray(alpha_bar_prev, np.float64)
    beta = 1.0 - alpha_bar / alpha_bar_prev
    posterior_variance = beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    return {
        "coef_x0": np.sqrt(alpha_bar_prev) * beta / (1.0 - alpha_bar),
        "coef_xt": np.sqrt(1.0 - beta) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar),
        "beta": beta,
        "posterior_variance": posterior_variance,
        "variance": posterior_variance if variance == "fixed_small" else beta.copy(),
    }


def min_snr_weight(snr, gamma, prediction):
    """Per-sample loss weight of min-SNR-γ for a loss on `prediction`'s target.

    Hang et al. (2023), eq. 10: `min(SNR, γ)` for a loss on x0; divided by the
    SNR for ε (whose loss is SNR times the x0 loss) and by SNR + 1 for v.

    Args:
        snr: ᾱ/(1 − ᾱ) per sample, a tensor `(B,)`.
        gamma: float > 0, the γ.
        prediction: `"epsilon"`, `"x0"` or `"v"`.

    Returns:
        The weights, shaped like `snr`.

    Raises:
        ValueError: for an unknown `prediction`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    kd.ops.min_snr_weight(np.array([0.5, 20.0], "float32"), 5.0, "epsilon")  # [1, 0.25]
    ```

    References:
        - [Hang et al., 2023. Efficient Diffusion Training via Min-SNR Weighting Strategy](https://arxiv.org/abs/2303.09556)
    """
    clipped = ops.minimum(snr, gamma)
    if prediction == "epsilon":
        return clipped / snr
    if prediction == "x0":
        return clipped
    if prediction == "v":
        return clipped / (snr + 1.0)
    raise ValueError(
        f"`prediction` must be one of {PREDICTION_TYPES}, got {prediction!r}."
    )


def prediction_target(prediction, x0, noise, alpha, sigma):
    """What a network trained with `prediction` must output for `(x0, noise)`.

    `"epsilon"` → noise, `"x0"` → x0, `"v"` → `alpha·noise − sigma·x0`
    (Salimans & Ho 2022, sec. 4).

    Args:
        prediction: `"epsilon"`, `"x0"` or `"v"`.
        x0: clean images `(B, H, W, C)`.
        noise: the noise that made x_t, shaped like `x0`.
        alpha: sqrt(ᾱ_t), a scalar or `(B,)`.
        sigma: sqrt(1 − ᾱ_t), a scalar or `(B,)`.

    Returns:
        The regression target, shaped like `x0`.

    Raises:
        ValueError: for an unknown `prediction`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    x0, noise = np.ones((1, 2, 2, 1), "float32"), np.zeros((1, 2, 2, 1), "float32")
    kd.ops.prediction_target("v", x0, noise, 0.6, 0.8)  # -0.8 everywhere
    ```

    References:
        - [Salimans & Ho, 2022. Progressive Distillation for Fast Sampling of Diffusion Models](https://arxiv.org/abs/2202.00512)
    """
    if prediction == "epsilon":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        rank = len(x0.shape)
        return expand_to_rank(alpha, rank) * noise - expand_to_rank(sigma, rank) * x0
    raise ValueError(
        f"`prediction` must be one of {PREDICTION_TYPES}, got {prediction!r}."
    )


def predict_x0_and_eps(prediction, output, x_t, alpha, sigma):
    """Convert a network output of type `prediction` into `(x0_hat, eps_hat)`.

    This is the one place where prediction types meet samplers: every sampler
    consumes the pair, whatever the network was trained to predict.

    Args:
        prediction: `"epsilon"`, `"x0"` or `"v"`: what `output` is.
        output: the network's output, shaped like `x_t`.
        x_t: the noised images `(B, H, W, C)` the network saw.
        alpha: sqrt(ᾱ_t), a scalar or `(B,)`.
        sigma: sqrt(1 − ᾱ_t), a scalar or `(B,)`.

    Returns:
        A pair `(x0_hat, eps_hat)` of tensors shaped like `x_t`, with
        `x_t = alpha·x0_hat + sigma·eps_hat`.

    Raises:
        ValueError: for an unknown `prediction`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    x_t = np.full((1, 2, 2, 1), 0.5, "float32")
    x0_hat, eps_hat = kd.ops.predict_x0_and_eps("epsilon", np.zeros_like(x_t), x_t, 0.5, 0.866)
    # eps_hat = 0, so x0_hat = x_t / alpha = 1
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
        - [Salimans & Ho, 2022. Progressive Distillation for Fast Sampling of Diffusion Models](https://arxiv.org/abs/2202.00512)
    """
    rank = len(x_t.shape)
    alpha = expand_to_rank(alpha, rank)
    sigma = expand_to_rank(sigma, rank)
    if prediction == "epsilon":
        return (x_t - sigma * output) / alpha, output
    if prediction == "x0":
        return output, (x_t - alpha * output) / sigma
    if prediction == "v":
        # alpha² + sigma² = 1 turns the v definition into two linear maps.
        return alpha * x_t - sigma * output, sigma * x_t + alpha * output
    raise ValueError(
        f"`prediction` must be one of {PREDICTION_TYPES}, got {prediction!r}."
    )


def rates_at(t, signal_rates, noise_rates, log_sigmas):
    """`(alpha, sigma)` at timesteps that may be fractional, from the schedule's tables.

    Integer timesteps read `signal_rates` and `noise_rates` exactly; between two
    integers, log σ (σ = sigma / alpha) is interpolated linearly, the rule of
    `NoiseSchedule.alpha_bar_at`, so a sampler visiting fractional timesteps
    (Karras spacing) and the denoiser it calls agree on the noise level.

    Args:
        t: timesteps, a scalar or `(B,)`, in [0, T − 1].
        signal_rates: sqrt(ᾱ_t), float32 tensor `(T,)`.
        noise_rates: sqrt(1 − ᾱ_t), float32 tensor `(T,)`.
        log_sigmas: log σ_t, float32 tensor `(T,)` (`NoiseSchedule.log_sigmas`).

    Returns:
        A pair `(alpha, sigma)` shaped like `t`, float32.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    schedule = kd.schedules.LinearSchedule()
    tables = schedule.signal_rates, schedule.noise_rates, schedule.log_sigmas
    alpha, sigma = kd.ops.rates_at(np.float32(10.5), *tables)  # between t = 10 and 11
    ```
    """
    t = ops.cast(t, "float32")
    low = ops.floor(t)
    frac = t - low
    index = ops.cast(low, "int32")
    last = ops.shape(log_sigmas)[0] - 1
    upper = ops.minimum(index + 1, last)
    log_sigma = (1.0 - frac) * ops.take(log_sigmas, index) + frac * ops.take(
        log_sigmas, upper
    )
    # alpha² = 1 / (1 + σ²) and sigma² = σ² / (1 + σ²), written stably.
    alpha = ops.sqrt(ops.sigmoid(-2.0 * log_sigma))
    sigma = ops.sqrt(ops.sigmoid(2.0 * log_sigma))
    exact = ops.equal(frac, 0.0)
    return (
        ops.where(exact, ops.take(signal_rates, index), alpha),
        ops.where(exact, ops.take(noise_rates, index), sigma),
    )
