"""Space-to-depth: each `p × p` patch of an image becomes one pixel of `p² × C` channels."""

import keras
from keras import ops

from keras_ddpm.utils import check_int


def patch_shape(input_shape, patch_size):
    """`(B, H, W, C)` → `(B, H/p, W/p, p²·C)`, or a one-line error for sizes not divisible by p."""
    if len(input_shape) != 4:
        raise ValueError(
            f"PixelUnshuffle expects images shaped (batch, height, width, channels), "
            f"got shape {tuple(input_shape)}."
        )
    batch, height, width, channels = input_shape
    for name, size in (("height", height), ("width", width)):
        if isinstance(size, int) and size % patch_size:
            raise ValueError(
                f"Image {name} {size} is not divisible by `patch_size` = {patch_size}."
            )

    def divide(size):
        return None if size is None else size // patch_size

    depth = None if channels is None else channels * patch_size**2
    return (batch, divide(height), divide(width), depth)


class PatchLayer(keras.layers.Layer):
    """The common part of `PixelUnshuffle` and `PixelShuffle`: a checked `patch_size`."""

    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = check_int("patch_size", patch_size, low=1)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}

    @staticmethod
    def _swap_patch_axes(x, split, merged):
        """Reshape to 6-D `split`, swap axes 2 and 3 (its own inverse), reshape to `merged`."""
        x = ops.transpose(ops.reshape(x, split), (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, merged)


@keras.saving.register_keras_serializable(package="keras_ddpm")
class PixelUnshuffle(PatchLayer):
    """Fold each `p × p` patch of channels-last images into the channel axis.

    `(B, H, W, C)` becomes `(B, H/p, W/p, p²·C)`: output pixel `(y, x)` holds
    the input's patch of rows `y·p … y·p + p − 1` and columns
    `x·p … x·p + p − 1`, with channel `(i·p + j)·C + c` taken from row offset
    `i`, column offset `j` and channel `c` (the order of TensorFlow's
    `space_to_depth`; PyTorch's `pixel_unshuffle` orders channels first). A
    reshape and a transpose: no weights, no arithmetic. A U-Net that starts
    with it works at `1/p` of the resolution, at about `1/p²` of the cost per
    layer of the same width (`kd.models.build_unet(patch_size=2)`);
    `kd.layers.PixelShuffle` undoes it.

    Args:
        patch_size: int >= 1, the patch side `p`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: images `(B, H, W, C)`, with `H` and `W` divisible by `p`.

    Returns:
        A tensor of shape `(B, H/p, W/p, p²·C)`.

    Raises:
        ValueError: if `patch_size` is not an int >= 1, or the inputs are not
            4-D or their height or width is not divisible by it.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    images = np.zeros((2, 32, 32, 3), "float32")
    kd.layers.PixelUnshuffle(2)(images).shape  # (2, 16, 16, 12)
    ```

    References:
        - [Shi et al., 2016. Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network](https://arxiv.org/abs/1609.05158)
    """

    def call(self, inputs):
        p = self.patch_size
        _, height, width, channels = patch_shape(ops.shape(inputs), p)
        return self._swap_patch_axes(
            inputs,
            (-1, height, p, width, p, channels // (p * p)),
            (-1, height, width, channels),
        )

    def compute_output_shape(self, input_shape):
        return patch_shape(tuple(input_shape), self.patch_size)
