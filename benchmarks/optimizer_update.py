"""The optimizer's update: Keras' own path against the library's fused route.

Times, on the throughput suite's network (`harness.build_network`), in one
process and in alternating rounds:

- `AdamW.apply` for all its weights with fixed random gradients, through
  Keras' path (`optimizer.apply`) and through the route `DiffusionModel`'s
  training step takes: on PyTorch `torch_fused_adam.apply` (PyTorch's fused
  Adam kernel), on TensorFlow `tensorflow_fused_adam.apply` (one
  `ResourceApplyAdam` kernel per weight), there inside a `tf.function`, as
  a training step runs it;
- a `DiffusionModel.fit` step (`harness.diffusion_fit`, as the suite's
  `diffusion_fit` runs it) with the route on, and with it replaced by
  Keras' path;
- the first `fit` epoch of each, which on TensorFlow traces and compiles
  the step (after a third network's, which takes what the process pays
  once).

Medians in milliseconds (the first epochs in seconds); PyTorch or
TensorFlow:

    KERAS_BACKEND=torch python benchmarks/optimizer_update.py \\
        --out benchmarks/results/fused-adam/update-32-epyc-avx512-slow-cpu-torch.json
"""

import importlib
import time
from unittest import mock

import harness
import keras
import numpy as np
from quality import machine, save_records

SIDES = ("keras", "fused")
ROUTES = {"torch": "torch_fused_adam", "tensorflow": "tensorflow_fused_adam"}


def route():
    """The backend's update route module."""
    module = ROUTES[keras.backend.backend()]
    return importlib.import_module(f"keras_ddpm.models.trainers.{module}")


def keras_path(optimizer, gradients, variables):
    optimizer.apply(gradients, variables)


def update_times(image_size, widths, rounds):
    """`AdamW.apply` on the network's weights: seconds per call for each side.

    Returns:
        The seconds per side, and the network's weight and parameter counts.
    """
    fused = route()
    weights = {side: harness.build_network(image_size, widths) for side in SIDES}
    rng = np.random.default_rng(0)
    gradients = [
        keras.ops.convert_to_tensor(1e-3 * rng.normal(size=w.shape), "float32")
        for w in weights["keras"].trainable_weights
    ]
    optimizers = {side: keras.optimizers.AdamW(2e-4) for side in SIDES}
    applies = {"keras": keras_path, "fused": fused.apply}

    def call(side):
        def update():
            applies[side](optimizers[side], gradients, weights[side].trainable_weights)

        if keras.backend.backend() == "tensorflow":  # as a training step runs it
            import tensorflow as tf

            return tf.function(update)
        return update

    calls = {side: call(side) for side in SIDES}
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
    """Seconds per `fit` step with the fused route and with Keras' path.

    Returns:
        The seconds per step per side, and each side's first epoch in
        seconds (on TensorFlow: tracing and compiling the step, then it).
    """
    fused = route()
    images = harness.training_data(image_size, batch * steps)
    runs = {
        side: harness.diffusion_fit(
            harness.build_network(image_size, widths), jit_compile=False
        )
        for side in SIDES
    }

    def run_keras():  # TensorFlow traces Keras' path into the step
        with mock.patch.object(fused, "apply", keras_path):
            runs["keras"](images, batch)

    epochs = {"keras": run_keras, "fused": lambda: runs["fused"](images, batch)}
    # A third network's first epoch takes what a process pays once (on
    # TensorFlow, setting up its graph optimizer and kernels), so that it
    # falls on neither side.
    harness.diffusion_fit(harness.build_network(image_size, widths), False)(
        images, batch
    )
    first = {}
    for side, epoch in epochs.items():
        start = time.perf_counter()
        epoch()
        first[side] = time.perf_counter() - start
        epoch()
    medians = harness.alternating_medians(epochs, rounds)
    return {side: seconds / steps for side, seconds in medians.items()}, first


def main(argv=None):
    _, args = harness.parse_step_arguments(
        argv,
        __doc__.split("\n\n")[0],
        "times the update route",
        steps_help="fit steps per epoch (default: 6)",
        rounds=15,
        rounds_help="timed rounds per side, alternating (default: 15)",
        backends=tuple(ROUTES),
    )

    update, counts = update_times(args.image_size, args.widths, args.rounds)
    step, first = fit_step_times(
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
        "command": harness.script_command("optimizer_update.py", argv),
        "update_ms": {side: 1e3 * update[side] for side in SIDES},
        "fit_step_ms": {side: 1e3 * step[side] for side in SIDES},
        "first_epoch_s": first,
    }
    save_records(args.out, records)
    print("| ms, median | Keras' path | fused route |\n|---|---|---|")
    for title, key in (("AdamW.apply", "update_ms"), ("fit step", "fit_step_ms")):
        print(
            f"| {title} | {records[key]['keras']:.1f} | {records[key]['fused']:.1f} |"
        )
    print(f"| first epoch, s | {first['keras']:.1f} | {first['fused']:.1f} |")


if __name__ == "__main__":
    main()
