"""Multi-device training on the engines Keras already has.

keras-ddpm has no distribution layer of its own. On JAX it trains under
`keras.distribution` (`DataParallel`, or `ModelParallel` with
`unet_layout_map`); on TensorFlow under a `tf.distribute` strategy
(`MirroredStrategy`, `MultiWorkerMirroredStrategy`, `TPUStrategy`). Either way a
data-parallel step equals the single-device step on the same global batch: each
replica draws the training noise of the whole batch and keeps its own slice.
Keras offers no multi-device `fit` on PyTorch today; `device_scope` says so.
"""

import contextlib

import keras

from keras_ddpm.utils import check_int

__all__ = ["device_scope", "unet_layout_map"]

# Residual-block convolutions hold most of a U-Net's weights. The patterns also
# match the model's EMA copies and the optimizer's slots, whose paths join the
# same names with "_", so every copy of a kernel is laid out alike.
_LARGE_KERNELS = (
    (r".*residual_\d+[/_]conv[12][/_]kernel.*", (None, None, None, "{axis}")),
    (r".*residual_\d+[/_]conv[12][/_]bias.*", ("{axis}",)),
)


def unet_layout_map(device_mesh, model_axis="model"):
    """A `keras.distribution.LayoutMap` that shards a U-Net's large kernels.

    The 3×3 convolutions of every residual block (`kd.layers.ResidualBlock`
    inside `kd.models.build_unet`) are split along their output channels over
    the mesh axis `model_axis`; every other variable is replicated. Widths must
    be divisible by that axis' size. Use it with
    `keras.distribution.ModelParallel` on JAX.

    Args:
        device_mesh: a `keras.distribution.DeviceMesh`, e.g. of shape
            `(data, model)` with axis names `("batch", "model")`.
        model_axis: str, the mesh axis the kernels are split over. Defaults to
            `"model"`.

    Returns:
        A `keras.distribution.LayoutMap`.

    Raises:
        ValueError: if `model_axis` is not an axis of `device_mesh`.

    Example:

    ```python
    import keras
    import keras_ddpm as kd

    if keras.backend.backend() == "jax":  # keras.distribution meshes are JAX's
        devices = keras.distribution.list_devices()
        mesh = keras.distribution.DeviceMesh(
            (len(devices), 1), ("batch", "model"), devices
        )
        layout_map = kd.distribute.unet_layout_map(mesh)
    ```
    """
    if model_axis not in device_mesh.axis_names:
        raise ValueError(
            f"`model_axis` must be one of the mesh axes {tuple(device_mesh.axis_names)}, "
            f"got {model_axis!r}."
        )
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in _LARGE_KERNELS:
        layout_map[pattern] = tuple(
            None if a is None else a.format(axis=model_axis) for a in axes
        )
    return layout_map


def _tensorflow_strategy(count):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if len(gpus) < count:
            raise ValueError(
                f"`count` = {count} asks for more GPUs than the {len(gpus)} TensorFlow sees."
            )
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(count)])
    # No GPU: split the CPU into `count` logical devices (a test and debug set-up).
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:
        pass  # already initialised: use the logical devices it has
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < count:
        raise ValueError(
            f"`count` = {count}: TensorFlow was initialised with {len(cpus)} CPU "
            "device(s) and no GPU."
        )
    return tf.distribute.MirroredStrategy([d.name for d in cpus[:count]])


def device_scope(count):
    """A context to build, compile and fit a model on `count` devices.

    It picks the engine of the active backend: `tf.distribute.MirroredStrategy`
    on TensorFlow (over GPUs, or over logical CPU devices when there is none),
    `keras.distribution.DataParallel` on JAX. One device gives a context that
    changes nothing.

    Args:
        count: int ≥ 1, the number of devices.

    Returns:
        A context manager.

    Raises:
        ValueError: if `count` is not a positive int, the backend has fewer
            devices, or the backend (PyTorch) has no multi-device `fit`.

    Example:

    ```python
    import keras_ddpm as kd

    with kd.distribute.device_scope(1):
        net = kd.models.build_unet(image_size=8, widths=(8, 16), block_depth=1)
    ```
    """
    count = check_int("count", count, low=1)
    if count == 1:
        return contextlib.nullcontext()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_strategy(count).scope()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        if len(devices) < count:
            raise ValueError(
                f"`count` = {count} asks for more devices than the {len(devices)} JAX "
                f"sees (on a CPU, set XLA_FLAGS=--xla_force_host_platform_device_count={count})."
            )
        return keras.distribution.DataParallel(devices=devices[:count]).scope()
    raise ValueError(
        f"Keras has no multi-device fit on the {backend} backend; use "
        "KERAS_BACKEND=jax or tensorflow for more than one device."
    )
