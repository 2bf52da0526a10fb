import math
from unittest import mock

import keras
import numpy as np
import pytest

from keras_ddpm.models import pipelines
from tests.helpers import tiny_compiled_model

tf = pytest.importorskip("tensorflow")
BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="Keras wraps arrays in a tf.data pipeline on TensorFlow only",
)


def images(count, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (count, size, size, 3)).astype("float32")


def batches(dataset):
    """Each batch as a tuple of numpy arrays: `(images,)` or `(images, labels)`."""
    return [
        tuple(np.asarray(part) for part in batch)
        if isinstance(batch, tuple)
        else (np.asarray(batch),)
        for batch in dataset
    ]


def autotune(dataset):
    return dataset.options().autotune.enabled


@tensorflow_only
def test_arrays_become_keras_batches_without_autotuning():
    x = images(10)
    labels = np.arange(10, dtype="int32")
    data, y, kwargs = pipelines.fit_data(
        x, labels, {"batch_size": 4, "shuffle": False, "epochs": 2}
    )
    assert y is None and kwargs == {"batch_size": 4, "epochs": 2, "shuffle": False}
    assert autotune(data) is False
    assert int(data.cardinality()) == 3  # 4 + 4 + 2 images, as Keras batches them
    got = batches(data)
    for index, (image_batch, label_batch) in enumerate(got):
        np.testing.assert_array_equal(image_batch, x[4 * index : 4 * index + 4])
        np.testing.assert_array_equal(label_batch, labels[4 * index : 4 * index + 4])


@tensorflow_only
def test_keras_batch_size_rules_and_weights_carry_over():
    x = images(10)
    labels = np.arange(10, dtype="int32")
    weights = np.linspace(0.1, 1.0, 10).astype("float32")
    # No batch size: Keras derives it from the steps per epoch, ceil(10 / 5).
    data, _, kwargs = pipelines.fit_data(
        x, labels, {"steps_per_epoch": 5, "shuffle": False, "sample_weight": weights}
    )
    assert "sample_weight" not in kwargs and kwargs["steps_per_epoch"] == 5
    got = batches(data)
    assert [len(batch[0]) for batch in got] == [2] * 5
    np.testing.assert_allclose(np.concatenate([batch[2] for batch in got]), weights)
    # Keras' debugging cap on the steps sets the derived batch size too.
    previous = keras.config.max_steps_per_epoch()
    keras.config.set_max_steps_per_epoch(2)
    try:
        data, _, kwargs = pipelines.fit_data(
            x, None, {"shuffle": False, "validation_data": images(4)}
        )
    finally:
        keras.config.set_max_steps_per_epoch(previous)
    assert [len(batch[0]) for batch in batches(data)] == [5, 5]
    validation = batches(kwargs["validation_data"])
    assert [len(batch[0]) for batch in validation] == [2, 2]
    # Validation data Keras batches itself still gets fit's batch size.
    _, _, kwargs = pipelines.fit_data(
        x, None, {"batch_size": 8, "validation_data": tf.constant(images(4))}
    )
    assert kwargs["batch_size"] == 8
    # evaluate: in order, Keras' default batch of 32 unless given.
    data, y, kwargs = pipelines.evaluate_data(x, None, {"batch_size": 4})
    assert y is None and autotune(data) is False
    np.testing.assert_array_equal(
        np.concatenate([batch[0] for batch in batches(data)]), x
    )
    assert [len(batch[0]) for batch in batches(data)] == [4, 4, 2]
    data, _, _ = pipelines.evaluate_data(x, None, {})
    assert [len(batch[0]) for batch in batches(data)] == [10]


@tensorflow_only
def test_shuffled_arrays_visit_every_image_once_per_epoch():
    x = images(64)
    data, _, _ = pipelines.fit_data(x, None, {"batch_size": 16})
    for _ in range(2):
        epoch = np.concatenate([batch[0] for batch in batches(data)])
        # Each image once: match every row of the epoch to a row of x.
        rows = [
            int(np.flatnonzero((x == image).all(axis=(1, 2, 3)))[0]) for image in epoch
        ]
        assert sorted(rows) == list(range(64)) and rows != list(range(64))


@tensorflow_only
def test_validation_split_takes_the_last_images_as_keras_does():
    x = images(10)
    data, _, kwargs = pipelines.fit_data(
        x,
        None,
        {"batch_size": 3, "shuffle": False, "validation_split": 0.3},
    )
    assert "validation_split" not in kwargs
    validation = kwargs["validation_data"]
    assert autotune(data) is False and autotune(validation) is False
    train = np.concatenate([batch[0] for batch in batches(data)])
    held_out = np.concatenate([batch[0] for batch in batches(validation)])
    np.testing.assert_array_equal(train, x[:7])  # floor(10 * 0.7)
    np.testing.assert_array_equal(held_out, x[7:])
    assert [len(batch[0]) for batch in batches(validation)] == [3]


@tensorflow_only
def test_validation_arrays_use_the_validation_batch_size():
    x = images(8)
    _, _, kwargs = pipelines.fit_data(
        x,
        None,
        {
            "batch_size": 4,
            "validation_data": images(6, seed=1),
            "validation_batch_size": 5,
        },
    )
    validation = kwargs["validation_data"]
    assert [len(batch[0]) for batch in batches(validation)] == [5, 1]
    assert autotune(validation) is False


@pytest.mark.parametrize("setting", [None, True, False])
def test_a_users_pipeline_loses_autotuning_unless_set(setting):
    dataset = tf.data.Dataset.from_tensor_slices(images(8)).batch(4)
    if setting is not None:
        options = tf.data.Options()
        options.autotune.enabled = setting
        dataset = dataset.with_options(options)
    data, _, _ = pipelines.fit_data(dataset, None, {})
    assert autotune(data) is (False if setting is None else setting)
    data, _, _ = pipelines.evaluate_data(dataset, None, {})
    assert autotune(data) is (False if setting is None else setting)


def test_other_inputs_pass_through_unchanged():
    x = images(8)
    generator = iter([x[:4]])
    assert pipelines.fit_data(generator, None, {})[0] is generator
    if BACKEND != "tensorflow":  # JAX and PyTorch iterate arrays without tf.data
        data, y, kwargs = pipelines.fit_data(x, None, {"batch_size": 4})
        assert data is x and kwargs == {"batch_size": 4}


@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_keras_receives_the_pipelines(call):
    model = tiny_compiled_model()
    dataset = tf.data.Dataset.from_tensor_slices(images(8)).batch(4)
    received = {}

    def spy(self, x=None, y=None, **kwargs):
        received.update(kwargs, x=x)

    with mock.patch.object(keras.Model, call, spy):
        kwargs = {"validation_data": dataset} if call == "fit" else {}
        getattr(model, call)(dataset, **kwargs)
    assert autotune(received["x"]) is False
    if call == "fit":
        assert autotune(received["validation_data"]) is False


def test_fit_on_arrays_with_a_validation_split_trains_every_batch():
    model = tiny_compiled_model()
    steps = []

    class Steps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(self.params["steps"])

    history = model.fit(
        images(20),
        batch_size=4,
        epochs=2,
        validation_split=0.25,
        verbose=0,
        callbacks=[Steps()],
    )
    # 15 training images in batches of 4: 4 steps an epoch, known from the start.
    assert steps == [4, 4]
    assert int(model.optimizer.iterations) == 8
    assert len(history.history["val_loss"]) == 2
    assert math.isfinite(model.evaluate(images(6), batch_size=4, verbose=0))
