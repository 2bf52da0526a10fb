import jax
import keras


def _scope(pairs):
    mapping = [
        (variable, value)
        for variables, values in pairs
        for variable, value in zip(variables, values)
    ]
    return keras.StatelessScope(state_mapping=mapping)


def _current(scope, variables):
    values = []
    for variable in variables:
        value = scope.get_current_value(variable)
        values.append(variable.value if value is None else value)
    return values


def train_step(model, state, data):
    trainable, non_trainable, optimizer_values, metrics_values = state
    images = model._prepare_batch(data)
    model._train_step_traces += 1

    def loss_fn(trainable_values):
        with _scope(
            [
                (model.trainable_variables, trainable_values),
                (model.non_trainable_variables, non_trainable),
                (model.optimizer.variables, optimizer_values),
            ]
        ) as scope:
            loss = model._training_loss(images)
            scaled_loss = model.optimizer.scale_loss(loss)
        return scaled_loss, (loss, _current(scope, model.non_trainable_variables))

    (_, (loss, non_trainable)), gradients = jax.value_and_grad(loss_fn, has_aux=True)(
        trainable
    )
    trainable, optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, gradients, trainable
    )
    with _scope(
        [
            (model.trainable_variables, trainable),
            (model.non_trainable_variables, non_trainable),
            (model.metrics_variables, metrics_values),
        ]
    ) as scope:
        logs = model._after_train_step(loss)
    non_trainable = _current(scope, model.non_trainable_variables)
    metrics_values = _current(scope, model.metrics_variables)
    return logs, (trainable, non_trainable, optimizer_values, metrics_values)


def test_step(model, state, data):
    trainable, non_trainable, metrics_values = state
    images = model._prepare_batch(data)
    with _scope(
        [
            (model.trainable_variables, trainable),
            (model.non_trainable_variables, non_trainable),
            (model.metrics_variables, metrics_values),
        ]
    ) as scope:
        logs = model._validation_logs(images)
    non_trainable = _current(scope, model.non_trainable_variables)
    metrics_values = _current(scope, model.metrics_variables)
    return logs, (trainable, non_trainable, metrics_values)


def compile_sampling(fn, jit_compile):
    return jax.jit(fn) if jit_compile else fn
