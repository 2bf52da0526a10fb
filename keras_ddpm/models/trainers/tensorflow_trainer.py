import tensorflow as tf


def train_step(model, data):
    images = model._prepare_batch(data)
    model._train_step_traces += 1
    with tf.GradientTape() as tape:
        loss = model._training_loss(images)
        scaled_loss = model.optimizer.scale_loss(loss)
    variables = model.trainable_variables
    gradients = tape.gradient(scaled_loss, variables)
    model.optimizer.apply(gradients, variables)
    return model._after_train_step(loss)


def test_step(model, data):
    return model._validation_logs(model._prepare_batch(data))


def compile_sampling(fn, jit_compile):
    return tf.function(fn, jit_compile=bool(jit_compile))
