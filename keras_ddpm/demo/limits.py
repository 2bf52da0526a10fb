import math

import numpy as np

from keras_ddpm import samplers
from keras_ddpm.models import inpainting
from keras_ddpm.utils import check_float, check_int

MAX_SEED = 2**31 - 1
# Inpainting costs about `jump_n_sample` times a generation: its bounds are tighter.
MAX_JUMP_N_SAMPLE = 10
MAX_FILLINGS = 4


def sampler_choices(linear_only=False):
    """The demo's sampler labels, upper-case registry names, and whether each takes η.

    Read from `kd.samplers.names()`, so a newly registered sampler is offered
    by itself; it takes η when its config has an `eta` entry.

    Args:
        linear_only: bool, only the samplers of the linear step rule (DDPM,
            DDIM), the ones inpainting accepts. Defaults to False.
    """
    choices = {}
    for name in samplers.names():
        sampler = samplers.get(name)
        if linear_only and not inpainting.is_linear_sampler(sampler):
            continue
        choices[name.upper()] = "eta" in sampler.get_config()
    return choices


# A conditional model's class picker: its class names, after this choice.
ANY_CLASS = "Any (unconditional)"
MAX_GUIDANCE = 10.0


def class_choices(model):
    """The class picker's choices for a conditional model (None for an unconditional one).

    `ANY_CLASS` first, then the model's class names (or `"class 0"`, ... when
    it has none), in label order.

    Args:
        model: a `DiffusionModel`.

    Returns:
        A list of str, or None for a model without `num_classes`.

    Example:

    ```python
    import keras_ddpm as kd
    from keras_ddpm.demo import class_choices

    net = kd.models.build_unet(8, widths=(8,), block_depth=1, num_classes=2)
    model = kd.DiffusionModel(net, num_classes=2, class_names=["tulip", "rose"])
    class_choices(model)  # ['Any (unconditional)', 'tulip', 'rose']
    ```
    """
    if model.num_classes is None:
        return None
    names = model.class_names or [f"class {k}" for k in range(model.num_classes)]
    return [ANY_CLASS, *map(str, names)]


def check_class(choice, guidance, choices):
    """Validate a class and a guidance scale of a conditional model's request.

    Args:
        choice: one of `choices` (from `class_choices`).
        guidance: number in [0, 10], the classifier-free guidance scale.
        choices: the class picker's choices.

    Returns:
        A dict with `labels` (the class index, or None for `ANY_CLASS`) and
        `guidance_scale` (a float), the arguments of `generate`.

    Raises:
        ValueError: one line, for a class not offered or a scale out of range.

    Example:

    ```python
    from keras_ddpm.demo import check_class

    check_class("blue", 3, ["Any (unconditional)", "red", "blue"])
    # {'labels': 1, 'guidance_scale': 3.0}
    ```
    """
    if not isinstance(choice, str) or choice not in choices:
        raise ValueError(
            f"Class must be one of the {len(choices)} offered, got {choice!r}."
        )
    try:
        guidance = check_float("guidance", guidance, 0.0, MAX_GUIDANCE)
    except ValueError:
        raise ValueError(
            f"Guidance scale must be a number in [0, {MAX_GUIDANCE:g}], got {guidance!r}."
        ) from None
    labels = None if choice == ANY_CLASS else choices.index(choice) - 1
    return {"labels": labels, "guidance_scale": guidance}


def _whole_number(label, value, low, high):
    """`value` as an int in [low, high], or a one-line ValueError naming `label`."""
    expected = f"{label} must be a whole number in [{low}, {high}]"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{expected}, got {value!r}.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{expected}, got {value!r}.") from None
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{expected}, got {value!r}.")
    if not math.isfinite(value) or value != int(value) or not low <= value <= high:
        raise ValueError(f"{expected}, got {value!r}.")
    return int(value)


def _check_sampler(sampler, eta, linear_only=False):
    choices = sampler_choices(linear_only)
    label = str(sampler).strip().upper() if isinstance(sampler, str) else None
    if label not in choices:
        shown = [repr(choice) for choice in choices]
        listed = " or ".join(filter(None, [", ".join(shown[:-1]), shown[-1]]))
        raise ValueError(f"Sampler must be {listed}, got {sampler!r}.")
    if not choices[label]:
        return {"name": label.lower()}
    try:
        eta = check_float("eta", eta, 0.0, 1.0)
    except ValueError:
        raise ValueError(f"η must be a number in [0, 1], got {eta!r}.") from None
    return {"name": label.lower(), "eta": eta}


def _check_seed(seed):
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return int(np.random.SeedSequence().entropy % (MAX_SEED + 1))
    return _whole_number("Seed", seed, 0, MAX_SEED)


