"""Per-backend gradient plumbing for `DiffusionModel`; the maths lives in the model.

The trainers call only the model's narrow training interface:
`compute_training_loss(data, replica)`, `compute_validation_loss(data)`,
`update_ema()` and its `loss_tracker`, the way Keras' own trainers call
`compute_loss`.

Each module exposes `train_step`, `test_step` (with the signature Keras expects on
that backend) and `compile_sampling(fn, jit_compile)`, which turns a whole sampling
loop into one program. The PyTorch module also has `compile_step(fn)`, with
which `DiffusionModel` compiles its train, test and predict steps under
`jit_compile=True`.
"""

import importlib

import keras


def get_trainer():
    """The trainer module of the active Keras backend."""
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax", "torch"):
        raise ValueError(
            f"keras-ddpm supports the tensorflow, jax and torch backends, not {backend!r}."
        )
    return importlib.import_module(f"keras_ddpm.models.trainers.{backend}_trainer")


def apply_with(optimizer, name, method, gradients, variables):
    """`optimizer.apply(gradients, variables)` with its method `name` replaced by `method`.

    For this call only: an instance attribute takes precedence over the
    class' method, and is removed afterwards, so the optimizer is left as it
    was (a step traced meanwhile keeps what it traced). A `method` of None
    replaces nothing.
    """
    if method is None:
        optimizer.apply(gradients, variables)
        return
    optimizer.__dict__[name] = method
    try:
        optimizer.apply(gradients, variables)
    finally:
        optimizer.__dict__.pop(name, None)
