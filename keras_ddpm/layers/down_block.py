import keras

from keras_ddpm.layers.conv import Conv2D
from keras_ddpm.layers.sublayers import call_sublayer
from keras_ddpm.layers.unet_level import UNetLevel


@keras.saving.register_keras_serializable(package="keras_ddpm")
class DownBlock(UNetLevel):
    """One encoder level of a U-Net: residual blocks, then an optional downsampling.

    Each of the `block_depth` residual blocks (each followed by an `AttentionBlock`
    when `attention=True`) appends its output to a list of skips; the matching
    `UpBlock` consumes that list in reverse. A stride-2 3×3 convolution halves the
    resolution when `downsample=True`.

    Args:
        filters: int, channels of this level; divisible by `groups`.
        block_depth: int >= 1, residual blocks in this level. Defaults to 2.
        attention: bool, add self-attention after each residual block. Defaults to False.
        downsample: bool, halve height and width at the end. Defaults to True.
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
        inputs: a list `[x, embedding]`, `x` of shape `(B, H, W, C)`, `embedding`
            of shape `(B, E)`.
        training: bool, whether dropout is active.

    Returns:
        A tuple `(x, skips)`: `x` of shape `(B, H/2, W/2, filters)` (or
        `(B, H, W, filters)` without downsampling) and a list of `block_depth`
        tensors of shape `(B, H, W, filters)`.

    Raises:
        ValueError: if `filters` is not divisible by `groups`, `block_depth` is
            not an int >= 1, or `x` is not of rank 4 `(B, H, W, C)`.

    Example:

    A two-level U-Net of your own, the skips passed from each `DownBlock` to the
    `UpBlock` of the same level:

    ```python
    import keras
    import keras_ddpm as kd

    images = keras.Input((32, 32, 3))
    timesteps = keras.Input(())
    embedding = kd.layers.SinusoidalEmbedding(64)(timesteps)
    x = keras.layers.Conv2D(32, 3, padding="same")(images)
    x, skips_1 = kd.layers.DownBlock(32)([x, embedding])
    x, skips_2 = kd.layers.DownBlock(64, downsample=False)([x, embedding])
    x = kd.layers.UpBlock(64, upsample=False)([x, embedding, skips_2])
    x = kd.layers.UpBlock(32)([x, embedding, skips_1])
    outputs = keras.layers.Conv2D(3, 3, padding="same")(x)
    model = keras.Model([images, timesteps], outputs)
    ```

    References:
        - [Ronneberger et al., 2015. U-Net](https://arxiv.org/abs/1505.04597)
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
    """

    def __init__(
        self, filters, block_depth=2, attention=False, downsample=True, **kwargs
    ):
        super().__init__(filters, block_depth, attention, **kwargs)
        self.downsample = bool(downsample)
        self.downsampler = (
            Conv2D(
                filters,
                3,
                strides=2,
                padding="same",
                dtype=self.dtype_policy,
                name="downsample",
            )
            if self.downsample
            else None
        )

    def build(self, input_shape):
        x_shape, embedding_shape = (tuple(s) for s in input_shape)
        for i in range(self.block_depth):
            x_shape = self._build_block(i, x_shape, embedding_shape)
        if self.downsampler is not None:
            self.downsampler.build(x_shape)

    def call(self, inputs, training=None):
        x, embedding = inputs
        skips = []
        for i in range(self.block_depth):
            x = self._apply_block(i, x, embedding, training)
            skips.append(x)
        if self.downsampler is not None:
            x = call_sublayer(self.downsampler, x)
        return x, skips

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = tuple(input_shape[0])
        skip_shape = (batch, height, width, self.filters)
        if self.downsample:
            height = None if height is None else (height + 1) // 2
            width = None if width is None else (width + 1) // 2
        return (batch, height, width, self.filters), [skip_shape] * self.block_depth

    def get_config(self):
        return {**super().get_config(), "downsample": self.downsample}
