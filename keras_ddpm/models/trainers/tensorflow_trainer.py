import tensorflow as tf

from keras_ddpm.models.trainers import tensorflow_fused_adam


def _replica():
    """`(replicas, this replica's index)` inside a `tf.distribute` step, else None."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    if replicas == 1 or context is None:
        return None
    return replicas, context.replica_id_in_sync_group


def train_step(model, data):
    replica = _replica()
    with tf.GradientTape() as tape:
        loss = model.compute_training_loss(data, replica)
        # The optimizer sums the replicas' gradients: each contributes its share
        # of the global mean, as Keras' own train step does.
        share = loss if replica is None else loss / replica[0]
        scaled_loss = model.optimizer.scale_loss(share)
    variables = model.trainable_variables
    gradients = tape.gradient(scaled_loss, variables)
    tensorflow_fused_adam.apply(model.optimizer, gradients, variables)
    model.update_ema()
    model.loss_tracker.update_state(loss)
    return model.get_metrics_result()


def test_step(model, data):
    model.loss_tracker.update_state(model.compute_validation_loss(data))
    return model.get_metrics_result()


def compile_sampling(fn, jit_compile):
    return tf.function(fn, jit_compile=bool(jit_compile))
