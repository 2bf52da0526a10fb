"""Keras' Adam and AdamW on TensorFlow, one `ResourceApplyAdam` kernel per weight.

Keras' TensorFlow `Adam` builds its update of each weight from about twenty
small operations (casts, the βs' powers, the step size, the two moments'
updates, the weight's), so a network's training step holds thousands of
them: each is traced in Python when the step is first compiled and then
dispatched on every step. TensorFlow's `ResourceApplyAdam` kernel makes the
same update in one operation that reads and writes the weight and its two
moments in place, with Keras' formula:

    α = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
    m ← m + (g − m)(1 − β₁),  v ← v + (g² − v)(1 − β₂)
    w ← w − α · m / (√v + ε)

the βs' powers taken in the weight's dtype, as Keras takes them. The kernel
takes 1 − β in the weight's dtype too, where Keras takes it in double before
the product: for float32 weights at Keras' default β₂ = 0.999 the second
moments differ by about 1.3e-5 of themselves (the weights' steps by half
that); where 1 − β float32 holds exactly, the two updates agree to float
rounding. Everything around the update (gradient clipping,
`loss_scale_factor`, AdamW's weight decay, gradient accumulation, the
optimizer's own EMA, constraints, the step counter) stays Keras'. XLA
compiles the kernel as well.
"""

import functools

import keras
import tensorflow as tf

from keras_ddpm.models import trainers

# What the update reads from Keras' optimizer besides its public settings.
_KERAS_STATE = ("_momentums", "_velocities", "_get_variable_index")
# The dtypes the kernel is given: others (float16 weights) keep Keras' update.
_DTYPES = (tf.float32, tf.float64)


def apply(optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)`, with the kernel where it applies.

    It applies when `optimizer` is exactly Keras' own `Adam` or `AdamW`
    (what `keras.optimizers.Adam(...)` and `AdamW(...)` make; no subclass, no
    `LossScaleOptimizer`, no `update_step` of the instance's own) without
    `amsgrad`, outside a `tf.distribute` strategy, and, weight by weight,
    where the weight is float32 or float64 and its gradient dense. Otherwise
    this is `optimizer.apply`, as it is for an optimizer not built yet
    (`fit` builds it before it traces the step; Keras' `apply` builds it).
    The optimizer is left as it was: the route is set for this call only (a
    traced train step keeps what it traced).
    """
    # Keras' TensorFlow optimizer calls `self.update_step` once per weight.
    update = (
        functools.partial(_update_step, optimizer) if _eligible(optimizer) else None
    )
    trainers.apply_with(optimizer, "update_step", update, gradients, variables)


def _eligible(optimizer):
    """Keras' own Adam or AdamW, no hook of its own, no strategy, no `amsgrad`."""
    return (
        type(optimizer) in (keras.optimizers.Adam, keras.optimizers.AdamW)
        and "update_step" not in vars(optimizer)
        and all(hasattr(optimizer, name) for name in _KERAS_STATE)
        and not optimizer.amsgrad
        and not tf.distribute.has_strategy()
    )


def _update_step(optimizer, gradient, variable, learning_rate):
    """Keras' `update_step(gradient, variable, learning_rate)`, in one kernel."""
    dtype = variable.dtype
    if isinstance(gradient, tf.IndexedSlices) or dtype not in _DTYPES:
        return type(optimizer).update_step(optimizer, gradient, variable, learning_rate)
    index = optimizer._get_variable_index(variable)
    step = tf.cast(optimizer.iterations + 1, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=optimizer._momentums[index].handle,
        v=optimizer._velocities[index].handle,
        # As Keras: the powers of the βs cast (a Python float goes through
        # float32), the βs of the moments and epsilon as given.
        beta1_power=tf.pow(tf.cast(optimizer.beta_1, dtype), step),
        beta2_power=tf.pow(tf.cast(optimizer.beta_2, dtype), step),
        lr=tf.cast(learning_rate, dtype),
        beta1=_in(optimizer.beta_1, dtype),
        beta2=_in(optimizer.beta_2, dtype),
        epsilon=_in(optimizer.epsilon, dtype),
        grad=tf.cast(gradient, dtype),
    )


def _in(value, dtype):
    """`value` in `dtype`: a Python float directly, not through float32."""
    return tf.cast(value, dtype) if tf.is_tensor(value) else tf.constant(value, dtype)
