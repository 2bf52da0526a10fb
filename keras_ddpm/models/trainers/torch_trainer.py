import torch

from keras_ddpm.models.trainers import torch_fused_adam


def train_step(model, data):
    model.zero_grad()
    loss = model.compute_training_loss(data)
    model.optimizer.scale_loss(loss).backward()
    variables = model.trainable_variables
    gradients = [v.value.grad for v in variables]
    with torch.no_grad():
        torch_fused_adam.apply(model.optimizer, gradients, variables)
        model.update_ema()
        model.loss_tracker.update_state(loss.detach())
        return model.get_metrics_result()


def test_step(model, data):
    with torch.no_grad():
        model.loss_tracker.update_state(model.compute_validation_loss(data))
        return model.get_metrics_result()


def compile_step(fn):
    """`fn` (Keras' plain train, test or predict step) under `torch.compile`, static shapes.

    A new batch shape compiles anew instead of turning the shapes symbolic.
    """
    return torch.compile(fn, dynamic=False)


def compile_sampling(fn, jit_compile):
    # Keras runs torch eagerly; the loop is a Python loop of torch ops.
    def run(*args):
        with torch.no_grad():
            return fn(*args)

    return run
