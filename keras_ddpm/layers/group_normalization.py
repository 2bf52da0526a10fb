import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_ddpm")
class GroupNormalization(keras.layers.GroupNormalization):
    """Group normalization with fewer passes over the activations (Wu & He 2018).

    The same layer, arguments, weights and results as
    `keras.layers.GroupNormalization`, computed in an order that costs less
    when normalizing the channels-last feature maps of a U-Net: statistics are
    first summed per channel over the spatial positions (a contiguous
    reduction), then per group on the small `(batch, channels)` result, and
    the output is one multiply-add with a per-channel scale and shift. The
    statistics are float32 under mixed precision; the variance is the mean of
    squared deviations from the mean (two passes), never `E[x²] - E[x]²`. On
    PyTorch, 4-D inputs go to its fused `group_norm` kernel through a
    channels-last view (no transposed copies). Any other axis, or unknown
    spatial dimensions, use the Keras computation.

    Args:
        groups: int, number of groups; must divide the channel count.
            Defaults to 32.
        axis: int, the channel axis. Defaults to -1.
        epsilon: float, added to the variance. Defaults to 1e-3.
        **kwargs: the other arguments of `keras.layers.GroupNormalization`
            (`center`, `scale`, initializers, regularizers, constraints) and
            base layer arguments.

    Call arguments:
        inputs: a tensor of rank ≥ 2 with the channels on `axis`.

    Returns:
        A tensor of the input's shape in the layer's compute dtype.

    Raises:
        ValueError: if `groups` does not divide the channel count.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    norm = kd.layers.GroupNormalization(groups=4, epsilon=1e-5)
    x = np.random.rand(2, 8, 8, 16).astype("float32")
    y = norm(x)
    y.shape  # (2, 8, 8, 16); each group of 4 channels has mean 0, variance 1
    ```

    References:
        - [Wu & He, 2018. Group Normalization](https://arxiv.org/abs/1803.08494)
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, **kwargs):
        super().__init__(groups=groups, axis=axis, epsilon=epsilon, **kwargs)

    def call(self, inputs):
        shape = tuple(inputs.shape)
        axis = self.axis if self.axis >= 0 else len(shape) + self.axis
        if axis != len(shape) - 1 or len(shape) < 2 or None in shape[1:]:
            return super().call(inputs)
        if keras.backend.backend() == "torch" and len(shape) == 4:
            return self._torch_call(inputs)
        channels = shape[-1]
        per_group = channels // self.groups
        positions = 1
        for size in shape[1:-1]:
            positions *= size
        count = float(positions * per_group)

        def to_channels(values):  # (B, groups) -> (B, 1, channels)
            values = ops.repeat(ops.expand_dims(values, -1), per_group, axis=-1)
            return ops.reshape(values, (-1, 1, channels))

        def group_mean(values):  # (B, positions, channels) -> (B, 1, channels)
            per_channel = ops.sum(values, axis=1)
            grouped = ops.reshape(per_channel, (-1, self.groups, per_group))
            return to_channels(ops.sum(grouped, axis=-1) / count)

        x = ops.cast(ops.reshape(inputs, (-1, positions, channels)), "float32")
        mean = group_mean(x)
        centred = x - mean
        inverse_std = ops.rsqrt(group_mean(ops.square(centred)) + self.epsilon)
        scale = inverse_std
        if self.scale:
            scale = scale * ops.cast(self.gamma, "float32")
        outputs = centred * scale
        if self.center:
            outputs = outputs + ops.cast(self.beta, "float32")
        outputs = ops.cast(outputs, self.compute_dtype)
        return ops.reshape(outputs, (-1,) + shape[1:])

    def _torch_call(self, inputs):
        """PyTorch's fused kernel on a channels-last view: no copies, one pass each way."""
        import torch
        import torch.nn.functional as F

        # (B, H, W, C) viewed as (B, C, H, W) in channels-last memory, which
        # `group_norm` keeps, so the view back to (B, H, W, C) is free too.
        x = ops.cast(inputs, "float32").permute(0, 3, 1, 2)
        channels = inputs.shape[-1]
        # Both always given: the kernel's backward without a weight fails.
        weight = ops.cast(self.gamma, "float32") if self.scale else ops.ones(channels)
        bias = ops.cast(self.beta, "float32") if self.center else ops.zeros(channels)
        if (
            torch.is_grad_enabled()
            and not x.requires_grad
            and (weight.requires_grad or bias.requires_grad)
        ):
            # The CPU kernel's backward crashes (segmentation fault) for a
            # channels-last input that needs no gradient while the weights
            # do, as when the layer reads a model's input: copy it to
            # channels-first memory there.
            x = x.contiguous()
        outputs = F.group_norm(x, self.groups, weight, bias, self.epsilon)
        return ops.cast(outputs.permute(0, 2, 3, 1), self.compute_dtype)
