"""Sampling throughput: the compiled DDPM loop against bare network calls and an eager loop.

Each variant runs `sampling_steps` steps on a batch; a sampled image costs one
forward pass of FLOPs per network evaluation (`sampling_steps`, and
2·steps − 1 for Heun). The variants named after a sampler run the same
compiled loop with that sampler, so their GFLOP/s against `ddim`'s is their
cost per evaluation against DDIM's.
"""

import harness
import pytest

VARIANTS = ["compiled", "bare_calls", "eager", "ddim", "dpm_solver", "heun"]
SAMPLERS = {
    "ddim": "ddim",
    "dpm_solver": {"name": "dpm_solver", "order": 3},
    "heun": "heun",
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_sampling(record, settings, flops_per_image, variant, policy, jit_compile):
    if variant == "eager" and settings.skip_eager:
        pytest.skip("--skip-eager")
    batch, steps = settings.sample_batch, settings.sampling_steps
    eager_steps = min(settings.eager_steps or steps, steps)
    with harness.dtype_policy(policy):
        network = harness.build_network(settings.image_size, settings.widths)
        model = harness.sampling_model(network, steps, jit_compile)
        run = {
            "compiled": lambda: harness.compiled_sampling(model, batch),
            "bare_calls": lambda: harness.bare_network_calls(model, batch, steps),
            "eager": lambda: harness.eager_loop(model, batch, eager_steps),
        }.get(
            variant,
            lambda: harness.compiled_sampling(model, batch, SAMPLERS.get(variant)),
        )()
    # A truncated eager loop counts as the fraction of an image it made.
    done = batch * (eager_steps / steps if variant == "eager" else 1)
    evaluations = 2 * steps - 1 if variant == "heun" else steps
    info = record(
        run,
        kind="sample",
        variant=variant,
        images=done,
        flops=evaluations * flops_per_image(settings.image_size),
        policy=policy,
        jit_compile=jit_compile,
        batch=batch,
        sampling_steps=steps,
        timed_steps=eager_steps if variant == "eager" else steps,
    )
    assert info["images_per_s"] > 0
