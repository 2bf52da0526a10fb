"""Noise schedules: tables of betas and alphas_cumprod, nothing else."""

import keras

from keras_ddpm.schedules.cosine_schedule import CosineSchedule
from keras_ddpm.schedules.linear_schedule import LinearSchedule
from keras_ddpm.schedules.noise_schedule import NoiseSchedule
from keras_ddpm.schedules.sigmoid_schedule import SigmoidSchedule

_NAMES = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "sigmoid": SigmoidSchedule,
}


def serialize(schedule):
    """Return the Keras config dict of a schedule (what `get`/`deserialize` take back).

    Args:
        schedule: a `NoiseSchedule` instance.

    Returns:
        A JSON-serialisable dict.

    Example:

    ```python
    import keras_ddpm as kd

    config = kd.schedules.serialize(kd.schedules.CosineSchedule(timesteps=500))
    kd.schedules.deserialize(config).timesteps  # 500
    ```
    """
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"Expected a NoiseSchedule instance, got {schedule!r}.")
    return keras.saving.serialize_keras_object(schedule)


def deserialize(config):
    """Rebuild a schedule from a config dict made by `serialize`.

    Args:
        config: dict with `"class_name"` and `"config"` keys, or a short form
            `{"name": "linear", "timesteps": 500, ...}`.

    Returns:
        A `NoiseSchedule` instance.

    Example:

    ```python
    import keras_ddpm as kd

    kd.schedules.deserialize({"name": "linear", "timesteps": 500}).timesteps  # 500
    ```
    """
    if not isinstance(config, dict):
        raise ValueError(f"Expected a schedule config dict, got {config!r}.")
    if "name" in config and "class_name" not in config:
        kwargs = {k: v for k, v in config.items() if k != "name"}
        return _from_name(config["name"], kwargs)
    schedule = keras.saving.deserialize_keras_object(config)
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"Config {config!r} does not describe a NoiseSchedule.")
    return schedule


def _from_name(name, kwargs):
    key = str(name).lower().replace("schedule", "").strip("_ ")
    if key not in _NAMES:
        raise ValueError(
            f"Unknown schedule {name!r}; expected one of {sorted(_NAMES)}, a config "
            "dict or a NoiseSchedule instance."
        )
    return _NAMES[key](**kwargs)


def get(identifier):
    """Return a schedule from a name, a config dict or an instance.

    Args:
        identifier: `"linear"`, `"cosine"` or `"sigmoid"` (default settings), a
            dict accepted by `deserialize`, or a `NoiseSchedule` (returned as is).

    Returns:
        A `NoiseSchedule` instance.

    Raises:
        ValueError: for an unknown name or anything else.

    Example:

    ```python
    import keras_ddpm as kd

    kd.schedules.get("cosine")                       # CosineSchedule(timesteps=1000, ...)
    kd.schedules.get({"name": "linear", "timesteps": 500}).timesteps  # 500
    ```
    """
    if isinstance(identifier, NoiseSchedule):
        return identifier
    if isinstance(identifier, str):
        return _from_name(identifier, {})
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        f"Could not interpret schedule {identifier!r}; expected one of "
        f"{sorted(_NAMES)}, a config dict or a NoiseSchedule instance."
    )


__all__ = [
    "NoiseSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "SigmoidSchedule",
    "get",
    "serialize",
    "deserialize",
]
