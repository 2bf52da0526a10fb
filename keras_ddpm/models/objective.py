"""The training objective of `DiffusionModel` (Ho et al. 2020, Algorithm 1), over `keras.ops`.

For each image x0 draw a timestep t and ε ~ N(0, I), form x_t with q(x_t | x0),
and regress the network's output on the target of the prediction type, with a
per-sample weight (min-SNR-γ) when asked. Timesteps are drawn uniformly from
the integers, or (`"lognormal"` noise levels, Karras et al. 2022) as the
fractional timesteps whose σ = sqrt((1 − ᾱ)/ᾱ) has a normal log.
"""

import keras
from keras import ops

from keras_ddpm.ops import min_snr_weight, prediction_target, q_sample, rates_at
from keras_ddpm.samplers.sampler import normal

NOISE_LEVELS = ("uniform", "lognormal")


def timesteps_of_log_sigmas(log_sigma, log_sigmas):
    """The fractional timesteps whose log σ is `log_sigma`: the inverse of `rates_at`.

    `log_sigmas` (the schedule's increasing table, `(T,)`) is interpolated
    linearly between integers, as `kd.ops.rates_at` does, so
    `rates_at(timesteps_of_log_sigmas(l))` has log σ = l. Values outside the
    table's range are clipped to its ends (timesteps 0 and T − 1).
    """
    last = ops.shape(log_sigmas)[0] - 1
    log_sigma = ops.clip(log_sigma, log_sigmas[0], log_sigmas[-1])
    upper = ops.clip(
        ops.cast(ops.searchsorted(log_sigmas, log_sigma), "int32"), 1, last
    )
    low_value = ops.take(log_sigmas, upper - 1)
    high_value = ops.take(log_sigmas, upper)
    frac = (log_sigma - low_value) / (high_value - low_value)
    return ops.cast(upper - 1, "float32") + ops.clip(frac, 0.0, 1.0)


def draw_timesteps_and_noise(
    seed_generator,
    num_timesteps,
    shape,
    replica=None,
    noise_levels="uniform",
    log_sigmas=None,
    lognormal_mean=-1.2,
    lognormal_std=1.2,
):
    """Training draws for a batch of `shape`: timesteps `(B,)` and noise.

    `noise_levels="uniform"` draws integer timesteps from U{0, T−1};
    `"lognormal"` draws log σ ~ N(`lognormal_mean`, `lognormal_std`²), clipped
    to the schedule's range, and returns the float32 fractional timesteps of
    those σ (which needs the schedule's `log_sigmas` table).

    With `replica = (count, index)` (a data-parallel step) each replica draws
    for the whole global batch and keeps its own slice, so that the step equals
    the single-device step on the same global batch, noise included.
    """
    count, index = (1, 0) if replica is None else replica
    batch = shape[0]
    if noise_levels == "lognormal":
        log_sigma = lognormal_mean + lognormal_std * normal(
            (batch * count,), seed_generator
        )
        timesteps = timesteps_of_log_sigmas(log_sigma, log_sigmas)
    else:
        timesteps = keras.random.randint(
            (batch * count,), 0, num_timesteps, seed=seed_generator
        )
    noise = normal((batch * count,) + tuple(shape[1:]), seed_generator)
    if count > 1:
        mine = index * batch + ops.arange(batch)
        timesteps, noise = ops.take(timesteps, mine, 0), ops.take(noise, mine, 0)
    return timesteps, noise


def diffusion_loss(
    network_fn,
    images,
    timesteps,
    noise,
    tables,
    prediction="epsilon",
    loss="mse",
    min_snr_gamma=None,
):
    """The mean diffusion loss of a batch.

    Args:
        network_fn: callable `[x_t, timesteps] -> output`.
        images: clean images x0 `(B, H, W, C)`, float32.
        timesteps: int tensor `(B,)`, or float32 for fractional timesteps
            (their rates interpolated by `kd.ops.rates_at`).
        noise: ε, shaped like `images`.
        tables: dict of float32 tensors over all timesteps: `"signal_rates"`,
            `"noise_rates"`, `"snr"` and (for fractional timesteps)
            `"log_sigmas"`.
        prediction: `"epsilon"`, `"x0"` or `"v"`.
        loss: `"mse"` or `"mae"`.
        min_snr_gamma: float or None, the γ of min-SNR-γ weighting.

    Returns:
        The scalar float32 loss.
    """
    batch = ops.shape(images)[0]
    fractional = "float" in keras.backend.standardize_dtype(timesteps.dtype)
    if fractional:
        alpha, sigma = rates_at(
            timesteps,
            tables["signal_rates"],
            tables["noise_rates"],
            tables["log_sigmas"],
        )
    else:
        alpha = ops.take(tables["signal_rates"], timesteps)
        sigma = ops.take(tables["noise_rates"], timesteps)
    x_t = q_sample(images, noise, alpha, sigma)
    output = ops.cast(network_fn([x_t, ops.cast(timesteps, "float32")]), "float32")
    error = output - prediction_target(prediction, images, noise, alpha, sigma)
    error = ops.square(error) if loss == "mse" else ops.abs(error)
    per_sample = ops.mean(ops.reshape(error, (batch, -1)), axis=-1)
    if min_snr_gamma is not None:
        if fractional:
            snr = ops.square(alpha / sigma)
        else:
            snr = ops.take(tables["snr"], timesteps)
        per_sample = per_sample * min_snr_weight(snr, min_snr_gamma, prediction)
    return ops.mean(per_sample)
