"""Where a training step's time goes: keras-ddpm on PyTorch beside diffusers, op by op.

Profiles `--steps` training steps of the throughput suite's network
(`harness.build_network`, `DiffusionModel.fit` as `test_train.py`'s
`diffusion_fit` runs it) and of the peer (`peers.build_network` in its plain
training loop) with `torch.profiler`, after two warm-up epochs each, and sums
the operators' own CPU time into categories: convolutions (forward and
backward), GroupNorm, SiLU, matrix products (dense layers, attention),
concatenation and copies, and everything else elementwise (residual and bias
additions, the optimizer's and the EMA's updates, the loss). Beside them: the
wall time per step measured without the profiler (rounds alternating between
the two), the part of it no operator accounts for (Python, Keras' layer calls,
dispatch; the profiler adds a few microseconds to each operator, so this
estimate is a lower bound) and the convolutions' GFLOP/s (their FLOPs as
`kd.models.count_flops` and `peers.flop_parts` count them, training taken as
three times the forward pass). PyTorch only: both sides then run in the same
framework, and its profiler names every operator:

    KERAS_BACKEND=torch python benchmarks/profile_step.py --image-size 64 \\
        --out benchmarks/results/profile/profile-64-epyc-avx512-cpu-torch.json
"""

import functools

import harness
import peers
import report
from quality import machine, save_records

import keras_ddpm as kd

# Operator name fragments per category, tried in this order; the rest is
# "elementwise and reductions".
CATEGORIES = {
    "convolution": ("convolution", "conv2d"),
    "group norm": ("group_norm",),
    "SiLU": ("silu",),
    "matrix products": ("aten::mm", "aten::bmm", "addmm", "softmax"),
    "concatenation and copies": ("aten::cat", "copy_", "pad", "upsample"),
}
OTHER = "elementwise and reductions"


def category(name):
    for label, fragments in CATEGORIES.items():
        if any(fragment in name for fragment in fragments):
            return label
    return OTHER


def op_times(run, images, batch):
    """Seconds of own CPU time per category over one epoch of `run`, profiled."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run(images, batch)
    totals = {label: 0.0 for label in [*CATEGORIES, OTHER]}
    for event in profiler.key_averages():
        totals[category(event.key)] += event.self_cpu_time_total / 1e6
    return totals


def main(argv=None):
    parser, args = harness.parse_step_arguments(
        argv,
        __doc__.split("\n\n")[0],
        "profiles beside diffusers",
        steps_help="steps per epoch (default: 6)",
        rounds=5,
        rounds_help="timed epochs per side (default: 5)",
    )
    reason = peers.missing()
    if reason:
        parser.error(reason)

    images = harness.training_data(args.image_size, args.batch * args.steps)
    network = harness.build_network(args.image_size, args.widths)
    peer_network = peers.build_network(args.image_size, args.widths)
    runs = {
        "keras-ddpm": harness.diffusion_fit(network, jit_compile=False),
        "diffusers": peers.train_loop(peer_network),
    }
    conv_flops = {
        "keras-ddpm": kd.models.count_flops(network)["conv"],
        "diffusers": peers.flop_parts(peer_network, args.image_size)["conv"],
    }
    for run in runs.values():
        for _ in range(2):
            run(images, args.batch)
    walls = harness.alternating_medians(
        {
            name: functools.partial(run, images, args.batch)
            for name, run in runs.items()
        },
        args.rounds,
    )
    records = {
        "kind": "profile",
        "machine": machine(args.conditions),
        "settings": {
            "image_size": args.image_size,
            "batch": args.batch,
            "widths": args.widths,
            "steps": args.steps,
            "rounds": args.rounds,
            "peer": f"diffusers {peers.version()} (torch eager)",
        },
        "command": harness.script_command("profile_step.py", argv),
        "sides": {},
    }
    for name, run in runs.items():
        ops = op_times(run, images, args.batch)
        per_step = {label: seconds / args.steps for label, seconds in ops.items()}
        wall = walls[name] / args.steps
        conv_gflops = 3 * conv_flops[name] * args.batch / per_step["convolution"] / 1e9
        records["sides"][name] = {
            "wall_ms_per_step": 1e3 * wall,
            "op_ms_per_step": {label: 1e3 * value for label, value in per_step.items()},
            "outside_ops_ms_per_step": 1e3 * max(wall - sum(per_step.values()), 0.0),
            "conv_gflop_per_image_forward": conv_flops[name] / 1e9,
            "conv_gflops": conv_gflops,
        }
    save_records(args.out, records)
    print(report.profile_table(records))


if __name__ == "__main__":
    main()
