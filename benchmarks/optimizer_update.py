"""The optimizer's update on PyTorch: Keras' own path against the library's fused route.

Times, on the throughput suite's network (`harness.build_network`), in one
process and in alternating rounds:

- `AdamW.apply` for all its weights with fixed random gradients, through
  Keras' path (`optimizer.apply`) and through the route `DiffusionModel`'s
  PyTorch training step takes (`torch_fused_adam.apply`: PyTorch's fused
  Adam kernel);
- a `DiffusionModel.fit` step (`harness.diffusion_fit`, as the suite's
  `diffusion_fit` runs it) with the route on, and with it replaced by
  Keras' path.

Medians in milliseconds; PyTorch only:

    KERAS_BACKEND=torch python benchmarks/optimizer_update.py \\
        --out benchmarks/results/fused-adam/update-32-epyc-avx512-slow-cpu-torch.json
"""

import shlex
import sys
from unittest import mock

import harness
import keras
from quality import machine, save_records

SIDES = ("keras", "fused")


def update_times(image_size, widths, rounds):
    """`AdamW.apply` on the network's weights: seconds per call for each side.

    Returns:
        The seconds per side, and the network's weight and parameter counts.
    """
    import torch

    from keras_ddpm.models.trainers import torch_fused_adam

    weights = {side: harness.build_network(image_size, widths) for side in SIDES}
    generator = torch.Generator().manual_seed(0)
    gradients = [
        1e-3 * torch.randn(tuple(w.shape), generator=generator)
        for w in weights["keras"].trainable_weights
    ]
    optimizers = {side: keras.optimizers.AdamW(2e-4) for side in SIDES}
    calls = {
        "keras": lambda: optimizers["keras"].apply(
            gradients, weights["keras"].trainable_weights
        ),
        "fused": lambda: torch_fused_adam.apply(
            optimizers["fused"], gradients, weights["fused"].trainable_weights
        ),
    }
    for call in calls.values():  # builds the optimizers, warms up
        call()
        call()
    network = weights["keras"]
    counts = {
        "weights": len(network.trainable_weights),
        "parameters": int(network.count_params()),
    }
    return harness.alternating_medians(calls, rounds), counts


def fit_step_times(image_size, widths, batch, steps, rounds):
    """Seconds per `fit` step with the fused route and with Keras' path."""
    from keras_ddpm.models.trainers import torch_fused_adam

    images = harness.training_data(image_size, batch * steps)
    runs = {
        side: harness.diffusion_fit(
            harness.build_network(image_size, widths), jit_compile=False
        )
        for side in SIDES
    }

    def keras_path(optimizer, gradients, variables):
        optimizer.apply(gradients, variables)

    def run_keras():
        with mock.patch.object(torch_fused_adam, "apply", keras_path):
            runs["keras"](images, batch)

    epochs = {"keras": run_keras, "fused": lambda: runs["fused"](images, batch)}
    for epoch in epochs.values():
        epoch()
        epoch()
    return {
        side: seconds / steps
        for side, seconds in harness.alternating_medians(epochs, rounds).items()
    }


def main(argv=None):
    _, args = harness.parse_step_arguments(
        argv,
        __doc__.split("\n\n")[0],
        "times the update route",
        steps_help="fit steps per epoch (default: 6)",
        rounds=15,
        rounds_help="timed rounds per side, alternating (default: 15)",
    )

    update, counts = update_times(args.image_size, args.widths, args.rounds)
    step = fit_step_times(
        args.image_size, args.widths, args.batch, args.steps, args.rounds
    )
    records = {
        "kind": "optimizer_update",
        "machine": machine(args.conditions),
        "settings": {
            "image_size": args.image_size,
            "batch": args.batch,
            "widths": args.widths,
            **counts,
            "steps": args.steps,
            "rounds": args.rounds,
        },
        "command": "KERAS_BACKEND=torch python benchmarks/optimizer_update.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "update_ms": {side: 1e3 * update[side] for side in SIDES},
        "fit_step_ms": {side: 1e3 * step[side] for side in SIDES},
    }
    save_records(args.out, records)
    print("| ms, median | Keras' path | fused route |\n|---|---|---|")
    for title, key in (("AdamW.apply", "update_ms"), ("fit step", "fit_step_ms")):
        print(
            f"| {title} | {records[key]['keras']:.1f} | {records[key]['fused']:.1f} |"
        )


if __name__ == "__main__":
    main()
