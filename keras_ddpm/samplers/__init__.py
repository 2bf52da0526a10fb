"""Samplers: one step rule each, over a single denoise function."""

from keras_ddpm.samplers.ddim_sampler import DDIMSampler
from keras_ddpm.samplers.ddpm_sampler import DDPMSampler
from keras_ddpm.samplers.dpm_solver_sampler import DPMSolverSampler
from keras_ddpm.samplers.karras_samplers import EulerSampler, HeunSampler
from keras_ddpm.samplers.sampler import (
    Sampler,
    karras_sigmas,
    noise_seed_state,
    spaced_timesteps,
)
from keras_ddpm.utils import Registry

_REGISTRY = Registry(
    "sampler",
    Sampler,
    {
        "ddpm": DDPMSampler,
        "ddim": DDIMSampler,
        "dpm_solver": DPMSolverSampler,
        "euler": EulerSampler,
        "heun": HeunSampler,
    },
)


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
    return _REGISTRY.serialize(sampler)


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
    return _REGISTRY.deserialize(config)


def get(identifier):
    """Return a sampler from a name (see `names()`), a config dict or an instance.

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
    return _REGISTRY.get(identifier)


def names():
    """Return the sampler names that `get` takes, sorted.

    Read from the registry, so a newly registered sampler is listed too; the
    command line and the web demo build their choices from it.

    Returns:
        A tuple of str.

    Example:

    ```python
    import keras_ddpm as kd

    kd.samplers.names()  # ('ddim', 'ddpm', 'dpm_solver', 'euler', 'heun')
    ```
    """
    return tuple(sorted(_REGISTRY.names))


__all__ = [
    "Sampler",
    "DDPMSampler",
    "DDIMSampler",
    "DPMSolverSampler",
    "EulerSampler",
    "HeunSampler",
    "spaced_timesteps",
    "karras_sigmas",
    "noise_seed_state",
    "get",
    "serialize",
    "deserialize",
    "names",
]
