"""The 2-D convolution of the library's blocks: `keras.layers.Conv2D` without transposed copies on PyTorch."""

import keras
from keras import layers, ops

from keras_ddpm.utils import torch_compiling


def _same_padding(size, kernel, stride, dilation):
    """TensorFlow's "same" padding of one axis: (before, after).

    Keras refuses a stride and a dilation rate both above 1, so one of them
    is 1 here.
    """
    extent = dilation * (kernel - 1) + 1
    total = max((-(-size // stride) - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="keras_ddpm")
class Conv2D(layers.Conv2D):
    """`keras.layers.Conv2D`, computed on PyTorch from a channels-last view.

    The same layer, arguments, weights and results. Keras' PyTorch backend
    copies each channels-last input into a contiguous channels-first tensor,
    then again into channels-last memory (and pads it, for "same" padding
    that PyTorch cannot express), convolves, copies the output back to
    channels-last, and adds the bias in a pass of its own. The `(B, H, W, C)`
    input permuted to `(B, C, H, W)` already is a channels-last tensor, which
    PyTorch's CPU and cuDNN convolutions take as it is and answer in the same
    layout, so the permutation back is free as well; the bias goes into the
    convolution, which adds it (and sums its gradient) in the same kernel.
    This layer does that for 2-D convolutions with "valid" padding or "same"
    padding of any stride (an uneven "same" padding, as a stride of 2 on an
    even size needs, costs one padded copy); LoRA-enabled layers,
    channels-first data and every other backend use Keras' computation.

    Outside autograd (sampling, `predict`), with float32 weights, the
    kernel's copy in PyTorch's layout is kept and reused while the kernel is
    the same, unmodified tensor (PyTorch counts every in-place change, such
    as an optimizer's update, a weight's `assign` or the EMA's; a write
    through `.data` is not counted, so change weights through Keras), for
    the last two kernels seen: a network's EMA weights (sampling) and its
    training weights then alternate without a copy each. Every denoising
    step would otherwise copy every kernel again. The kept copies, and the
    kernels a stateless call passed, stay in memory until replaced. Under a
    mixed-precision policy each call casts the kernel anew, and copies it.
    """

    # Kernel copies kept per layer outside autograd: EMA and training weights.
    KEPT_KERNELS = 2

    def _fast(self):
        if keras.backend.backend() != "torch" or self.data_format != "channels_last":
            return False
        return not getattr(self, "lora_enabled", False)

    def call(self, inputs):
        if not self._fast():
            return super().call(inputs)
        import torch
        import torch.nn.functional as F

        x = ops.convert_to_tensor(inputs).permute(0, 3, 1, 2)
        w = self._torch_kernel(torch)
        bias = ops.convert_to_tensor(self.bias) if self.use_bias else None
        padding = 0
        if self.padding == "same":
            pads = [
                _same_padding(size, k, s, d)
                for size, k, s, d in zip(
                    x.shape[2:], self.kernel_size, self.strides, self.dilation_rate
                )
            ]
            if all(before == after for before, after in pads):
                padding = [before for before, _ in pads]
            else:
                (top, bottom), (left, right) = pads
                x = F.pad(x, (left, right, top, bottom))
        outputs = F.conv2d(
            x,
            w,
            bias,
            stride=self.strides,
            padding=padding,
            dilation=self.dilation_rate,
            groups=self.groups,
        ).permute(0, 2, 3, 1)
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def _torch_kernel(self, torch):
        """The kernel as `(out, in, kh, kw)` in channels-last memory, as PyTorch takes it.

        Outside autograd, a copy made earlier is reused while the kernel's
        tensor (the variable's, or the one a stateless call gives it) is the
        same object at the same version.
        """
        kernel = ops.convert_to_tensor(self.kernel)
        if (
            torch.is_grad_enabled()
            or self.compute_dtype != self.variable_dtype  # a new cast each call
            or torch_compiling()  # before is_inference, which breaks its graph
            or torch.is_inference(kernel)  # keeps no version count
        ):
            return _torch_layout(kernel, torch)
        kept = self.__dict__.setdefault("_kept_kernels", [])
        version = kernel._version  # before copying: a change meanwhile renews it
        for source, kept_version, copy in kept:
            if source is kernel and kept_version == version:
                return copy
        copy = _torch_layout(kernel, torch)
        kept[:] = [entry for entry in kept if entry[0] is not kernel]
        kept.append((kernel, version, copy))
        del kept[: -self.KEPT_KERNELS]
        return copy


def _torch_layout(kernel, torch):
    """`(kh, kw, in, out)` -> `(out, in, kh, kw)`, stored channels-last."""
    return kernel.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
