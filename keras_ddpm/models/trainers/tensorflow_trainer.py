import tensorflow as tf


def _replica():
    """`(replicas, this replica's index)` inside a `tf.distribute` step, else None."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    if replicas == 1 or context is None:
        return None
    return replicas, context.replica_id_in_sync_group


def train_step(model, data):
    images = model._prepare_batch(data)
    model._train_step_traces += 1
    replica = _replica()
    with tf.GradientTape() as tape:
        loss = model._training_loss(images, replica)
        # The optimizer sums the replicas' gradients: each contributes its share
        # of the global mean, as Keras' own train step does.
        share = loss if replica is None else loss / replica[0]
        scaled_loss = model.optimizer.scale_loss(share)
    variables = model.trainable_variables
    gradients = tape.gradient(scaled_loss, variables)
    model.optimizer.apply(gradients, variables)
    return model._after_train_step(loss)


def test_step(model, data):
    return model._validation_logs(model._prepare_batch(data))


def compile_sampling(fn, jit_compile):
    return tf.function(fn, jit_compile=bool(jit_compile))
