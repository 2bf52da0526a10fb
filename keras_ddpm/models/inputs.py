"""Checks and preparation of what users hand to `DiffusionModel`: batches, seeds, noise.

Each check raises a one-line `ValueError` that says what was expected.
"""

import collections.abc

import keras
import numpy as np
from keras import ops

from keras_ddpm.models.objective import NOISE_LEVELS
from keras_ddpm.ops import PREDICTION_TYPES, q_sample
from keras_ddpm.utils import check_choice, check_float, check_int

LOSSES = ("mse", "mae")


def _shape_text(image_shape):
    return ", ".join(map(str, image_shape))


def seed_or_random(seed):
    """`seed` as an int >= 0, or a fresh random one for None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % 2**31)
    return check_int("seed", seed, low=0, allow_none=True)


def check_finite(name, array):
    """Refuse NaN and infinite values in a numpy array."""
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` must be finite, got NaN or infinite values.")


def check_model_arguments(
    network, prediction, loss, ema_momentum, ema_inv_gamma, ema_power, min_snr_gamma
):
    """The checks of `DiffusionModel`'s constructor arguments."""
    if not isinstance(network, keras.layers.Layer):
        raise ValueError(
            f"`network` must be a Keras model or layer, got {type(network).__name__}."
        )
    check_choice("prediction", prediction, PREDICTION_TYPES)
    check_choice("loss", loss, LOSSES)
    if ema_momentum is not None and not (
        isinstance(ema_momentum, (int, float)) and 0.0 <= ema_momentum < 1.0
    ):
        raise ValueError(
            f"`ema_momentum` must be a float in [0, 1) or None, got {ema_momentum!r}."
        )
    check_float("ema_inv_gamma", ema_inv_gamma, low=0.0, low_inclusive=False)
    check_float("ema_power", ema_power, low=0.0, low_inclusive=False)
    check_float(
        "min_snr_gamma", min_snr_gamma, low=0.0, low_inclusive=False, allow_none=True
    )


def check_noise_levels(noise_levels, lognormal_mean, lognormal_std):
    """The checks of `DiffusionModel`'s training noise-level arguments."""
    check_choice("noise_levels", noise_levels, NOISE_LEVELS)
    check_float("lognormal_mean", lognormal_mean)
    check_float("lognormal_std", lognormal_std, low=0.0, low_inclusive=False)


def network_image_shape(network):
    """`(H, W, C)` of a network's image input, which must be known."""
    try:
        shape = network.input_shape[0]
    except (AttributeError, ValueError, IndexError, TypeError):
        shape = None
    if shape is None or len(shape) != 4 or None in shape[1:]:
        raise ValueError(
            "`network` must be built with a known input shape "
            "[images (B, H, W, C), timesteps (B,)], e.g. from kd.models.build_unet; "
            f"got input shape {shape}."
        )
    return tuple(int(s) for s in shape[1:])


def image_batch(data, image_shape, cast=True):
    """The images of a training batch (a tensor, or a tuple led by one), checked.

    Works on tensors and on their specs (`tf.TensorSpec`, symbolic shapes), so
    that `fit` can check a `tf.data` pipeline before training starts.
    """
    images = data[0] if isinstance(data, (tuple, list)) else data
    if isinstance(images, dict):
        raise ValueError(
            "DiffusionModel expects batches of images (B, H, W, C) or "
            f"(images, labels) tuples, got a dict with keys {sorted(images)}."
        )
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(
            "Expected image batches of rank 4 (B, H, W, C) = "
            f"(B, {_shape_text(image_shape)}), got shape {shape}."
        )
    if any(s is not None and s != e for s, e in zip(shape[1:], image_shape)):
        raise ValueError(
            f"Expected images of shape (B, {_shape_text(image_shape)}), got {shape}."
        )
    dtype = keras.backend.standardize_dtype(
        str(getattr(images.dtype, "name", images.dtype))
    )
    if "float" not in dtype:
        raise ValueError(
            f"Expected float images scaled to [-1, 1], got dtype {dtype}; convert "
            "uint8 images with x / 127.5 - 1."
        )
    return ops.cast(images, "float32") if cast else images


def peek(data):
    """`(data, first)`: an iterator's first batch, put back in front of it.

    `fit` and `evaluate` check a generator's (or a `PyDataset`'s) first batch
    before training starts, as they check arrays and `tf.data` specs: an error
    raised later, inside the traced train step, would leave a JAX model's
    variables unset. Anything else is returned as is, with `first` None.
    """
    if isinstance(data, keras.utils.PyDataset):
        return data, data[0] if len(data) else None
    if isinstance(data, collections.abc.Iterator) and not hasattr(data, "element_spec"):
        try:
            first = next(data)
        except StopIteration:
            return _put_back_nothing(), None
        return _put_back(first, data), first
    return data, None


def _put_back_nothing():
    yield from ()


def _put_back(first, rest):
    # A generator, not an itertools.chain: Keras' data adapters take generators.
    yield first
    yield from rest


def check_data(data, image_shape):
    """Check arrays and `tf.data` element specs up front, before `fit` or `evaluate` runs."""
    spec = getattr(data, "element_spec", None)
    if spec is not None:
        data = spec
    if isinstance(data, (tuple, list)) and data:
        data = data[0]
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        image_batch(data, image_shape, cast=False)
        if isinstance(data, np.ndarray):
            check_finite("images", data)


