"""Autoguidance (Karras et al. 2024): guiding a model with a weaker version of itself.

With a guide model D₀ (the same task learned less well: an earlier snapshot
of the training run, or a smaller network), each step denoises with
D₀ + w · (D₁ − D₀), the model's prediction D₁ pushed away from the guide's
by the scale w (1: the model alone). The x₀ and ε predictions are mixed
alike, which keeps them consistent: both are linear in the network's output
at a given x_t.

The guide's weights travel into the compiled sampling program beside the
model's (`weights = (model's, guide's)`), and the scale as the shared
conditioning value `"guide_scale"`, so that a new scale reuses the program.
"""

import numpy as np

from keras_ddpm.utils import check_float

# Where the guide's scale travels in the sampling conditioning.
SCALE_KEY = "guide_scale"
# The scale of `guide_scale=None`, and (`guidance_interval.GUIDED_SHARE`) the
# timesteps it guides by default: the best of the settings measured on the
# benchmarks page (the recipe's own guide, 8.5 minutes of training).
DEFAULT_SCALE = 5.0


def check_guide(model, guide, guide_scale, guidance_scale):
    """Validate a guide for `model` and its scale; returns the scale as a float.

    Raises:
        ValueError: for a guide that is not a `DiffusionModel` of the same
            image shape, schedule and classes, a scale given without a guide
            or not a finite number, or a guide together with classifier-free guidance.
    """
    if guide is None:
        if guide_scale is not None:
            raise ValueError(
                f"`guide_scale` ({guide_scale}) needs a `guide` model to guide with."
            )
        return None
    if not callable(getattr(guide, "denoise", None)) or not hasattr(guide, "schedule"):
        raise ValueError(
            "`guide` must be a DiffusionModel (a weaker version of this one), got "
            f"{type(guide).__name__}."
        )
    if tuple(guide.image_shape) != tuple(model.image_shape):
        raise ValueError(
            f"`guide` makes images of shape {tuple(guide.image_shape)}, this model "
            f"{tuple(model.image_shape)}: they must match."
        )
    if type(guide.schedule) is not type(model.schedule) or (
        guide.schedule.get_config() != model.schedule.get_config()
    ):
        raise ValueError(
            f"`guide` has the noise schedule {guide.schedule.get_config()}, this "
            f"model {model.schedule.get_config()}: they must match."
        )
    if guide.num_classes != model.num_classes:
        raise ValueError(
            f"`guide` has num_classes={guide.num_classes}, this model "
            f"{model.num_classes}: they must match."
        )
    if guidance_scale is not None and guidance_scale != 1.0:
        raise ValueError(
            "Give either `guide` (autoguidance) or `guidance_scale` "
            "(classifier-free guidance), not both."
        )
    return check_float(
        "guide_scale", DEFAULT_SCALE if guide_scale is None else guide_scale
    )


def with_scale(conditioning, guide, scale):
    """`conditioning` (a dict or None) with the guide's scale added, when there is a guide."""
    if guide is None:
        return conditioning
    return {**(conditioning or {}), SCALE_KEY: np.float32(scale)}


def guided_denoiser(model, guide, weights, non_trainable, conditioning):
    """`denoise(x_t, t) -> (x0_hat, eps_hat)` of `model` guided by `guide`.

    `weights` and `non_trainable` are pairs (the model's, the guide's);
    `conditioning` holds the scale under `SCALE_KEY`, and a conditional
    model's labels, which both networks take.
    """
    conditioning = dict(conditioning)
    scale = conditioning.pop(SCALE_KEY)
    conditioning = conditioning or None

    def denoise(x_t, t):
        x0, eps = model.denoise(weights[0], non_trainable[0], x_t, t, conditioning)
        guide_x0, guide_eps = guide.denoise(
            weights[1], non_trainable[1], x_t, t, conditioning
        )
        return (
            guide_x0 + scale * (x0 - guide_x0),
            guide_eps + scale * (eps - guide_eps),
        )

    return denoise
