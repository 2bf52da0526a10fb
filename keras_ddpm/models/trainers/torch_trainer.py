import torch


def train_step(model, data):
    images = model._prepare_batch(data)
    model._train_step_traces += 1
    model.zero_grad()
    loss = model._training_loss(images)
    model.optimizer.scale_loss(loss).backward()
    variables = model.trainable_variables
    gradients = [v.value.grad for v in variables]
    with torch.no_grad():
        model.optimizer.apply(gradients, variables)
        return model._after_train_step(loss.detach())


def test_step(model, data):
    with torch.no_grad():
        return model._validation_logs(model._prepare_batch(data))


def compile_sampling(fn, jit_compile):
    # Keras runs torch eagerly; the loop is a Python loop of torch ops.
    def run(*args):
        with torch.no_grad():
            return fn(*args)

    return run
