"""Training throughput: `DiffusionModel.fit` against a bare step of the same network.

A training step counts as 3 forward passes of FLOPs (forward, and the two
products of the backward pass).
"""

import harness
import pytest


@pytest.mark.parametrize("variant", ["diffusion_fit", "bare_fit"])
def test_train(record, settings, flops_per_image, variant, batch, policy, jit_compile):
    with harness.dtype_policy(policy):
        network = harness.build_network(settings.image_size, settings.widths)
        make = harness.diffusion_fit if variant == "diffusion_fit" else harness.bare_fit
        fit = make(network, jit_compile)
    images = harness.training_data(settings.image_size, batch * settings.train_steps)
    info = record(
        lambda: fit(images, batch),
        kind="train",
        variant=variant,
        images=len(images),
        flops=3 * flops_per_image(settings.image_size),
        policy=policy,
        jit_compile=jit_compile,
        batch=batch,
        steps_per_round=settings.train_steps,
    )
    assert info["images_per_s"] > 0
