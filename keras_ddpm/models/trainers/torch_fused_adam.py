"""Keras' Adam and AdamW on PyTorch CPU weights, through PyTorch's fused Adam kernel.

Keras' PyTorch `Adam` (and `AdamW`, which adds its weight decay beforehand)
updates the weights in eleven multi-tensor operations, each a pass over all
weights or moments, and on a CPU each of those loops over the tensors one by
one. PyTorch's fused kernel (`torch._fused_adam_`, on CPUs from PyTorch 2.4)
makes the same update in one pass per tensor. For the 224 weights of a
4.1 M-parameter U-Net on two CPU cores, Keras' update took 19.5 ms a step and
the kernel 3.0 ms.

The kernel is given the same numbers Keras' update uses, so the result is
Keras' update up to float rounding. Keras adds epsilon to √v before the bias
correction of the second moment, PyTorch after it; the kernel is given
epsilon / √(1 − β₂ᵗ), which makes the two the same. Everything around the
update (gradient clipping, loss scaling, weight decay, gradient accumulation,
the optimizer's own EMA, the step counter) stays Keras'.
"""

import math

import torch
from keras import ops

from keras_ddpm.utils import torch_compiling

try:
    from keras.src.backend.torch.optimizers import torch_adam
except ImportError:  # a Keras without its PyTorch optimizers: Keras' path only
    torch_adam = None

_KERNEL = []  # [bool] once probed: whether this PyTorch has the kernel for CPUs


def apply(optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)`, with the fused kernel where it applies.

    It applies when `optimizer` is Keras' own PyTorch `Adam` or `AdamW` (not
    a subclass that changes the update) without `amsgrad`, the weights are
    float32 on the CPU, PyTorch has the kernel for CPUs and TorchDynamo is not
    tracing. Otherwise this is `optimizer.apply`. The optimizer is left as it
    was: the route is set for this call only.
    """
    if not _eligible(optimizer):
        optimizer.apply(gradients, variables)
        return
    # Keras' `apply` calls `self._parallel_update_step` for the update itself;
    # an instance attribute takes precedence over the class' method.
    optimizer.__dict__["_parallel_update_step"] = _Update(optimizer)
    try:
        optimizer.apply(gradients, variables)
    finally:
        del optimizer.__dict__["_parallel_update_step"]


def _eligible(optimizer):
    return (
        torch_adam is not None
        and isinstance(optimizer, torch_adam.Adam)
        and type(optimizer)._parallel_update_step
        is torch_adam.Adam._parallel_update_step
        and not optimizer.amsgrad
        and not torch_compiling()
        and _has_kernel()
    )


class _Update:
    """Keras' `_parallel_update_step(grads, variables, learning_rate)`, fused."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def __call__(self, grads, variables, learning_rate):
        optimizer = self.optimizer
        weights = [variable.value for variable in variables]
        if not _cpu_float32(weights) or not _cpu_float32(grads):
            return torch_adam.Adam._parallel_update_step(
                optimizer, grads, variables, learning_rate
            )
        index = optimizer._get_variable_index
        first = [optimizer._momentums[index(v)].value for v in variables]
        second = [optimizer._velocities[index(v)].value for v in variables]
        step = float(ops.convert_to_numpy(optimizer.iterations)) + 1.0
        beta_2 = float(optimizer.beta_2)
        step_tensor = torch.tensor(step, dtype=torch.float32)
        torch._fused_adam_(
            weights,
            list(grads),
            first,
            second,
            [],
            [step_tensor] * len(weights),
            lr=float(ops.convert_to_numpy(learning_rate)),
            beta1=float(optimizer.beta_1),
            beta2=beta_2,
            weight_decay=0.0,  # AdamW's decay is Keras' own, applied before
            eps=optimizer.epsilon / math.sqrt(1.0 - beta_2**step),
            amsgrad=False,
            maximize=False,
        )


def _cpu_float32(tensors):
    return all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors)


def _has_kernel():
    """Whether `torch._fused_adam_` runs on CPU tensors (PyTorch 2.4 and later)."""
    if not _KERNEL:
        weight, grad = torch.zeros(1), torch.ones(1)
        moments = [torch.zeros(1)], [torch.zeros(1)]
        try:
            torch._fused_adam_(
                [weight],
                [grad],
                *moments,
                [],
                [torch.ones(())],
                lr=0.0,
                beta1=0.9,
                beta2=0.999,
                weight_decay=0.0,
                eps=1e-7,
                amsgrad=False,
                maximize=False,
            )
            _KERNEL.append(True)
        except (AttributeError, NotImplementedError, RuntimeError):
            _KERNEL.append(False)
    return _KERNEL[0]