def initial_noise(image_shape, num_images, seed, noise=None):
    """The starting noise of `generate`: drawn from `seed`, or the user's, checked."""
    if noise is None:
        num_images = check_int("num_images", num_images, low=1)
        return np.random.default_rng(seed).standard_normal(
            (num_images,) + tuple(image_shape), dtype=np.float32
        )
    x = np.asarray(noise, dtype=np.float32)
    if x.shape[1:] != tuple(image_shape) or (
        num_images is not None and x.shape[0] != num_images
    ):
        raise ValueError(
            f"`initial_noise` must have shape ({num_images}, {_shape_text(image_shape)}), "
            f"got {x.shape}."
        )
    check_finite("initial_noise", x)
    return x


def end_noise(image_shape, name, seed, noise):
    """One end of `interpolate`: `generate`'s noise for `seed`, or the given noise."""
    if (seed is None) == (noise is None):
        what = "not both" if seed is not None else "got neither"
        raise ValueError(
            f"`interpolate` takes `seed_{name}` or `noise_{name}` for that end, {what}."
        )
    if noise is None:
        return initial_noise(image_shape, 1, check_int(f"seed_{name}", seed, low=0))[0]
    noise = np.asarray(noise, dtype=np.float32)
    if noise.shape == (1,) + tuple(image_shape):
        noise = noise[0]
    if noise.shape != tuple(image_shape):
        raise ValueError(
            f"`noise_{name}` must have shape ({_shape_text(image_shape)}) or "
            f"(1, {_shape_text(image_shape)}), got {noise.shape}."
        )
    check_finite(f"noise_{name}", noise)
    return noise


def slerp(a, b, weights):
    """Points on the great circle from `a` to `b` at fractions `weights`, stacked.

    Computed in float64; parallel or opposite ends (θ = 0 or π, where the arc
    is undefined) fall back to the straight line.
    """
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cosine = np.sum(a64 * b64) / (np.linalg.norm(a64) * np.linalg.norm(b64))
    theta = np.arccos(np.clip(cosine, -1.0, 1.0))
    weights = np.asarray(weights, np.float64)
    if np.sin(theta) < 1e-6:
        frames = [(1 - w) * a64 + w * b64 for w in weights]
    else:
        frames = [
            (np.sin((1 - w) * theta) * a64 + np.sin(w * theta) * b64) / np.sin(theta)
            for w in weights
        ]
    return np.stack(frames).astype(np.float32)


def real_images(images, image_shape):
    """Real images `(N, H, W, C)` given to `reconstruct` or `inpaint`, checked."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != tuple(image_shape):
        raise ValueError(
            f"`images` must have shape (N, {_shape_text(image_shape)}), got {images.shape}."
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            f"`images` must be float in [-1, 1], got dtype {images.dtype}."
        )
    check_finite("images", images)
    return images


def inpainting_inputs(images, mask, image_shape):
    """`inpaint`'s originals and mask, checked, as float32 arrays of one shape."""
    images = real_images(images, image_shape)
    if images.min() < -1.0 or images.max() > 1.0:
        raise ValueError(
            f"`images` must lie in [-1, 1], got values in [{images.min():.3g}, "
            f"{images.max():.3g}]."
        )
    mask = np.asarray(mask, dtype=np.float32)
    height, width, channels = image_shape
    allowed = [
        (height, width),
        (height, width, 1),
        (height, width, channels),
        (len(images), height, width, 1),
        (len(images), height, width, channels),
    ]
    if mask.shape not in allowed:
        raise ValueError(
            "`mask` (1 = keep the pixel, 0 = fill it in) must have shape "
            f"(H, W), (H, W, 1), (H, W, C), (N, H, W, 1) or (N, H, W, C) = "
            f"{' or '.join(str(s) for s in allowed)}, got {mask.shape}."
        )
    check_finite("mask", mask)
    if mask.min() < 0.0 or mask.max() > 1.0:
        raise ValueError(
            "`mask` (1 = keep the pixel, 0 = fill it in) must lie in [0, 1], got "
            f"values in [{mask.min():.3g}, {mask.max():.3g}]."
        )
    if mask.ndim == 2:
        mask = mask[..., None]
    mask = np.broadcast_to(mask, images.shape).astype(np.float32)
    return images.astype(np.float32), np.ascontiguousarray(mask)


def reconstruction_timestep(t, strength, timesteps):
    """The start timestep of `reconstruct`: `t` itself, or round(strength · (T − 1))."""
    if (t is None) == (strength is None):
        what = "not both" if t is not None else "got neither"
        raise ValueError(
            f"`reconstruct` takes `t` (a timestep in [0, {timesteps - 1}]) or "
            f"`strength` (in (0, 1]), {what}."
        )
    if t is not None:
        return check_int("t", t, low=0, high=timesteps - 1)
    strength = check_float("strength", strength, low=0.0, high=1.0, low_inclusive=False)
    return int(round(strength * (timesteps - 1)))


def noised_images(images, t, seed, schedule, image_shape):
    """Real images noised to timestep `t` with q(x_t | x_0), noise drawn from `seed`."""
    images = real_images(images, image_shape)
    t = check_int("t", t, low=0, high=schedule.timesteps - 1)
    noise = np.random.default_rng(seed).standard_normal(images.shape, dtype=np.float32)
    x_t = q_sample(
        images.astype(np.float64),
        noise,
        schedule.signal_rates[t],
        schedule.noise_rates[t],
    )
    return x_t.astype(np.float32)