class DemoLimits:
    """Server-side bounds of the web demo, and the validation of every request.

    The page's sliders already stay inside these bounds, but a request can come
    from any HTTP client: every value is checked here again, and a bad one gets
    a one-line `ValueError` that the page shows as a message.

    Args:
        timesteps: int, T of the model's schedule (steps can never exceed it).
        max_images: int >= 1, most images one request may ask for. Defaults to 16.
        max_steps: int >= 1, most denoising steps one request may ask for
            (capped at `timesteps`). Defaults to 250.

    Raises:
        ValueError: if a bound is not a positive int.

    Example:

    ```python
    from keras_ddpm.demo import DemoLimits

    limits = DemoLimits(timesteps=1000, max_images=8, max_steps=100)
    limits.check_generate(4, "DDIM", 20, seed=0, eta=0.0)
    # {'num_images': 4, 'sampler': {'name': 'ddim', 'eta': 0.0}, 'steps': 20, 'seed': 0}
    ```
    """

    def __init__(self, timesteps, max_images=16, max_steps=250):
        self.timesteps = check_int("timesteps", timesteps, low=1)
        self.max_images = check_int("max_images", max_images, low=1)
        self.max_steps = min(check_int("max_steps", max_steps, low=1), self.timesteps)

    def check_generate(self, num_images, sampler, steps, seed=None, eta=0.0):
        """Validate a generation request.

        Args:
            num_images: whole number in [1, max_images].
            sampler: a name from `kd.samplers.names()`, any case (`"DDIM"`,
                `"DDPM"`, ...).
            steps: whole number in [1, max_steps].
            seed: whole number in [0, 2³¹ − 1], or None / blank for a random one.
            eta: number in [0, 1], DDIM's η (ignored by samplers without one).

        Returns:
            A dict with `num_images`, `sampler` (a sampler config dict),
            `steps` and `seed`, all plain Python values.

        Raises:
            ValueError: one line saying which value is out of bounds.
        """
        return {
            "num_images": _whole_number(
                "Number of images", num_images, 1, self.max_images
            ),
            "sampler": _check_sampler(sampler, eta),
            "steps": _whole_number("Steps", steps, 1, self.max_steps),
            "seed": _check_seed(seed),
        }

    def check_reconstruct(self, t, sampler, steps, seed=None, eta=0.0):
        """Validate a reconstruction request (noise to step `t`, denoise back).

        Args:
            t: whole number in [0, timesteps − 1], the step to noise to.
            sampler: as in `check_generate`.
            steps: whole number in [1, min(max_steps, t + 1)].
            seed: as in `check_generate`.
            eta: as in `check_generate`.

        Returns:
            A dict with `t`, `sampler`, `steps` and `seed`.

        Raises:
            ValueError: one line saying which value is out of bounds.
        """
        t = _whole_number("Noise step t", t, 0, self.timesteps - 1)
        return {
            "t": t,
            "sampler": _check_sampler(sampler, eta),
            "steps": _whole_number("Steps", steps, 1, min(self.max_steps, t + 1)),
            "seed": _check_seed(seed),
        }

    def check_inpaint(
        self,
        sampler,
        steps,
        jump_length,
        jump_n_sample,
        num_images=1,
        seed=None,
        eta=0.0,
    ):
        """Validate an inpainting request (RePaint).

        Args:
            sampler: `"DDPM"` or `"DDIM"` (any case): the samplers of the
                linear step rule, the ones inpainting accepts.
            steps: whole number in [1, max_steps].
            jump_length: whole number in [1, steps], steps per jump back.
            jump_n_sample: whole number in [1, 10], walks over each stretch.
            num_images: whole number in [1, min(4, max_images)], fillings drawn.
            seed: as in `check_generate`.
            eta: as in `check_generate`.

        Returns:
            A dict with `sampler`, `steps`, `jump_length`, `jump_n_sample`,
            `num_images` and `seed`.

        Raises:
            ValueError: one line saying which value is out of bounds.
        """
        steps = _whole_number("Steps", steps, 1, self.max_steps)
        return {
            "sampler": _check_sampler(sampler, eta, linear_only=True),
            "steps": steps,
            "jump_length": _whole_number("Jump length", jump_length, 1, steps),
            "jump_n_sample": _whole_number(
                "Resampling", jump_n_sample, 1, MAX_JUMP_N_SAMPLE
            ),
            "num_images": _whole_number(
                "Number of fillings", num_images, 1, self.max_fillings
            ),
            "seed": _check_seed(seed),
        }

    @property
    def max_fillings(self):
        """Most fillings one inpainting request may draw: min(4, max_images)."""
        return min(MAX_FILLINGS, self.max_images)
