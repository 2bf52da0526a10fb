"""Reusable Keras layers for diffusion U-Nets (they know nothing about diffusion)."""

from keras_ddpm.layers.attention_block import AttentionBlock
from keras_ddpm.layers.down_block import DownBlock
from keras_ddpm.layers.group_normalization import GroupNormalization
from keras_ddpm.layers.pixel_shuffle import PixelShuffle
from keras_ddpm.layers.pixel_unshuffle import PixelUnshuffle
from keras_ddpm.layers.residual_block import ResidualBlock
from keras_ddpm.layers.sinusoidal_embedding import SinusoidalEmbedding
from keras_ddpm.layers.up_block import UpBlock

__all__ = [
    "SinusoidalEmbedding",
    "ResidualBlock",
    "DownBlock",
    "UpBlock",
    "AttentionBlock",
    "GroupNormalization",
    "PixelUnshuffle",
    "PixelShuffle",
]
