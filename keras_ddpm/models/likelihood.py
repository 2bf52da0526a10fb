"""Negative log-likelihood in bits per dimension, from the DDPM variational bound.

Ho et al. (2020), eq. 5, with the paper's 1-based x_1 … x_T written here with the
network's 0-based timesteps t = 0 … T−1 (x at index t has ᾱ_t):

    −log p(x0) ≤ L_prior + Σ_{t=1}^{T−1} L_t + L_decoder
    L_prior   = KL(q(x_{T−1} | x0) ‖ N(0, I))
    L_t       = E_q KL(q(x_{t−1} | x_t, x0) ‖ p(x_{t−1} | x_t))
    L_decoder = E_q −log p(x0 | x_0-index latent)

q(x_{t−1} | x_t, x0) is the true posterior (eq. 6–7), p the model's Gaussian with
the same mean formula at x0_hat and a fixed variance σ_t² (β̃_t or β_t), and the
decoder is the discretised Gaussian of eq. 13 over the 256 levels of an 8-bit
image scaled to [-1, 1]. All maths runs in float64 numpy on the network's x0_hat.
"""

import math

import numpy as np
from keras import ops

from keras_ddpm.ops import POSTERIOR_VARIANCES, q_posterior, q_sample
from keras_ddpm.utils import check_choice, iterate_images

BIN = 1.0 / 255.0  # half the width of one of 256 levels over [-1, 1]
_erfc = np.frompyfunc(math.erfc, 1, 1)


def quantize(images):
    """Snap images in [-1, 1] to the 256 levels of 8-bit data, in float64."""
    return np.round((np.asarray(images, np.float64) + 1.0) * 127.5) / 127.5 - 1.0


