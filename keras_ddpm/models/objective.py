"""The training objective of `DiffusionModel` (Ho et al. 2020, Algorithm 1), over `keras.ops`.

For each image x0 draw a timestep t and ε ~ N(0, I), form x_t with q(x_t | x0),
and regress the network's output on the target of the prediction type, with a
per-sample weight (min-SNR-γ) when asked.
"""

import keras
from keras import ops

from keras_ddpm.ops import min_snr_weight, prediction_target, q_sample


def draw_timesteps_and_noise(seed_generator, num_timesteps, shape, replica=None):
    """Training draws for a batch of `shape`: timesteps `(B,)` and noise.

    With `replica = (count, index)` (a data-parallel step) each replica draws
    for the whole global batch and keeps its own slice, so that the step equals
    the single-device step on the same global batch, noise included.
    """
    count, index = (1, 0) if replica is None else replica
    batch = shape[0]
    timesteps = keras.random.randint(
        (batch * count,), 0, num_timesteps, seed=seed_generator
    )
    noise = keras.random.normal(
        (batch * count,) + tuple(shape[1:]), seed=seed_generator
    )
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
        timesteps: int tensor `(B,)`.
        noise: ε, shaped like `images`.
        tables: dict of float32 tensors over all timesteps: `"signal_rates"`,
            `"noise_rates"` and `"snr"`.
        prediction: `"epsilon"`, `"x0"` or `"v"`.
        loss: `"mse"` or `"mae"`.
        min_snr_gamma: float or None, the γ of min-SNR-γ weighting.

    Returns:
        The scalar float32 loss.
    """
    batch = ops.shape(images)[0]
    alpha = ops.take(tables["signal_rates"], timesteps)
    sigma = ops.take(tables["noise_rates"], timesteps)
    x_t = q_sample(images, noise, alpha, sigma)
    output = ops.cast(network_fn([x_t, ops.cast(timesteps, "float32")]), "float32")
    error = output - prediction_target(prediction, images, noise, alpha, sigma)
    error = ops.square(error) if loss == "mse" else ops.abs(error)
    per_sample = ops.mean(ops.reshape(error, (batch, -1)), axis=-1)
    if min_snr_gamma is not None:
        snr = ops.take(tables["snr"], timesteps)
        per_sample = per_sample * min_snr_weight(snr, min_snr_gamma, prediction)
    return ops.mean(per_sample)
