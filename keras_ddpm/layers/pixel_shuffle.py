"""Depth-to-space: each pixel of `p² × C` channels becomes a `p × p` patch of `C` channels."""

import keras
from keras import ops

from keras_ddpm.layers.pixel_unshuffle import PatchLayer


def unpatch_shape(input_shape, patch_size):
    """`(B, h, w, p²·C)` → `(B, h·p, w·p, C)`, or a one-line error."""
    if len(input_shape) != 4:
        raise ValueError(
            f"PixelShuffle expects inputs shaped (batch, height, width, channels), "
            f"got shape {tuple(input_shape)}."
        )
    batch, height, width, depth = input_shape
    if isinstance(depth, int) and depth % patch_size**2:
        raise ValueError(
            f"PixelShuffle needs channels divisible by `patch_size`**2 = "
            f"{patch_size**2}, got {depth}."
        )

    def multiply(size):
        return None if size is None else size * patch_size

    channels = None if depth is None else depth // patch_size**2
    return (batch, multiply(height), multiply(width), channels)


@keras.saving.register_keras_serializable(package="keras_ddpm")
class PixelShuffle(PatchLayer):
    """Unfold the channel axis into `p × p` patches: the inverse of `PixelUnshuffle`.

    `(B, h, w, p²·C)` becomes `(B, h·p, w·p, C)`: channel `(i·p + j)·C + c`
    of pixel `(y, x)` goes to row `y·p + i`, column `x·p + j`, channel `c`
    (TensorFlow's `depth_to_space` order). `PixelShuffle(p)` after
    `kd.layers.PixelUnshuffle(p)` gives back the input exactly. A reshape and
    a transpose: no weights, no arithmetic.

    Args:
        patch_size: int >= 1, the patch side `p`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor `(B, h, w, p²·C)`.

    Returns:
        A tensor of shape `(B, h·p, w·p, C)`.

    Raises:
        ValueError: if `patch_size` is not an int >= 1, or the inputs are not
            4-D or their channels are not divisible by `p²`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    features = np.zeros((2, 16, 16, 12), "float32")
    kd.layers.PixelShuffle(2)(features).shape  # (2, 32, 32, 3)
    ```

    References:
        - [Shi et al., 2016. Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network](https://arxiv.org/abs/1609.05158)
    """

    def call(self, inputs):
        p = self.patch_size
        _, height, width, channels = unpatch_shape(ops.shape(inputs), p)
        return self._swap_patch_axes(
            inputs,
            (-1, height // p, width // p, p, p, channels),
            (-1, height, width, channels),
        )

    def compute_output_shape(self, input_shape):
        return unpatch_shape(tuple(input_shape), self.patch_size)