def gaussian_kl(mean1, var1, mean2, var2):
    """KL(N(mean1, var1) ‖ N(mean2, var2)) elementwise, in nats."""
    return 0.5 * (
        np.log(var2) - np.log(var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0
    )


def discretized_gaussian_log_likelihood(x, mean, std):
    """log P(x) of 8-bit levels x in [-1, 1] under N(mean, std²) binned (eq. 13).

    Each level owns [x − 1/255, x + 1/255]; the lowest extends to −∞ and the
    highest to +∞. Probabilities are differences of complementary error
    functions taken on the side of the mean that avoids cancellation, and are
    floored at 1e-12 as in the reference implementation.
    """
    x, mean, std = np.broadcast_arrays(
        *(np.asarray(a, np.float64) for a in (x, mean, std))
    )
    lower = np.where(x < -1.0 + BIN, -np.inf, (x - BIN - mean) / std)
    upper = np.where(x > 1.0 - BIN, np.inf, (x + BIN - mean) / std)
    root2 = math.sqrt(2.0)

    def erfc(z):
        return _erfc(z.ravel()).astype(np.float64).reshape(z.shape)

    # Φ(b) − Φ(a) = ½(erfc(−b/√2) − erfc(−a/√2)) = ½(erfc(a/√2) − erfc(b/√2)).
    right = lower > 0
    probability = np.where(
        right,
        0.5
        * (
            erfc(np.where(right, lower, 0.0) / root2)
            - erfc(np.where(right, upper, 0.0) / root2)
        ),
        0.5
        * (
            erfc(-np.where(right, 0.0, upper) / root2)
            - erfc(-np.where(right, 0.0, lower) / root2)
        ),
    )
    return np.log(np.maximum(probability, 1e-12))


def posterior(schedule):
    """Tables of q(x_{t−1} | x_t, x0) for t = 0 … T−1 (index 0 unused): mean coefficients and β̃."""
    alphas_cumprod = schedule.alphas_cumprod
    q = q_posterior(alphas_cumprod, np.concatenate([[1.0], alphas_cumprod[:-1]]))
    return q["coef_x0"], q["coef_xt"], q["posterior_variance"]


def _model_variances(schedule, variance):
    """σ_t² of p for every t; σ_0² is the decoder's (clipped β̃, as Ho et al.'s code)."""
    _, _, posterior_variance = posterior(schedule)
    if variance == "fixed_small":
        return np.concatenate([[posterior_variance[1]], posterior_variance[1:]])
    return schedule.betas.copy()


def _check_variance(variance):
    check_choice("variance", variance, POSTERIOR_VARIANCES)


def _predict_x0(denoise, x_t, t, clip):
    output = denoise(
        ops.convert_to_tensor(x_t.astype(np.float32)),
        ops.convert_to_tensor(np.float32(t)),
    )
    if isinstance(output, (tuple, list)):
        output = output[0]
    x0_hat = np.asarray(ops.convert_to_numpy(output), np.float64)
    return np.clip(x0_hat, -1.0, 1.0) if clip else x0_hat


def bound_terms(
    denoise,
    images,
    schedule,
    variance="fixed_small",
    timesteps=None,
    rng=None,
    clip=True,
):
    """Per-image terms of the variational bound, in bits per dimension.

    Args:
        denoise: callable `(x_t, t) -> x0_hat` or `-> (x0_hat, eps_hat)`, `t`
            a float32 tensor `(B,)` of per-image timesteps.
        images: float array `(B, H, W, C)` in [-1, 1]; snapped to 8-bit levels.
        schedule: the `NoiseSchedule` the denoiser was trained with.
        variance: `"fixed_small"` (σ_t² = β̃_t) or `"fixed_large"` (σ_t² = β_t).
        timesteps: None to sum all T − 1 KL terms (T network calls per batch),
            or an int K: for each image K timesteps drawn by stratified
            sampling (one in each of K equal strata), their sum scaled by
            (T − 1)/K: unbiased, independent across images, K + 1 calls.
        rng: a `numpy.random.Generator` for the noise and timesteps.
        clip: bool, clip x0_hat to [-1, 1] as the samplers do. Defaults to True.

    Returns:
        A dict of float64 arrays `(B,)`: `"prior"`, `"diffusion"`, `"decoder"`
        and their sum `"total"`, each in bits per dimension.

    Example:

    ```python
    import numpy as np
    from keras import ops
    import keras_ddpm as kd
    from keras_ddpm.models.likelihood import bound_terms

    schedule = kd.schedules.LinearSchedule(timesteps=50)
    images = np.zeros((2, 4, 4, 1), "float32")
    terms = bound_terms(lambda x_t, t: ops.zeros_like(x_t), images, schedule)  # x0_hat = 0: exact here
    terms["total"]  # two bounds in bits/dim
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
    """
    _check_variance(variance)
    rng = np.random.default_rng(0) if rng is None else rng
    x0 = quantize(images)
    batch = x0.shape[0]
    dims = x0[0].size
    axes = tuple(range(1, x0.ndim))
    to_bits = 1.0 / (dims * math.log(2.0))
    alphas_cumprod = schedule.alphas_cumprod
    coef_x0, _, posterior_variance = posterior(schedule)
    model_variance = _model_variances(schedule, variance)
    T = schedule.timesteps

    def per_image(table, t):
        return table[t].reshape((batch,) + (1,) * (x0.ndim - 1))

    def noised(t):
        noise = rng.standard_normal(x0.shape)
        return q_sample(x0, noise, schedule.signal_rates[t], schedule.noise_rates[t])

    last = alphas_cumprod[-1]
    prior = gaussian_kl(np.sqrt(last) * x0, 1.0 - last, 0.0, 1.0).sum(axis=axes)

    if timesteps is None:
        rounds, weight = [np.full(batch, t) for t in range(1, T)], 1.0
    else:
        # Round k draws, for each image on its own, one timestep uniformly
        # inside the k-th of K equal strata of 1 … T−1 (stratified sampling).
        edges = np.linspace(1, T, timesteps + 1)
        rounds = [
            np.clip(
                np.floor(lo + rng.uniform(size=batch) * (hi - lo)), 1, T - 1
            ).astype(int)
            for lo, hi in zip(edges[:-1], edges[1:])
        ]
        weight = (T - 1) / timesteps
    diffusion = np.zeros(batch)
    for t in rounds:
        x0_hat = _predict_x0(denoise, noised(t), t, clip)
        # Means of q and p share x_t's coefficient, so they differ by coef_x0·(x0 − x0_hat).
        c = per_image(coef_x0, t)
        kl = gaussian_kl(
            c * x0,
            per_image(posterior_variance, t),
            c * x0_hat,
            per_image(model_variance, t),
        )
        diffusion += weight * kl.sum(axis=axes)

    x0_hat = _predict_x0(
        denoise, noised(np.zeros(batch, int)), np.zeros(batch, int), clip
    )
    decoder = -discretized_gaussian_log_likelihood(
        x0, x0_hat, math.sqrt(model_variance[0])
    ).sum(axis=axes)
    terms = {"prior": prior, "diffusion": diffusion, "decoder": decoder}
    terms = {name: value * to_bits for name, value in terms.items()}
    terms["total"] = terms["prior"] + terms["diffusion"] + terms["decoder"]
    return terms


def evaluate_bound(
    denoise,
    data,
    schedule,
    variance="fixed_small",
    timesteps=None,
    seed=0,
    max_images=None,
    clip=True,
    image_shape=None,
):
    """Average the variational bound over a dataset, in bits per dimension.

    Args:
        denoise: callable `(x_t, t) -> x0_hat`, as in `bound_terms`.
        data: an array `(N, H, W, C)` in [-1, 1], a `tf.data.Dataset` or an
            iterable of such batches (or of `(images, labels)`).
        schedule: the `NoiseSchedule` the denoiser was trained with.
        variance: `"fixed_small"` or `"fixed_large"`, as in `bound_terms`.
        timesteps: None or an int K, as in `bound_terms`.
        seed: int, seed of the noise and of the sampled timesteps.
        max_images: int or None, stop after this many images.
        clip: bool, clip x0_hat to [-1, 1]. Defaults to True.
        image_shape: `(H, W, C)` the images must have, or None.

    Returns:
        A dict: `"bits_per_dim"` (the mean bound), `"standard_error"` (its
        standard error over images, which includes the Monte Carlo noise of
        the sampled x_t and timesteps), the mean `"prior"`, `"diffusion"` and
        `"decoder"` terms, and `"num_images"`.

    Raises:
        ValueError: for a bad `timesteps` or `variance`, images of the wrong
            shape, dtype or range, or no images.

    Example:

    ```python
    import numpy as np
    from keras import ops
    import keras_ddpm as kd
    from keras_ddpm.models.likelihood import evaluate_bound

    schedule = kd.schedules.LinearSchedule(timesteps=50)
    images = np.random.uniform(-1, 1, (8, 4, 4, 1)).astype("float32")
    result = evaluate_bound(lambda x_t, t: ops.zeros_like(x_t), images, schedule, timesteps=5)
    result["bits_per_dim"], result["standard_error"]
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
    """
    if timesteps is not None and (
        isinstance(timesteps, bool)
        or not isinstance(timesteps, (int, np.integer))
        or not 1 <= timesteps <= schedule.timesteps - 1
    ):
        raise ValueError(
            f"`timesteps` must be None or an int in [1, {schedule.timesteps - 1}], got {timesteps!r}."
        )
    _check_variance(variance)
    rng = np.random.default_rng(seed)
    parts = {"prior": [], "diffusion": [], "decoder": [], "total": []}
    for batch in iterate_images(data, max_images):
        if image_shape is not None and batch.shape[1:] != tuple(image_shape):
            raise ValueError(
                f"Expected images of shape (B, {', '.join(map(str, image_shape))}), got {batch.shape}."
            )
        terms = bound_terms(denoise, batch, schedule, variance, timesteps, rng, clip)
        for name in parts:
            parts[name].append(terms[name])
    if not parts["total"]:
        raise ValueError("No images to evaluate.")
    values = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    total = values["total"]
    spread = (
        total.std(ddof=1) / math.sqrt(len(total)) if len(total) > 1 else float("nan")
    )
    return {
        "bits_per_dim": float(total.mean()),
        "standard_error": float(spread),
        "prior": float(values["prior"].mean()),
        "diffusion": float(values["diffusion"].mean()),
        "decoder": float(values["decoder"].mean()),
        "num_images": int(len(total)),
    }
