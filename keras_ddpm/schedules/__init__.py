"""Noise schedules: tables of betas and alphas_cumprod, nothing else."""

from keras_ddpm.schedules.cosine_schedule import CosineSchedule
from keras_ddpm.schedules.linear_schedule import LinearSchedule
from keras_ddpm.schedules.noise_schedule import NoiseSchedule
from keras_ddpm.schedules.sigmoid_schedule import SigmoidSchedule
from keras_ddpm.utils import Registry

_REGISTRY = Registry(
    "schedule",
    NoiseSchedule,
    {"linear": LinearSchedule, "cosine": CosineSchedule, "sigmoid": SigmoidSchedule},
)


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
    return _REGISTRY.serialize(schedule)


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
    return _REGISTRY.deserialize(config)


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
    return _REGISTRY.get(identifier)


def names():
    """Return the schedule names that `get` takes, sorted.

    Read from the registry, so a newly registered schedule is listed too; the
    command line and the web demo build their choices from it.

    Returns:
        A tuple of str.

    Example:

    ```python
    import keras_ddpm as kd

    kd.schedules.names()  # ('cosine', 'linear', 'sigmoid')
    ```
    """
    return tuple(sorted(_REGISTRY.names))


__all__ = [
    "NoiseSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "SigmoidSchedule",
    "get",
    "serialize",
    "deserialize",
    "names",
]
