import keras
import numpy as np

# Floating-point operations per element of a GroupNormalization: the mean and the
# variance (two reductions, a subtraction and a square), the normalisation (a
# subtraction and a multiplication by the reciprocal deviation) and the affine
# scale and shift.
GROUP_NORM_FLOPS_PER_ELEMENT = 8
# Per attention score: the max subtraction, the sum and the division of the
# softmax (the exponential is a transcendental, not a FLOP).
SOFTMAX_FLOPS_PER_SCORE = 3


def _size(shape):
    return int(np.prod([int(s) for s in shape]))


def _einsum_contraction(layer):
    inputs, output = layer.equation.split("->")
    kernel_letters = inputs.split(",")[1]
    shape = layer.kernel.shape
    return _size([d for d, c in zip(shape, kernel_letters) if c not in output])


def _valid_taps(size, kernel, stride, dilation, padding):
    """Pairs (output position, kernel tap) that land inside the input along one axis.

    Taps on the zero padding of `"same"` convolutions multiply zeros; XLA does
    not count them, and neither do we.
    """
    out = np.arange(
        -(-size // stride)
        if padding == "same"
        else (size - (kernel - 1) * dilation - 1) // stride + 1
    )
    span = (kernel - 1) * dilation + 1
    pad = max((len(out) - 1) * stride + span - size, 0) // 2 if padding == "same" else 0
    positions = out[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation
    return int(np.sum((positions >= 0) & (positions < size)))


def _layer_flops(layer, input_shapes, output_shape):
    """(category, FLOPs) of one call of a layer at batch size 1, or None."""
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, cin_per_group, cout = layer.kernel.shape
        out = _size(output_shape)
        first = 2 if layer.data_format == "channels_first" else 1
        taps = 1
        for axis, kernel in enumerate((kh, kw)):
            taps *= _valid_taps(
                int(input_shapes[0][first + axis]),
                int(kernel),
                layer.strides[axis],
                layer.dilation_rate[axis],
                layer.padding,
            )
        macs = taps * cin_per_group * cout
        return "conv", 2 * macs + (out if layer.use_bias else 0)
    if isinstance(layer, keras.layers.Dense):
        out = _size(output_shape)
        macs = out * int(layer.kernel.shape[0])
        return "dense", 2 * macs + (out if layer.use_bias else 0)
    if isinstance(layer, keras.layers.EinsumDense):
        out = _size(output_shape)
        bias = _size(layer.bias.shape) if layer.bias is not None else 0
        return "dense", 2 * out * _einsum_contraction(layer) + bias
    if isinstance(layer, keras.layers.MultiHeadAttention):
        query, value = input_shapes[0], input_shapes[1]
        heads, key_dim = layer.num_heads, layer.key_dim
        value_dim = layer.value_dim or key_dim
        nq = _size(query[1:-1])
        nk = _size(value[1:-1])
        scores = heads * nq * nk
        # Q·Kᵀ, the query scaling, the softmax and the weighted sum of values;
        # the four projections are EinsumDense layers counted on their own.
        return "attention", (
            2 * scores * key_dim
            + heads * nq * key_dim
            + SOFTMAX_FLOPS_PER_SCORE * scores
            + 2 * scores * value_dim
        )
    if isinstance(layer, keras.layers.GroupNormalization):
        return "norm", GROUP_NORM_FLOPS_PER_ELEMENT * _size(output_shape)
    return None


def count_flops(network, inputs=None):
    """Count the floating-point operations of one forward pass, per sample.

    Runs `network` once on a single sample of zeros (or on `inputs`, whose
    leading dimension must be 1) and adds up, for every convolution, dense,
    einsum-dense, attention and group-normalization layer it calls, the FLOPs of
    that call: a multiply-add counts 2, biases 1 per output, attention the
    score and value products plus the softmax, group normalization 8 per
    element. Element-wise activations and residual additions are not counted;
    for a U-Net they are about 1–3 % of the total, which is the tolerance
    against XLA's own count (`jax.jit(f).lower(...).compile().cost_analysis()`).
    A training step costs about 3 forward passes (forward, and the backward
    pass's two products per layer).

    Args:
        network: a built `keras.Model` or layer, such as `build_unet(...)`.
        inputs: optional list of arrays with batch size 1 to call `network` on.
            Defaults to zeros shaped like `network.inputs`.

    Returns:
        A dict of ints: `"total"` and the part of each category, `"conv"`,
        `"dense"`, `"attention"` and `"norm"`.

    Raises:
        ValueError: when `network` has no known input shape and no `inputs`
            are given, or `inputs` do not have batch size 1.

    Example:

    ```python
    import keras_ddpm as kd

    net = kd.models.build_unet(image_size=16, widths=(8, 16), block_depth=1)
    flops = kd.models.count_flops(net)
    flops["total"] > flops["conv"] > 0  # True
    ```
    """
    if inputs is None:
        try:
            shapes = [tuple(t.shape) for t in network.inputs]
        except (AttributeError, ValueError, TypeError):
            shapes = None
        if not shapes or any(None in s[1:] for s in shapes):
            raise ValueError(
                "`count_flops` needs a network with known input shapes (a functional "
                "keras.Model) or `inputs` with batch size 1."
            )
        inputs = [np.zeros((1,) + s[1:], "float32") for s in shapes]
        if len(inputs) == 1:
            inputs = inputs[0]
    leading = {int(np.shape(x)[0]) for x in keras.tree.flatten(inputs)}
    if leading != {1}:
        raise ValueError(
            f"`inputs` for count_flops must have batch size 1, got batch sizes {sorted(leading)}."
        )
    counts = {"conv": 0, "dense": 0, "attention": 0, "norm": 0}
    layers = list(network._flatten_layers(include_self=False))

    def instrument(layer):
        call = layer.call

        def counted_call(*args, **kwargs):
            output = call(*args, **kwargs)
            input_shapes = [
                tuple(x.shape) for x in keras.tree.flatten(args) if hasattr(x, "shape")
            ]
            output_shape = tuple(keras.tree.flatten(output)[0].shape)
            counted = _layer_flops(layer, input_shapes, output_shape)
            if counted is not None:
                counts[counted[0]] += counted[1]
            return output

        layer.call = counted_call

    for layer in layers:
        instrument(layer)
    try:
        network(inputs, training=False)
    finally:
        for layer in layers:
            del layer.call
    counts = {k: int(v) for k, v in counts.items()}
    counts["total"] = sum(counts.values())
    return counts
