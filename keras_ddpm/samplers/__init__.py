"""Samplers: one step rule each, over a single denoise function."""

import keras

from keras_ddpm.samplers.ddim_sampler import DDIMSampler
from keras_ddpm.samplers.ddpm_sampler import DDPMSampler
from keras_ddpm.samplers.sampler import Sampler, spaced_timesteps

_NAMES = {"ddpm": DDPMSampler, "ddim": DDIMSampler}


def serialize(sampler):
    """Return the Keras config dict of a sampler.

    Args:
        sampler: a `Sampler` instance.

    Returns:
        A JSON-serialisable dict that `deserialize`/`get` take back.

    Example:

    ```python
    import keras_ddpm as kd

    config = kd.samplers.serialize(kd.samplers.DDIMSampler(eta=0.5))
    kd.samplers.deserialize(config).eta  # 0.5
    ```
    """
    if not isinstance(sampler, Sampler):
        raise ValueError(f"Expected a Sampler instance, got {sampler!r}.")
    return keras.saving.serialize_keras_object(sampler)


def deserialize(config):
    """Rebuild a sampler from `serialize`'s dict or a short `{"name": ..., **kwargs}`.

    Args:
        config: dict.

    Returns:
        A `Sampler` instance.

    Example:

    ```python
    import keras_ddpm as kd

    kd.samplers.deserialize({"name": "ddim", "eta": 1.0}).eta  # 1.0
    ```
    """
    if not isinstance(config, dict):
        raise ValueError(f"Expected a sampler config dict, got {config!r}.")
    if "name" in config and "class_name" not in config:
        return _from_name(
            config["name"], {k: v for k, v in config.items() if k != "name"}
        )
    sampler = keras.saving.deserialize_keras_object(config)
    if not isinstance(sampler, Sampler):
        raise ValueError(f"Config {config!r} does not describe a Sampler.")
    return sampler


def _from_name(name, kwargs):
    key = str(name).lower().replace("sampler", "").strip("_ ")
    if key not in _NAMES:
        raise ValueError(
            f"Unknown sampler {name!r}; expected one of {sorted(_NAMES)}, a config "
            "dict or a Sampler instance."
        )
    return _NAMES[key](**kwargs)


def get(identifier):
    """Return a sampler from a name (`"ddpm"`, `"ddim"`), a config dict or an instance.

    Args:
        identifier: str, dict or `Sampler`.

    Returns:
        A `Sampler` instance.

    Raises:
        ValueError: for an unknown name or anything else.

    Example:

    ```python
    import keras_ddpm as kd

    kd.samplers.get("ddim")                             # DDIMSampler(eta=0.0, ...)
    kd.samplers.get({"name": "ddpm", "variance": "fixed_large"}).variance
    ```
    """
    if isinstance(identifier, Sampler):
        return identifier
    if isinstance(identifier, str):
        return _from_name(identifier, {})
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        f"Could not interpret sampler {identifier!r}; expected one of {sorted(_NAMES)}, "
        "a config dict or a Sampler instance."
    )


__all__ = [
    "Sampler",
    "DDPMSampler",
    "DDIMSampler",
    "spaced_timesteps",
    "get",
    "serialize",
    "deserialize",
]
