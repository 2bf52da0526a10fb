import keras
from keras import layers, ops

from keras_ddpm.layers.conv import Conv2D
from keras_ddpm.layers.sublayers import call_sublayer
from keras_ddpm.layers.unet_level import UNetLevel


@keras.saving.register_keras_serializable(package="keras_ddpm")
class UpBlock(UNetLevel):
    """One decoder level of a U-Net: optional upsampling, then residual blocks on skips.

    With `upsample=True` the input is doubled in height and width (nearest
    neighbour, then a 3×3 convolution). Then each of the `block_depth` residual
    blocks takes the concatenation of the running features with one skip of the
    matching `DownBlock`, consumed last-first (the mirror of how they were made).

    Args:
        filters: int, channels of this level; divisible by `groups`.
        block_depth: int >= 1, residual blocks; must equal the number of skips.
            Defaults to 2.
        attention: bool, add self-attention after each residual block. Defaults to False.
        upsample: bool, double height and width first. Defaults to True.
        **kwargs: the keyword arguments below, and base `keras.layers.Layer`
            arguments (`name`, `dtype`, ...).

    Keyword Args:
        groups: int, GroupNormalization groups. Defaults to 8.
        dropout: float, dropout rate inside residual blocks. Defaults to 0.0.
        activation: activation name or callable. Defaults to `"swish"`.
        num_heads: int, heads of the attention blocks. Defaults to 1.
        zero_init: bool, start each residual block's second convolution at
            zero (see `ResidualBlock`). Defaults to False.
        scale_shift: bool, residual blocks conditioned by adaptive group
            normalization (see `ResidualBlock`). Defaults to False.
        zero_init_attention: bool, start each attention block's output
            projection at zero (see `AttentionBlock`). Defaults to False.

    Call arguments:
        inputs: a list `[x, embedding, skips]`: `x` of shape `(B, h, w, C)`,
            `embedding` of shape `(B, E)`, `skips` the list returned by the
            matching `DownBlock`, each of shape `(B, H, W, C_skip)` with
            `(H, W) = (2h, 2w)` when upsampling and `(h, w)` otherwise.
        training: bool, whether dropout is active.

    Returns:
        A tensor of shape `(B, H, W, filters)`.

    Raises:
        ValueError: if `filters` is not divisible by `groups`, `block_depth` is
            not an int >= 1, or the skips do not match `block_depth` in number
            or the features in height and width.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    embedding = np.zeros((2, 64), "float32")
    x = np.random.rand(2, 16, 16, 32).astype("float32")
    down, skips = kd.layers.DownBlock(32)([x, embedding])
    kd.layers.UpBlock(32)([down, embedding, skips]).shape  # (2, 16, 16, 32)
    ```

    References:
        - [Ronneberger et al., 2015. U-Net](https://arxiv.org/abs/1505.04597)
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
    """

    def __init__(
        self, filters, block_depth=2, attention=False, upsample=True, **kwargs
    ):
        super().__init__(filters, block_depth, attention, **kwargs)
        self.upsample = bool(upsample)
        self.upsampler = (
            layers.UpSampling2D(
                2, interpolation="nearest", dtype=self.dtype_policy, name="upsample"
            )
            if self.upsample
            else None
        )
        self.upsample_conv = None

    def build(self, input_shape):
        x_shape, embedding_shape, skip_shapes = input_shape
        x_shape, embedding_shape = tuple(x_shape), tuple(embedding_shape)
        skip_shapes = [tuple(s) for s in skip_shapes]
        if len(skip_shapes) != self.block_depth:
            raise ValueError(
                f"UpBlock with block_depth={self.block_depth} expects {self.block_depth} "
                f"skips, got {len(skip_shapes)}."
            )
        if self.upsample:
            self.upsampler.build(x_shape)
            x_shape = (x_shape[0], _double(x_shape[1]), _double(x_shape[2]), x_shape[3])
            self.upsample_conv = Conv2D(
                x_shape[-1],
                3,
                padding="same",
                dtype=self.dtype_policy,
                name="upsample_conv",
            )
            self.upsample_conv.build(x_shape)
        for i in range(self.block_depth):
            skip_shape = skip_shapes[-1 - i]
            if skip_shape[1:3] != x_shape[1:3]:
                raise ValueError(
                    f"UpBlock skip {i} has spatial shape {skip_shape[1:3]} but the "
                    f"features are {x_shape[1:3]}; pass the skips of the DownBlock "
                    "of the same level."
                )
            concat_shape = x_shape[:-1] + (x_shape[-1] + skip_shape[-1],)
            x_shape = self._build_block(i, concat_shape, embedding_shape)

    def call(self, inputs, training=None):
        x, embedding, skips = inputs
        if self.upsample:
            x = call_sublayer(self.upsample_conv, call_sublayer(self.upsampler, x))
        for i in range(self.block_depth):
            x = ops.concatenate([x, skips[-1 - i]], axis=-1)
            x = self._apply_block(i, x, embedding, training)
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = tuple(input_shape[0])
        if self.upsample:
            height, width = _double(height), _double(width)
        return (batch, height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "upsample": self.upsample}


def _double(size):
    return None if size is None else 2 * size
