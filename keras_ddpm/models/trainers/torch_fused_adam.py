"""Keras' Adam and AdamW on PyTorch CPU weights, through PyTorch's fused Adam kernel.

Keras' PyTorch `Adam` updates the weights in ten multi-tensor operations
(`AdamW` adds its weight decay as an eleventh, beforehand), each a pass over
all weights or moments, and on a CPU each of them loops over the tensors one
by one. PyTorch's fused kernel (`torch._fused_adam_`, on CPUs from PyTorch
2.4) makes the same update in one pass per tensor
(`benchmarks/optimizer_update.py` times the two).

The kernel is given the numbers Keras' update uses, so the result is Keras'
update up to float rounding. Keras adds epsilon to √v before the bias
correction of the second moment, PyTorch after it; the kernel is given
epsilon / √(1 − β₂ᵗ), which makes the two the same. Everything around the
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

from keras_ddpm.utils import torch_compiling

try:
    from keras.src.backend.torch.optimizers import torch_adam
except ImportError:  # a Keras without its PyTorch optimizers: Keras' path only
    torch_adam = None

# What the update reads from Keras' optimizer besides its public settings.
_KERAS_STATE = ("_momentums", "_velocities", "_get_variable_index")


def apply(optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)`, with the fused kernel where it applies.

    It applies when `optimizer` is Keras' own PyTorch `Adam` or `AdamW` (what
    `keras.optimizers.Adam(...)` and `AdamW(...)` make on this backend; not a
    subclass, not a `LossScaleOptimizer`) without `amsgrad`, PyTorch has the
    kernel for CPUs, TorchDynamo is not tracing, and the weights, their
    gradients and moments are contiguous float32 CPU tensors. Otherwise
    this is `optimizer.apply`. The optimizer is left as it was: the route is
    set for this call only.
    """
    if not _eligible(optimizer):
        optimizer.apply(gradients, variables)
        return
    # Keras' `apply` calls `self._parallel_update_step` for the update itself;
    # an instance attribute takes precedence over the class' method.
    optimizer.__dict__["_parallel_update_step"] = functools.partial(_update, optimizer)
    try:
        optimizer.apply(gradients, variables)
    finally:
        optimizer.__dict__.pop("_parallel_update_step", None)


def _eligible(optimizer):
    """Keras' own PyTorch Adam, its update not replaced, and a kernel to run it."""
    if torch_adam is None or not isinstance(optimizer, torch_adam.Adam):
        return False
    keras_update = getattr(torch_adam.Adam, "_parallel_update_step", None)
    return (
        keras_update is not None
        and getattr(type(optimizer), "_parallel_update_step", None) is keras_update
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
    # Keras computes in float32 from float32 βs; 1 − β₂ᵗ is sensitive to that.
    beta_1, beta_2 = (
        float(np.float32(b)) for b in (optimizer.beta_1, optimizer.beta_2)
    )
    torch._fused_adam_(
        weights,
        grads,
        first,
        second,
        [],
        [torch.tensor(step, dtype=torch.float32)] * len(weights),
        lr=float(ops.convert_to_numpy(learning_rate)),
        beta1=beta_1,
        beta2=beta_2,
        weight_decay=0.0,  # AdamW's decay is Keras' own, applied before
        eps=optimizer.epsilon / math.sqrt(1.0 - beta_2**step),
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
