import keras

from keras_ddpm.layers.attention_block import AttentionBlock
from keras_ddpm.layers.residual_block import ResidualBlock, check_groups
from keras_ddpm.layers.sublayers import call_sublayer
from keras_ddpm.utils import check_choice, check_int


class UNetLevel(keras.layers.Layer):
    """What `DownBlock` and `UpBlock` share: residual blocks, optional attention.

    Not exported: subclasses add the resampling and define `call`.
    """

    def __init__(
        self,
        filters,
        block_depth=2,
        attention=False,
        groups=8,
        dropout=0.0,
        activation="swish",
        num_heads=1,
        zero_init=False,
        scale_shift=False,
        zero_init_attention=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters, groups = check_groups(filters, groups)
        block_depth = check_int("block_depth", block_depth, low=1)
        self.filters, self.groups, self.block_depth = filters, groups, block_depth
        self.attention = bool(attention)
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.num_heads = num_heads
        # Both checked by each ResidualBlock.
        self.zero_init, self.scale_shift = zero_init, scale_shift
        self.zero_init_attention = check_choice(
            "zero_init_attention", zero_init_attention, (False, True)
        )
        policy = self.dtype_policy
        self.residual_blocks = [
            ResidualBlock(
                filters,
                groups,
                dropout,
                activation,
                zero_init=self.zero_init,
                scale_shift=self.scale_shift,
                dtype=policy,
                name=f"residual_{i}",
            )
            for i in range(block_depth)
        ]
        self.attention_blocks = [
            AttentionBlock(
                num_heads,
                groups,
                zero_init=self.zero_init_attention,
                dtype=policy,
                name=f"attention_{i}",
            )
            for i in range(block_depth if self.attention else 0)
        ]

    def _build_block(self, i, x_shape, embedding_shape):
        """Build residual block `i` (and its attention) on `x_shape`; return its output shape."""
        block = self.residual_blocks[i]
        block.build([x_shape, embedding_shape])
        x_shape = block.compute_output_shape([x_shape, embedding_shape])
        if self.attention:
            self.attention_blocks[i].build(x_shape)
        return x_shape

    def _apply_block(self, i, x, embedding, training):
        x = call_sublayer(self.residual_blocks[i], [x, embedding], training=training)
        return call_sublayer(self.attention_blocks[i], x) if self.attention else x

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "block_depth": self.block_depth,
            "attention": self.attention,
            "groups": self.groups,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "num_heads": self.num_heads,
            "zero_init": self.zero_init,
            "scale_shift": self.scale_shift,
            "zero_init_attention": self.zero_init_attention,
        }
