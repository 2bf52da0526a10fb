"""The diffusion equations, written once over `keras.ops`.

Every function works on any backend and on symbolic tensors. Per-sample scalars
(`alpha`, `sigma`, shaped `(B,)`) are broadcast to image rank by `expand_to_rank`.
Notation follows Ho et al. (2020) and Salimans & Ho (2022): `alpha = sqrt(ᾱ_t)`,
`sigma = sqrt(1 - ᾱ_t)`, so that `x_t = alpha * x0 + sigma * eps`.
"""

from keras import ops

PREDICTION_TYPES = ("epsilon", "x0", "v")


def expand_to_rank(values, rank):
    """Reshape a per-sample vector `(B,)` to `(B, 1, ..., 1)` of the given rank.

    Scalars are returned unchanged, so the same code serves a whole batch at one
    timestep (sampling) and one timestep per sample (training).
    """
    values = ops.convert_to_tensor(values)
    if len(values.shape) == 0:
        return values
    return ops.reshape(values, (-1,) + (1,) * (rank - 1))


def q_sample(x0, noise, alpha, sigma):
    """Forward process q(x_t | x_0) (Ho et al. 2020, eq. 4): `alpha·x0 + sigma·eps`."""
    rank = len(x0.shape)
    return expand_to_rank(alpha, rank) * x0 + expand_to_rank(sigma, rank) * noise


def prediction_target(prediction, x0, noise, alpha, sigma):
    """What a network trained with `prediction` must output for `(x0, noise)`.

    `"epsilon"` → noise, `"x0"` → x0, `"v"` → `alpha·noise − sigma·x0`
    (Salimans & Ho 2022, sec. 4).
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
