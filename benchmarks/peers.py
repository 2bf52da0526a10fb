"""The peer the throughput benchmarks compare with: diffusers' `UNet2DModel` on PyTorch.

The peer network mirrors the benchmarked `build_unet`: the same widths, two
residual blocks per level, no attention (down, middle or up), GroupNorm with 8
groups and a time embedding of 4 × the first width. Its training step is the
plain loop of diffusers' unconditional training example without EMA (random
timesteps, `DDPMScheduler.add_noise`, ε-MSE, AdamW at the same learning rate),
and its sampling is `DDIMScheduler` over the same number of steps, as
`DDIMPipeline` runs it. Both run in PyTorch's eager mode, on the CPU or the
first CUDA device, in float32, whatever `KERAS_BACKEND` is.

FLOPs are counted the way `kd.models.count_flops` counts the library's network,
so GFLOP/s compare like with like: PyTorch's `FlopCounterMode` for convolutions
and matrix products (2 per multiply-add), plus 1 per output for biases and 8 per
element for each GroupNorm, counted by forward hooks.
"""

import importlib.util


def missing():
    """Why the peer cannot run here, or None when diffusers and PyTorch import."""
    for module in ("torch", "diffusers"):
        if importlib.util.find_spec(module) is None:
            return (
                f"{module} is not installed: pip install -e '.[bench-peers]' "
                "to compare with diffusers"
            )
    return None


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def version():
    import diffusers

    return diffusers.__version__


def build_network(image_size, widths):
    """diffusers' `UNet2DModel` shaped like `harness.build_network(image_size, widths)`."""
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    levels = len(widths)
    network = UNet2DModel(
        sample_size=image_size,
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(widths),
        layers_per_block=2,
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
        add_attention=False,
        norm_num_groups=8,
    )
    return network.to(device())


def count_flops(network, image_size):
    """Forward FLOPs of one image through `network`, counted like `kd.models.count_flops`."""
    return flop_parts(network, image_size)["total"]


def flop_parts(network, image_size):
    """Forward FLOPs of one image: `"total"` and the convolutions' part, `"conv"` (biases included)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    extra = {"conv": 0, "other": 0}

    def norm_hook(module, args, output):
        extra["other"] += 8 * args[0].numel()

    def bias_hook(module, args, output):
        if getattr(module, "bias", None) is not None:
            part = "conv" if isinstance(module, torch.nn.Conv2d) else "other"
            extra[part] += output.numel()

    hooks = []
    for module in network.modules():
        if isinstance(module, torch.nn.GroupNorm):
            hooks.append(module.register_forward_hook(norm_hook))
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            hooks.append(module.register_forward_hook(bias_hook))
    x = torch.zeros(1, 3, image_size, image_size, device=device())
    t = torch.zeros(1, device=device())
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            network(x, t)
    finally:
        for hook in hooks:
            hook.remove()
    conv = counter.get_flop_counts()["Global"].get(torch.ops.aten.convolution, 0)
    return {
        "total": counter.get_total_flops() + extra["conv"] + extra["other"],
        "conv": conv + extra["conv"],
    }


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def train_loop(network, learning_rate=2e-4):
    """`run(images, batch)`: one epoch of the plain ε-MSE loop over NHWC numpy images."""
    import torch
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate)
    generator = torch.Generator(device()).manual_seed(0)
    network.train()

    def run(images, batch):
        data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device())
        for start in range(0, len(data), batch):
            clean = data[start : start + batch]
            noise = torch.randn(clean.shape, generator=generator, device=clean.device)
            timesteps = torch.randint(
                0, 1000, (len(clean),), generator=generator, device=clean.device
            )
            noisy = scheduler.add_noise(clean, noise, timesteps)
            loss = torch.nn.functional.mse_loss(network(noisy, timesteps).sample, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync()

    return run


def ddim_sampling(network, image_size, batch, steps):
    """`run()`: `batch` images by DDIM over `steps` steps, as `DDIMPipeline` does it."""
    import torch
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(steps)
    generator = torch.Generator(device()).manual_seed(0)
    network.eval()

    def run():
        x = torch.randn(
            (batch, 3, image_size, image_size), generator=generator, device=device()
        )
        with torch.no_grad():
            for t in scheduler.timesteps:
                x = scheduler.step(network(x, t).sample, t, x).prev_sample
        sync()

    return run


def matmul_peak(size=2048, repeats=10, trials=3):
    """Best GFLOP/s of chained float32 n×n matmuls in PyTorch, the peer's own peak."""
    import time

    import torch

    generator = torch.Generator().manual_seed(0)
    a = (torch.randn(size, size, generator=generator) / size**0.5).to(device())
    b = (torch.randn(size, size, generator=generator) / size**0.5).to(device())
    torch.matmul(a, b)
    sync()
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        c = a
        for _ in range(repeats):
            c = torch.matmul(c, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9
