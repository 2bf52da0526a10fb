"""Keras' Adam and AdamW on PyTorch CPU weights, through PyTorch's fused Adam kernel.

Keras' PyTorch `Adam` updates the weights in ten multi-tensor operations
(`AdamW` adds its weight decay as an eleventh, beforehand), each a pass over
all weights or moments, and on a CPU each of them loops over the tensors one
by one. PyTorch's fused kernel (`torch._fused_adam_`, on CPUs from PyTorch
2.4) makes the same update in one pass per tensor
(`benchmarks/optimizer_update.py` times the two).

The kernel is given Keras' βs, and a learning rate and epsilon that make its
step Keras' step, so the result is Keras' update up to float rounding:
Keras adds epsilon to √v before the bias correction of the second moment
and PyTorch after it, so the kernel is given epsilon / √(1 − β₂ᵗ); Keras'
bias corrections are float32 powers of float32 βs, PyTorch's are in double,
and the learning rate absorbs the difference. Everything around the
update (gradient clipping, `loss_scale_factor`, AdamW's weight decay,
gradient accumulation, the optimizer's own EMA, constraints, the step
counter) stays Keras'. The kernel writes through raw pointers, so the
version counters of the tensors it wrote are raised afterwards, as any
in-place PyTorch operation raises them (the library's `Conv2D` relies on
them to renew its kernel copies).
"""

import functools
import math

import numpy as np
import torch
from keras import ops

from keras_ddpm.models import trainers
from keras_ddpm.utils import torch_compiling

try:
    from keras.src.backend.torch.optimizers import torch_adam, torch_adamw
except ImportError:  # a Keras without its PyTorch optimizers: Keras' path only
    torch_adam = torch_adamw = None

# What the update reads from Keras' optimizer besides its public settings.
_KERAS_STATE = ("_momentums", "_velocities", "_get_variable_index")


def apply(optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)`, with the fused kernel where it applies.

    It applies when `optimizer` is exactly Keras' own PyTorch `Adam` or
    `AdamW` (what `keras.optimizers.Adam(...)` and `AdamW(...)` make on this
    backend; no subclass, no `LossScaleOptimizer`, no `_parallel_update_step`
    of the instance's own) without `amsgrad`, PyTorch has the
    kernel for CPUs, TorchDynamo is not tracing, and the weights, their
    gradients and moments are contiguous float32 CPU tensors. Otherwise
    this is `optimizer.apply`. The optimizer is left as it was: the route is
    set for this call only.
    """
    # Keras' `apply` calls `self._parallel_update_step` for the update itself.
    update = functools.partial(_update, optimizer) if _eligible(optimizer) else None
    trainers.apply_with(
        optimizer, "_parallel_update_step", update, gradients, variables
    )


def _eligible(optimizer):
    """Keras' own PyTorch Adam or AdamW, no hook of its own, and a kernel to run it."""
    return (
        torch_adam is not None
        and type(optimizer) in (torch_adam.Adam, torch_adamw.AdamW)
        and "_parallel_update_step" not in vars(optimizer)
        and not optimizer.amsgrad
        and not torch_compiling()
        and _has_kernel()
    )


def _update(optimizer, grads, variables, learning_rate):
    """Keras' `_parallel_update_step(grads, variables, learning_rate)`, fused."""
    tensors = _tensors(optimizer, grads, variables)
    if tensors is None:
        return torch_adam.Adam._parallel_update_step(
            optimizer, grads, variables, learning_rate
        )
    weights, grads, first, second = tensors
    step = float(ops.convert_to_numpy(optimizer.iterations)) + 1.0
    beta_1, beta_2 = optimizer.beta_1, optimizer.beta_2
    # The kernel divides by 1 − βᵗ in double; Keras' step size uses float32
    # powers of float32 βs, and its epsilon sits before the correction.
    exact = [1.0 - beta_1**step, 1.0 - beta_2**step]
    in_keras = [float(1 - np.float32(b) ** np.float32(step)) for b in (beta_1, beta_2)]
    learning_rate = float(ops.convert_to_numpy(learning_rate))
    torch._fused_adam_(
        weights,
        grads,
        first,
        second,
        [],
        [torch.tensor(step, dtype=torch.float32)] * len(weights),
        lr=learning_rate * exact[0] / in_keras[0] * math.sqrt(in_keras[1] / exact[1]),
        beta1=beta_1,
        beta2=beta_2,
        weight_decay=0.0,  # AdamW's decay is Keras' own, applied before
        eps=optimizer.epsilon / math.sqrt(exact[1]),
        amsgrad=False,
        maximize=False,
    )
    for tensor in weights + first + second:
        torch.autograd.graph.increment_version(tensor)


def _tensors(optimizer, grads, variables):
    """The weights, gradients and both moments; None where the kernel cannot take them."""
    if not all(hasattr(optimizer, name) for name in _KERAS_STATE):
        return None
    weights = [variable.value for variable in variables]
    index = optimizer._get_variable_index
    first = [optimizer._momentums[index(v)].value for v in variables]
    second = [optimizer._velocities[index(v)].value for v in variables]
    grads = list(grads)
    if not _fusable(weights + grads + first + second):
        return None
    return weights, grads, first, second


def _fusable(tensors):
    """All contiguous float32 CPU tensors: the kernel walks each one's memory in order."""
    return all(
        t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous()
        for t in tensors
    )


@functools.cache
def _has_kernel():
    """Whether `torch._fused_adam_` runs on CPU tensors (PyTorch 2.4 and later)."""
    tensors = [[torch.zeros(1, device="cpu")] for _ in range(4)]
    try:
        torch._fused_adam_(
            *tensors,
            [],
            [torch.ones((), device="cpu")],
            lr=0.0,
            beta1=0.9,
            beta2=0.999,
            weight_decay=0.0,
            eps=1e-7,
            amsgrad=False,
            maximize=False,
        )
    except (AttributeError, NotImplementedError, RuntimeError):
        return False
    return True
