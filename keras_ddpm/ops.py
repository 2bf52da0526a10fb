"""The diffusion equations, written once over `keras.ops`.

Every function works on any backend and on symbolic tensors. Per-sample scalars
(`alpha`, `sigma`, shaped `(B,)`) are broadcast to image rank by `expand_to_rank`.
Notation follows Ho et al. (2020) and Salimans & Ho (2022): `alpha = sqrt(ᾱ_t)`,
`sigma = sqrt(1 - ᾱ_t)`, so that `x_t = alpha * x0 + sigma * eps`.
"""

from keras import ops

PREDICTION_TYPES = ("epsilon", "x0", "v")

__all__ = ["expand_to_rank", "q_sample", "prediction_target", "predict_x0_and_eps"]


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
