"""The peer baseline: diffusers' `UNet2DModel` trained and sampled at the same sizes.

Skipped, with the reason, unless diffusers and PyTorch are installed
(`pip install -e ".[bench-peers]"`). The peer's training step is timed like
`test_train.py`'s `diffusion_fit` (same image size, batch and images per
round) and its DDIM sampling like `test_sampling.py`'s `ddim` variant (same
batch and steps), so the results page prints keras-ddpm's GFLOP/s over the
peer's, measured in the same run: `report.peer_ratios`.
"""

import harness
import peers
import pytest

REASON = peers.missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def peer(settings):
    """The peer network at the benchmark's sizes, its forward FLOPs and its matmul peak."""
    network = peers.build_network(settings.image_size, settings.widths)
    return {
        "network": network,
        "flops": peers.count_flops(network, settings.image_size),
        # What every peer record says about itself: eager float32 on PyTorch,
        # against PyTorch's own matmul peak.
        "fields": {
            "policy": "float32",
            "jit_compile": False,
            "peak": peers.matmul_peak(),
            "backend": f"diffusers {peers.version()} (torch eager)",
            "parameters": sum(p.numel() for p in network.parameters()),
        },
    }


def test_peer_train(record, settings, peer, peer_batch):
    batch = peer_batch
    run = peers.train_loop(peer["network"])
    images = harness.training_data(settings.image_size, batch * settings.train_steps)
    info = record(
        lambda: run(images, batch),
        kind="train",
        variant="diffusers_fit",
        images=len(images),
        flops=3 * peer["flops"],
        batch=batch,
        **peer["fields"],
        steps_per_round=settings.train_steps,
    )
    assert info["images_per_s"] > 0


def test_peer_sampling(record, settings, peer):
    batch, steps = settings.sample_batch, settings.sampling_steps
    info = record(
        peers.ddim_sampling(peer["network"], settings.image_size, batch, steps),
        kind="sample",
        variant="diffusers_ddim",
        images=batch,
        flops=steps * peer["flops"],
        batch=batch,
        **peer["fields"],
        sampling_steps=steps,
        timed_steps=steps,
    )
    assert info["images_per_s"] > 0
