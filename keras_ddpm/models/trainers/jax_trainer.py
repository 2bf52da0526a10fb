import jax
import keras


def _stateful(
    model, fn, trainable, non_trainable, metrics_values=None, optimizer_values=None
):
    """Run the model's stateful code `fn()` on explicit variable values.

    Returns `fn()`'s result with the new non-trainable and metrics values, so the
    diffusion maths written once for TensorFlow and PyTorch also serves JAX's
    functional `train_step`.
    """
    pairs = [
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
    ]
    if metrics_values is not None:
        pairs.append((model.metrics_variables, metrics_values))
    if optimizer_values is not None:
        pairs.append((model.optimizer.variables, optimizer_values))
    mapping = [
        (variable, value)
        for variables, values in pairs
        for variable, value in zip(variables, values)
    ]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        result = fn()

    def current(variables):
        values = [scope.get_current_value(v) for v in variables]
        return [
            v.value if value is None else value for v, value in zip(variables, values)
        ]

    metrics = current(model.metrics_variables) if metrics_values is not None else None
    return result, current(model.non_trainable_variables), metrics


def train_step(model, state, data):
    trainable, non_trainable, optimizer_values, metrics_values = state

    def loss_fn(trainable_values):
        def scaled_loss():
            loss = model.compute_training_loss(data)
            return model.optimizer.scale_loss(loss), loss

        (scaled, loss), new_non_trainable, _ = _stateful(
            model,
            scaled_loss,
            trainable_values,
            non_trainable,
            optimizer_values=optimizer_values,
        )
        return scaled, (loss, new_non_trainable)

    (_, (loss, non_trainable)), gradients = jax.value_and_grad(loss_fn, has_aux=True)(
        trainable
    )
    trainable, optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, gradients, trainable
    )

    def finish():
        model.update_ema()
        model.loss_tracker.update_state(loss)
        return model.get_metrics_result()

    logs, non_trainable, metrics_values = _stateful(
        model, finish, trainable, non_trainable, metrics_values
    )
    return logs, (trainable, non_trainable, optimizer_values, metrics_values)


def test_step(model, state, data):
    trainable, non_trainable, metrics_values = state

    def validate():
        model.loss_tracker.update_state(model.compute_validation_loss(data))
        return model.get_metrics_result()

    logs, non_trainable, metrics_values = _stateful(
        model, validate, trainable, non_trainable, metrics_values
    )
    return logs, (trainable, non_trainable, metrics_values)


def compile_sampling(fn, jit_compile):
    return jax.jit(fn) if jit_compile else fn
