import keras
from keras import layers, ops

from keras_ddpm.layers.group_normalization import GroupNormalization
from keras_ddpm.layers.residual_block import check_groups
from keras_ddpm.layers.sublayers import call_sublayer
from keras_ddpm.utils import check_choice, check_int


@keras.saving.register_keras_serializable(package="keras_ddpm")
class AttentionBlock(keras.layers.Layer):
    """Self-attention over the spatial positions of a feature map, with a residual.

    `x + attention(norm(x))`, every one of the H·W positions attending to all
    others, as in the 16×16 attention of the DDPM U-Net. Cost grows with (H·W)²:
    use it at low resolutions.

    Args:
        num_heads: int, attention heads; must divide the channel count. Defaults to 1.
        groups: int, groups of the GroupNormalization before attention. Defaults to 8.
        zero_init: bool, start the attention's output projection (its kernel;
            the bias starts at zero either way) at zero, so that a new block
            is the identity, as in the DDPM code of Ho et al.; the query, key
            and value projections start random, so all of them learn.
            Networks with attention at 4×4 can fail to start learning
            without it. Defaults to False.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a tensor of shape `(B, H, W, C)`, `C` divisible by `groups` and
            `num_heads`.

    Returns:
        A tensor of the same shape.

    Raises:
        ValueError: if `num_heads` or `groups` is not a positive int, `zero_init`
            is not a bool, or the input is not a static `(B, H, W, C)` with `C`
            divisible by both.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    block = kd.layers.AttentionBlock(num_heads=2, groups=8)
    block(np.random.rand(2, 8, 8, 32).astype("float32")).shape  # (2, 8, 8, 32)
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
        - [Wang et al., 2018. Non-local Neural Networks](https://arxiv.org/abs/1711.07971)
    """

    def __init__(self, num_heads=1, groups=8, zero_init=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads, low=1)
        self.groups = groups = check_int("groups", groups, low=1)
        self.zero_init = check_choice("zero_init", zero_init, (False, True))
        self.norm = GroupNormalization(
            groups, epsilon=1e-5, dtype=self.dtype_policy, name="norm"
        )
        self.attention = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or None in input_shape[1:]:
            raise ValueError(
                f"AttentionBlock expects a static shape (B, H, W, C), got {input_shape}."
            )
        channels = input_shape[-1]
        check_groups(channels, self.groups, what="input channels")
        if channels % self.num_heads:
            raise ValueError(
                f"Input channels ({channels}) must be divisible by `num_heads` ({self.num_heads})."
            )
        self.norm.build(input_shape)
        self.attention = layers.MultiHeadAttention(
            self.num_heads,
            key_dim=channels // self.num_heads,
            dtype=self.dtype_policy,
            name="attention",
        )
        sequence_shape = (input_shape[0], input_shape[1] * input_shape[2], channels)
        self.attention.build(sequence_shape, sequence_shape)
        if self.zero_init:
            # MultiHeadAttention's one initializer serves all four projections;
            # only the output's may start at zero (zero values would stall it).
            kernel = self.attention._output_dense.kernel
            kernel.assign(ops.zeros(kernel.shape, kernel.dtype))

    def call(self, inputs):
        _, height, width, channels = inputs.shape
        h = ops.reshape(
            call_sublayer(self.norm, inputs), (-1, height * width, channels)
        )
        h = call_sublayer(self.attention, h, h)
        return inputs + ops.reshape(h, (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "groups": self.groups,
            "zero_init": self.zero_init,
        }
