"""Late epoch starts: `DiffusionModel.fit` on arrays and pipelines, with and without autotuning.

tf.data's autotuning thread sleeps between rounds, and destroying an
iterator that has not run out waits for it to wake; `fit` destroys one at
each epoch's start. `DiffusionModel.fit` now hands Keras its data with
autotuning off. This script trains one network per side for `--rounds`
epochs of `--steps` steps each, on TensorFlow, one side after the other:

- `arrays`: numpy arrays given to `fit` (Keras' own array pipeline,
  autotuning off since this version);
- `pipeline`: a `tf.data` pipeline of the user's that leaves autotuning
  unset (turned off since this version);
- `autotuned`: the same pipeline with `autotune.enabled = True` set, which
  `fit` keeps: what the side above did before;
- `keras_arrays`: the arrays given to `keras.Model.fit` itself, past
  `DiffusionModel.fit`: Keras' autotuned array pipeline, what the first side
  did before.

Per epoch it records the first call of the train function (which, from the
second epoch on, includes destroying the last epoch's iterator) and the
median call; "late" is their difference, summed over the epochs after the
first, which also compiles. Seconds:

    KERAS_BACKEND=tensorflow python benchmarks/epoch_starts.py --widths 16 32 64 \\
        --batch 8 --steps 240 --rounds 8 \\
        --out benchmarks/results/epoch-starts/epoch-starts-epyc-avx512-slow-cpu-tensorflow.json
"""

import time

import harness
import keras
import numpy as np
from quality import machine, save_records

import keras_ddpm as kd

SIDES = ("arrays", "pipeline", "autotuned", "keras_arrays")
STEPS_PER_CALL = 8  # as the training recipe runs fit


class CallTimes(keras.callbacks.Callback):
    """Seconds of each train-function call, per epoch, counted from the epoch's start."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([time.perf_counter()])

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append(time.perf_counter())


def side_data(side, images, batch):
    """`fit`'s data keywords for `side`."""
    if side in ("arrays", "keras_arrays"):
        return {"x": images, "batch_size": batch}
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images))
    dataset = dataset.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if side == "autotuned":
        options = tf.data.Options()
        options.autotune.enabled = True
        dataset = dataset.with_options(options)
    return {"x": dataset}


def train(side, args):
    """Per-epoch `(late seconds, median call seconds, epoch seconds)` of one side's fit."""
    network = harness.build_network(args.image_size, args.widths)
    model = kd.DiffusionModel(network, seed=0)
    model.compile(
        optimizer=keras.optimizers.AdamW(2e-4),
        jit_compile=False,
        steps_per_execution=STEPS_PER_CALL,
    )
    images = harness.training_data(args.image_size, args.batch * args.steps)
    times = CallTimes()
    fit = keras.Model.fit if side == "keras_arrays" else kd.DiffusionModel.fit
    fit(
        model,
        **side_data(side, images, args.batch),
        epochs=args.rounds,
        verbose=0,
        callbacks=[times],
    )
    epochs = []
    for stamps in times.epochs:
        calls = np.diff(stamps)
        median = float(np.median(calls[1:]))
        epochs.append((float(calls[0] - median), median, stamps[-1] - stamps[0]))
    return epochs


def main(argv=None):
    parser, args = harness.parse_step_arguments(
        argv,
        __doc__.split("\n\n")[0],
        "times epoch starts",
        steps_help="fit steps per epoch (default: 240)",
        rounds=8,
        rounds_help="epochs per side (default: 8)",
        backends=("tensorflow",),
        steps=240,
    )
    if args.steps % STEPS_PER_CALL or args.steps < 2 * STEPS_PER_CALL:
        parser.error(f"--steps must be a multiple of {STEPS_PER_CALL}, at least 16")
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: the first epoch compiles")
    results = {side: train(side, args) for side in SIDES}
    records = {
        "kind": "epoch_starts",
        "machine": machine(args.conditions),
        "settings": {
            "image_size": args.image_size,
            "batch": args.batch,
            "widths": args.widths,
            "steps_per_epoch": args.steps,
            "epochs": args.rounds,
            "steps_per_call": STEPS_PER_CALL,
        },
        "command": harness.script_command("epoch_starts.py", argv),
        "epochs": {
            side: [
                {"late_s": late, "median_call_s": call, "epoch_s": epoch}
                for late, call, epoch in epochs
            ]
            for side, epochs in results.items()
        },
    }
    save_records(args.out, records)
    print(
        "| side | late, summed over epochs 2+ (s) | latest start (s) "
        "| epochs 2+ (s) | median call (s) |\n|---|---|---|---|---|"
    )
    for side, epochs in results.items():
        late = [epoch[0] for epoch in epochs[1:]]
        print(
            f"| {side} | {sum(late):.2f} | {max(late):.2f} "
            f"| {sum(epoch[2] for epoch in epochs[1:]):.1f} "
            f"| {np.median([epoch[1] for epoch in epochs[1:]]):.3f} |"
        )


if __name__ == "__main__":
    main()
