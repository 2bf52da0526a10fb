"""Retrain the flowers encoder shipped in keras_ddpm/metrics/weights/.

    KERAS_BACKEND=tensorflow python scripts/train_flowers_encoder.py [--output PATH]

Reproducible: fixed seeds, fixed image counts and epochs, TensorFlow with
deterministic ops and a fixed number of threads. Trains on
`synthetic_flowers(8000, 32, seed=1)`, reports the petal-count accuracy and
R² of the attributes on `synthetic_flowers(1000, 32, seed=12345)` (held out),
and writes the weights (0.5 MB). About 3 minutes on 2 idle CPU cores (5 when
they are shared); on one TensorFlow build and CPU it reproduces the weights
bit for bit.
"""

import argparse
import importlib
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if os.environ["KERAS_BACKEND"] != "tensorflow":
    sys.exit("Run this script with KERAS_BACKEND=tensorflow (its results are pinned).")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_ddpm as kd  # noqa: E402

# The module, not the function of the same name that keras_ddpm.metrics exports.
fe = importlib.import_module("keras_ddpm.metrics.flowers")

TRAIN_IMAGES, TRAIN_SEED = 8000, 1
TEST_IMAGES, TEST_SEED = 1000, 12345
EPOCHS, BATCH_SIZE, LEARNING_RATE = 8, 64, 3e-3
# The mean squared error over 26 attributes weighs this much against the
# petal-count cross-entropy; with weight 1 the petal count takes the capacity.
ATTRIBUTES_WEIGHT = 8.0


def load(num_images, seed):
    images, attributes = kd.datasets.synthetic_flowers(
        num_images, fe.TRAINED_SIZE, seed=seed, return_attributes=True
    )
    return images * 2 - 1, fe.flowers_encoder_targets(attributes)


def r2_scores(predicted, target):
    residual = ((predicted - target) ** 2).sum(axis=0)
    total = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    return 1 - residual / total


def evaluate(model, images, targets):
    outputs = model.predict(images, batch_size=256, verbose=0)
    accuracy = float((outputs["petals"].argmax(axis=1) == targets["petals"]).mean())
    return accuracy, r2_scores(outputs["attributes"], targets["attributes"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=fe.WEIGHTS_PATH)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)

    start = time.perf_counter()
    images, targets = load(TRAIN_IMAGES, TRAIN_SEED)
    test_images, test_targets = load(TEST_IMAGES, TEST_SEED)
    print(
        f"rendered {TRAIN_IMAGES + TEST_IMAGES} images in {time.perf_counter() - start:.0f} s"
    )

    model = fe.flowers_encoder(include_top=True, weights=None)
    steps = EPOCHS * (TRAIN_IMAGES // BATCH_SIZE)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)
        ),
        loss={
            "petals": keras.losses.SparseCategoricalCrossentropy(),
            "attributes": keras.losses.MeanSquaredError(),
        },
        loss_weights={"petals": 1.0, "attributes": ATTRIBUTES_WEIGHT},
    )
    dataset = (
        tf.data.Dataset.from_tensor_slices((images, targets))
        .shuffle(TRAIN_IMAGES, seed=0, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE, drop_remainder=True)
    )
    model.fit(dataset, epochs=EPOCHS, verbose=2)

    accuracy, r2 = evaluate(model, test_images, test_targets)
    print(f"held-out petal-count accuracy: {accuracy:.3f}")
    print(f"held-out mean R² of the attributes: {r2.mean():.3f}")
    for name, value in zip(fe.TARGET_NAMES, r2):
        print(f"  R² {name}: {value:.3f}")
    # A copy without the optimizer, whose state would triple the file.
    weights_only = fe.flowers_encoder(include_top=True, weights=None)
    weights_only.set_weights(model.get_weights())
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    weights_only.save_weights(args.output)
    size = os.path.getsize(args.output) / 1e6
    print(f"wrote {args.output} ({size:.2f} MB) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
