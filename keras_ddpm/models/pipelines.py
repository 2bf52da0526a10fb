"""The data `DiffusionModel.fit` and `evaluate` hand to Keras, as pipelines without autotuning.

tf.data's autotuning runs a thread that sleeps between tuning rounds, longer
after each round, and destroying an iterator that has not run out waits for
it to wake (see `keras_ddpm.utils.no_autotune_options`). Keras' `fit`
destroys one at each epoch's start, at each validation's start and when it
ends, so an epoch could start seconds late. Two common inputs reach Keras
as autotuned pipelines, and are handed on with autotuning off:

- a `tf.data.Dataset` of the user's that leaves `autotune.enabled` unset,
  on every backend (JAX and PyTorch iterate it too);
- numpy arrays on TensorFlow, which Keras wraps in a pipeline of its own.
  They become the very pipeline Keras' array adapter would build (the same
  batches, shuffling, weights and validation split), with that one option
  changed.

Other inputs (tensors, generators, a `keras.utils.PyDataset`) go to Keras
as they are.
"""

import keras
import numpy as np

from keras_ddpm.utils import no_autotune_options, without_autotune


def fit_data(x, y, kwargs):
    """`(x, y, kwargs)` of a `fit` call, its data turned into pipelines without autotuning."""
    kwargs = dict(kwargs)
    validation = kwargs.get("validation_data")
    batch_size = kwargs.get("batch_size")
    if _as_arrays(x, y, kwargs.get("sample_weight")):
        split = kwargs.pop("validation_split", 0.0)
        sample_weight = kwargs.pop("sample_weight", None)
        if split and validation is None:
            from keras.src.trainers.data_adapters import array_slicing

            (x, y, sample_weight), validation = array_slicing.train_validation_split(
                (x, y, sample_weight), validation_split=split
            )
        x = _array_pipeline(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            steps=_capped(kwargs.get("steps_per_epoch")),
            shuffle=kwargs.pop("shuffle", True),
            class_weight=kwargs.pop("class_weight", None),
        )
        y = None
        kwargs["shuffle"] = False  # the pipeline shuffles itself
    if validation is not None:
        validation = _validation_pipeline(validation, batch_size, kwargs)
        kwargs["validation_data"] = validation
    return without_autotune(x), y, kwargs


def evaluate_data(x, y, kwargs):
    """`(x, y, kwargs)` of an `evaluate` call, its data turned into a pipeline without autotuning."""
    kwargs = dict(kwargs)
    if _as_arrays(x, y, kwargs.get("sample_weight")):
        x = _array_pipeline(
            x,
            y,
            kwargs.pop("sample_weight", None),
            batch_size=kwargs.get("batch_size"),
            steps=_capped(kwargs.get("steps")),
            shuffle=False,
        )
        y = None
    return without_autotune(x), y, kwargs


def _validation_pipeline(validation, batch_size, kwargs):
    """`validation_data` as a pipeline without autotuning, where Keras would make one."""
    from keras.src.trainers.data_adapters import data_adapter_utils

    if isinstance(validation, (tuple, list)) or _is_array(validation):
        val_x, val_y, val_weight = data_adapter_utils.unpack_x_y_sample_weight(
            validation
        )
        if _as_arrays(val_x, val_y, val_weight):
            return _array_pipeline(
                val_x,
                val_y,
                val_weight,
                batch_size=kwargs.get("validation_batch_size") or batch_size,
                steps=_capped(kwargs.get("validation_steps")),
                shuffle=False,
            )
    return without_autotune(validation)


def _capped(steps):
    """Steps per epoch as Keras' epoch iterators cap them (`keras.config.set_max_steps_per_epoch`)."""
    cap = keras.config.max_steps_per_epoch()
    if cap and (not steps or cap < steps):
        return cap
    return steps


def _is_array(value):
    return isinstance(value, np.ndarray)


def _as_arrays(x, y, sample_weight):
    """Whether Keras' TensorFlow trainer would wrap these numpy arrays in a pipeline."""
    if keras.backend.backend() != "tensorflow" or not _is_array(x):
        return False
    return all(part is None or _is_array(part) for part in (y, sample_weight))


def _array_pipeline(x, y, sample_weight, batch_size, steps, shuffle, class_weight=None):
    """The `tf.data` pipeline Keras' array adapter builds from these arrays, without autotuning.

    Its batches come from a `flat_map`, whose length tf.data cannot know, so
    the pipeline is told the adapter's batch count: `fit`'s progress bar and
    callbacks know an epoch's steps from the first epoch on, as with arrays.
    """
    import tensorflow as tf
    from keras.src.trainers.data_adapters import array_data_adapter

    adapter = array_data_adapter.ArrayDataAdapter(
        x,
        y,
        sample_weight=sample_weight,
        class_weight=class_weight,
        shuffle=shuffle,
        batch_size=batch_size,
        steps=steps,
    )
    dataset = adapter.get_tf_dataset()
    dataset = dataset.apply(
        tf.data.experimental.assert_cardinality(adapter.num_batches)
    )
    return dataset.with_options(no_autotune_options())
