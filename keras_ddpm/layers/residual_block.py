import keras
from keras import layers, ops

from keras_ddpm.layers.conv import Conv2D
from keras_ddpm.layers.group_normalization import GroupNormalization
from keras_ddpm.layers.sublayers import call_sublayer
from keras_ddpm.utils import check_choice, check_float, check_int


def check_groups(filters, groups, what="filters", each=False):
    """Return `(filters, groups)` as ints, checked positive and divisible.

    With `each=True`, `filters` is one entry of the sequence `what` names.
    """
    filters = check_int(what, filters, low=1)
    groups = check_int("groups", groups, low=1)
    if filters % groups:
        raise ValueError(
            f"Each of `{what}` must be divisible by {groups}, the group "
            f"normalization's groups, got {filters}."
            if each
            else f"`{what}` ({filters}) must be divisible by `groups` ({groups}) "
            "for group normalization."
        )
    return filters, groups


@keras.saving.register_keras_serializable(package="keras_ddpm")
class ResidualBlock(keras.layers.Layer):
    """Residual block conditioned on a time embedding (Ho et al. 2020, after Wide ResNet).

    `h = conv(act(norm(x))) + dense(act(emb))` (the embedding added per channel),
    `h = conv(dropout(act(norm(h))))`, output `skip(x) + h`, where `skip` is a 1×1
    convolution when the channel count changes and the identity otherwise.

    With `scale_shift=True` the embedding scales and shifts the normalised
    features instead (adaptive group normalization, Dhariwal & Nichol 2021):
    `(scale, shift) = dense(act(emb))` (2 × `filters` values),
    `h = conv(act(norm(x)))`, `h = conv(dropout(act(norm(h) · (1 + scale) + shift)))`.

    Args:
        filters: int, output channels; divisible by `groups`.
        groups: int, groups of the GroupNormalization layers. Defaults to 8.
        dropout: float in [0, 1), dropout rate before the second convolution.
            Defaults to 0.0.
        activation: activation name or callable. Defaults to `"swish"`.
        zero_init: bool, start the second convolution at zero, so that a new
            block computes its skip path alone (the residual branch learns
            from there, as in Dhariwal & Nichol's U-Net). Defaults to False
            (Glorot-uniform, Keras' default).
        scale_shift: bool, condition on the embedding by a per-channel scale
            and shift of the second normalization rather than by addition
            before it. Defaults to False.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a list `[x, embedding]`: `x` of shape `(B, H, W, C)` with `C`
            divisible by `groups`, `embedding` of shape `(B, E)`.
        training: bool, whether dropout is active.

    Returns:
        A tensor of shape `(B, H, W, filters)`.

    Raises:
        ValueError: if `filters` or the input channels are not divisible by
            `groups`, `dropout` is outside [0, 1), `zero_init` or
            `scale_shift` is not a bool, or `x` is not of rank 4.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    block = kd.layers.ResidualBlock(filters=32, groups=8)
    x = np.random.rand(2, 16, 16, 16).astype("float32")
    embedding = np.random.rand(2, 64).astype("float32")
    block([x, embedding]).shape  # (2, 16, 16, 32)
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
        - [Zagoruyko & Komodakis, 2016. Wide Residual Networks](https://arxiv.org/abs/1605.07146)
        - [Dhariwal & Nichol, 2021. Diffusion Models Beat GANs on Image Synthesis](https://arxiv.org/abs/2105.05233)
    """

    def __init__(
        self,
        filters,
        groups=8,
        dropout=0.0,
        activation="swish",
        zero_init=False,
        scale_shift=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters, groups = check_groups(filters, groups)
        self.filters, self.groups = filters, groups
        self.dropout = check_float("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.activation = keras.activations.get(activation)
        self.zero_init = check_choice("zero_init", zero_init, (False, True))
        self.scale_shift = check_choice("scale_shift", scale_shift, (False, True))
        policy = self.dtype_policy
        self.norm1 = GroupNormalization(
            groups, epsilon=1e-5, dtype=policy, name="norm1"
        )
        self.conv1 = Conv2D(filters, 3, padding="same", dtype=policy, name="conv1")
        self.embedding_projection = layers.Dense(
            2 * filters if self.scale_shift else filters,
            dtype=policy,
            name="embedding_projection",
        )
        self.norm2 = GroupNormalization(
            groups, epsilon=1e-5, dtype=policy, name="norm2"
        )
        self.dropout_layer = layers.Dropout(self.dropout, dtype=policy, name="dropout")
        self.conv2 = Conv2D(
            filters,
            3,
            padding="same",
            kernel_initializer="zeros" if self.zero_init else "glorot_uniform",
            dtype=policy,
            name="conv2",
        )
        self.skip_projection = None

    def build(self, input_shape):
        x_shape, embedding_shape = input_shape
        x_shape = tuple(x_shape)
        if len(x_shape) != 4:
            raise ValueError(
                f"ResidualBlock expects x of rank 4 (B, H, W, C), got shape {x_shape}."
            )
        channels = x_shape[-1]
        check_groups(channels, self.groups, what="input channels")
        self.norm1.build(x_shape)
        self.conv1.build(x_shape)
        self.embedding_projection.build(tuple(embedding_shape))
        out_shape = x_shape[:-1] + (self.filters,)
        self.norm2.build(out_shape)
        self.dropout_layer.build(out_shape)
        self.conv2.build(out_shape)
        if channels != self.filters:
            self.skip_projection = Conv2D(
                self.filters, 1, dtype=self.dtype_policy, name="skip_projection"
            )
            self.skip_projection.build(x_shape)

    def call(self, inputs, training=None):
        x, embedding = inputs
        h = call_sublayer(self.conv1, self.activation(call_sublayer(self.norm1, x)))
        projected = call_sublayer(self.embedding_projection, self.activation(embedding))
        projected = ops.expand_dims(ops.expand_dims(projected, 1), 1)
        if self.scale_shift:
            scale, shift = ops.split(projected, 2, axis=-1)
            h = call_sublayer(self.norm2, h) * (1.0 + scale) + shift
        else:
            h = call_sublayer(self.norm2, h + projected)
        h = self.activation(h)
        if self.dropout:
            h = call_sublayer(self.dropout_layer, h, training=training)
        h = call_sublayer(self.conv2, h)
        if self.skip_projection is not None:
            x = call_sublayer(self.skip_projection, x)
        return x + h

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])[:-1] + (self.filters,)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "zero_init": self.zero_init,
            "scale_shift": self.scale_shift,
        }
