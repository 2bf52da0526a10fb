"""The 2-D convolution of the library's blocks: `keras.layers.Conv2D` without transposed copies on PyTorch."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="keras_ddpm")
class Conv2D(layers.Conv2D):
    """`keras.layers.Conv2D`, computed on PyTorch from a channels-last view.

    The same layer, arguments, weights and results. Keras' PyTorch backend
    copies each channels-last input into a contiguous channels-first tensor,
    then again into channels-last memory, before it convolves. The
    `(B, H, W, C)` input permuted to `(B, C, H, W)` already is a channels-last
    tensor, which PyTorch's CPU and cuDNN convolutions take as it is and answer
    in the same layout, so the permutation back is free as well. This layer
    does that for stride-1 convolutions with odd kernels (symmetric "same"
    padding) or "valid" padding; anything else, and every other backend, uses
    Keras' computation.
    """

    def _fast(self):
        if keras.backend.backend() != "torch" or self.data_format != "channels_last":
            return False
        if self.rank != 2 or any(s != 1 for s in self.strides):
            return False
        if getattr(self, "lora_enabled", False):
            return False
        return self.padding == "valid" or all(k % 2 == 1 for k in self.kernel_size)

    def convolution_op(self, inputs, kernel):
        if not self._fast():
            return super().convolution_op(inputs, kernel)
        import torch
        import torch.nn.functional as F

        x = ops.convert_to_tensor(inputs).permute(0, 3, 1, 2)
        # (kh, kw, in, out) -> (out, in, kh, kw), stored channels-last.
        w = ops.convert_to_tensor(kernel).permute(3, 2, 0, 1)
        w = w.contiguous(memory_format=torch.channels_last)
        padding = 0
        if self.padding == "same":
            padding = [
                d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation_rate)
            ]
        outputs = F.conv2d(
            x,
            w,
            stride=1,
            padding=padding,
            dilation=self.dilation_rate,
            groups=self.groups,
        )
        return outputs.permute(0, 2, 3, 1)
