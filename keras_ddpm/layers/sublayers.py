"""Calling a composite layer's own, already built sublayers cheaply.

Not exported: the library's composite layers (`ResidualBlock`, `DownBlock`,
`UpBlock`, `AttentionBlock`) use it inside their `call`.
"""


def call_sublayer(layer, *args, **kwargs):
    """`layer(*args, **kwargs)` without `Layer.__call__`'s per-call work where it is redundant.

    `Layer.__call__` converts the inputs, opens a name scope, settles the
    autocast scope and the call context, and checks the build, on every call:
    about 60 µs of Python on two CPU cores, paid by each of the hundred and
    more sublayer calls of a U-Net's forward pass when PyTorch runs it
    eagerly (on TensorFlow and JAX only while tracing). Inside the enclosing
    layer's `call` all of that is already done: the enclosing `__call__` has
    converted the inputs and entered the autocast scope of the same dtype
    policy, and `build` built the sublayer. So this calls `layer.call`
    directly, and goes through `__call__` only where it does more: for a
    sublayer that is not built, is quantized or rematerializes.

    `training` is not inherited from the call context here: pass it to the
    sublayers that take it.

    Args:
        layer: a `keras.layers.Layer` owned by the calling layer, sharing its
            dtype policy.
        *args: the sublayer's `call` arguments.
        **kwargs: its keyword arguments.

    Returns:
        What `layer(*args, **kwargs)` returns.
    """
    if (
        layer.built
        and getattr(layer.dtype_policy, "quantization_mode", None) is None
        and getattr(layer, "_remat_mode", None) is None
    ):
        return layer.call(*args, **kwargs)
    return layer(*args, **kwargs)
