"""Guidance over a limited interval of noise levels (Kynkäänniemi et al. 2024).

Guidance, classifier-free or autoguidance, helps most at middle noise levels:
at the highest it pulls every sample towards the same few modes, and at the
lowest it only sharpens what is already decided. With an interval
`(low, high)` of timesteps, a step at timestep t denoises guided when
low ≤ t ≤ high and with the model alone (its labels kept) otherwise, which
also skips the guide's network, or the unconditional half of the batch,
outside the interval.

The bounds travel as shared conditioning scalars (`LOW_KEY`, `HIGH_KEY`), so
that a new interval reuses the compiled sampling program, and the choice of
branch is a `keras.ops.cond` on the step's timestep inside it.
"""

import math

import numpy as np
from keras import ops

from keras_ddpm.models import autoguidance
from keras_ddpm.models.conditioning import sampling_conditioning
from keras_ddpm.utils import check_float

# Where the interval's bounds travel in the sampling conditioning.
LOW_KEY, HIGH_KEY = "guidance_interval_low", "guidance_interval_high"
# Autoguidance's default interval, in shares of the schedule's T: every
# timestep up to 0.6 T (0 to 600 of 1,000), as measured with
# `autoguidance.DEFAULT_SCALE`.
GUIDED_SHARE = (0.0, 0.6)


def check_interval(interval, timesteps, guided, name="guidance_interval", guide=False):
    """Validate a guidance interval; returns `(low, high)` as floats, or None.

    Args:
        interval: None, or a pair of timesteps `(low, high)`.
        timesteps: int, the schedule's number of timesteps T.
        guided: bool, whether the sampling is guided at all.
        name: str, the argument's name in the errors.
        guide: bool, whether a guide model guides: then None is
            autoguidance's default, timesteps 0 to `GUIDED_SHARE[1]` · T.

    Raises:
        ValueError: for anything but two finite numbers with
            0 ≤ low ≤ high ≤ T, or an interval without guidance.
    """
    if interval is None and guide:
        interval = tuple(share * timesteps for share in GUIDED_SHARE)
    if interval is None:
        return None
    try:
        if isinstance(interval, (str, bytes)):
            raise TypeError
        low, high = (float(bound) for bound in interval)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a pair of timesteps (low, high), got {interval!r}."
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise ValueError(
            f"`{name}` must be two finite timesteps with 0 <= low <= "
            f"high, got {tuple(interval)}."
        )
    if high > timesteps:
        raise ValueError(
            f"`{name}` {tuple(interval)} reaches past the schedule's "
            f"{timesteps} timesteps."
        )
    if not guided:
        raise ValueError(
            f"`{name}` limits guidance: give a `guide` or a "
            "`guidance_scale` other than 1 with it."
        )
    return low, high


def with_interval(conditioning, interval):
    """`conditioning` (a dict or None) with the interval's bounds, when there is one."""
    if interval is None:
        return conditioning
    low, high = interval
    return {
        **(conditioning or {}),
        LOW_KEY: np.float32(low),
        HIGH_KEY: np.float32(high),
    }


def split(conditioning):
    """`(conditioning without the bounds, (low, high) or None)`, inside a program."""
    conditioning = dict(conditioning or {})
    if LOW_KEY not in conditioning:
        return conditioning, None
    return conditioning, (conditioning.pop(LOW_KEY), conditioning.pop(HIGH_KEY))


def limited(guided, plain, interval):
    """`denoise(x_t, t)`: `guided` at timesteps inside `interval`, `plain` elsewhere.

    Args:
        guided: the guided `denoise(x_t, t) -> (x0_hat, eps_hat)`.
        plain: the model's own, without guidance.
        interval: `(low, high)`, float32 scalars.

    Returns:
        The limited `denoise`, for a scalar timestep `t` (as the samplers
        call it).
    """
    low, high = interval

    def denoise(x_t, t):
        timestep = ops.cast(t, "float32")
        inside = ops.logical_and(timestep >= low, timestep <= high)
        return ops.cond(inside, lambda: guided(x_t, t), lambda: plain(x_t, t))

    return denoise


def guidance_conditioning(
    model, num_images, labels, guidance_scale, guide, guide_scale, interval
):
    """The sampling conditioning of `generate` and the demo, every guidance checked.

    Args:
        model: the `DiffusionModel` that samples.
        num_images: int, images in the call.
        labels, guidance_scale: class labels and classifier-free scale.
        guide, guide_scale: the autoguidance model and scale.
        interval: the `guidance_interval` (None: autoguidance's default with
            a guide, else every step).

    Returns:
        The dict for `sampling.sample` (None for an unguided unconditional
        model).

    Raises:
        ValueError: as `generate` documents.
    """
    guide_scale = autoguidance.check_guide(model, guide, guide_scale, guidance_scale)
    guided = guide is not None or check_float("guidance_scale", guidance_scale) != 1.0
    interval = check_interval(
        interval, model.schedule.timesteps, guided, guide=guide is not None
    )
    conditioning = sampling_conditioning(model, labels, guidance_scale, num_images)
    conditioning = autoguidance.with_scale(conditioning, guide, guide_scale)
    return with_interval(conditioning, interval)
