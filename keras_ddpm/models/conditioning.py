"""Class labels and classifier-free guidance (Ho & Salimans 2022) for `DiffusionModel`.

A class-conditional network takes a third input, integer labels `(B,)` in
[0, K], where row K of its class embedding is the null label ("no class").
Training replaces each label by the null label with probability
`label_dropout`, so the one network learns both the conditional and the
unconditional prediction; sampling mixes the two,
output = output_null + s · (output_label − output_null), in one batched
network call over the doubled batch.
"""

import keras
import numpy as np
from keras import ops

from keras_ddpm.utils import check_float, check_int


def network_takes_labels(network):
    """Whether `network` has a third input (the class labels)."""
    try:
        return len(network.inputs) >= 3
    except (AttributeError, TypeError, ValueError):
        return False


def check_class_arguments(network, num_classes, label_dropout, class_names):
    """The checks of `DiffusionModel`'s class arguments; returns them normalised."""
    takes_labels = network_takes_labels(network)
    if num_classes is None:
        if takes_labels:
            raise ValueError(
                "`network` takes class labels (a third input): give the model "
                "`num_classes`, the number of classes it was built for."
            )
        if class_names is not None:
            raise ValueError("`class_names` needs `num_classes`.")
        return (
            None,
            check_float("label_dropout", label_dropout, 0.0, 1.0, high_inclusive=False),
            None,
        )
    num_classes = check_int("num_classes", num_classes, low=1)
    if not takes_labels:
        raise ValueError(
            "`num_classes` needs a network that takes labels as a third input, e.g. "
            f"kd.models.build_unet(..., num_classes={num_classes}); this one takes "
            "[images, timesteps]."
        )
    label_dropout = check_float(
        "label_dropout", label_dropout, 0.0, 1.0, high_inclusive=False
    )
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(class_names) != num_classes:
            raise ValueError(
                f"`class_names` must hold {num_classes} names (one per class), got "
                f"{len(class_names)}."
            )
    return num_classes, label_dropout, class_names


def _labels_of(data, num_classes):
    """The labels of a batch, a pair of arrays or a `tf.data` spec, with an integer dtype."""
    if not isinstance(data, (tuple, list)) or len(data) < 2 or data[1] is None:
        raise ValueError(
            f"This model is class-conditional ({num_classes} classes): train it on "
            "(images, labels) batches, e.g. fit(images, labels) or a dataset of pairs."
        )
    labels = data[1]
    dtype = keras.backend.standardize_dtype(
        str(getattr(labels.dtype, "name", labels.dtype))
    )
    if "int" not in dtype:
        raise ValueError(
            f"Expected integer class labels in [0, {num_classes}), got dtype {dtype}."
        )
    return labels


def check_no_labels(data):
    """An unconditional model's data (a batch, arrays or a spec): no labels, or a ValueError."""
    spec = getattr(data, "element_spec", None)
    data = data if spec is None else spec
    if isinstance(data, (tuple, list)) and len(data) >= 2 and data[1] is not None:
        raise ValueError(
            "This model is unconditional and takes images only, got (images, labels): "
            "drop the labels, or build a class-conditional model "
            "(build_unet(num_classes=K) in DiffusionModel(num_classes=K))."
        )


def batch_labels(data, num_classes):
    """The labels of a training batch `(images, labels, ...)` as int32 `(B,)`."""
    labels = _labels_of(data, num_classes)
    return ops.reshape(ops.cast(labels, "int32"), (-1,))


def check_label_data(data, num_classes):
    """Check the labels of arrays or a `tf.data` spec before `fit`/`evaluate` runs."""
    spec = getattr(data, "element_spec", None)
    labels = _labels_of(data if spec is None else spec, num_classes)
    if isinstance(labels, np.ndarray):
        check_label_values(labels, num_classes)


def check_label_values(labels, num_classes):
    """Integer labels in [0, num_classes), or a one-line ValueError."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Class labels must lie in [0, {num_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]."
        )


def drop_labels(labels, num_classes, label_dropout, seed_generator, replica=None):
    """Replace each label by the null label (`num_classes`) with probability `label_dropout`.

    Like the training noise, each replica of a data-parallel step draws for
    the global batch and keeps its slice.
    """
    if label_dropout <= 0.0:
        return labels
    count, index = (1, 0) if replica is None else replica
    batch = ops.shape(labels)[0]
    draws = keras.random.uniform((batch * count,), seed=seed_generator)
    if count > 1:
        draws = ops.take(draws, index * batch + ops.arange(batch), 0)
    return ops.where(draws < label_dropout, num_classes, labels)


def sampling_conditioning(model, labels, guidance_scale, num_images):
    """The conditioning dict of `generate`/`reconstruct` for `labels` and a guidance scale.

    Returns None for an unconditional model without labels; labels become an
    int32 array with one row per image (None: the null label, unconditional),
    and a guidance scale other than 1 a float32 scalar, so that new labels and
    scales reuse the compiled program.
    """
    guidance_scale = check_float("guidance_scale", guidance_scale)
    if model.num_classes is None:
        if labels is not None or guidance_scale != 1.0:
            raise ValueError(
                "This model is unconditional (no `num_classes`): it takes no "
                "`labels` or `guidance_scale`."
            )
        return None
    if labels is None:
        return {"labels": np.full((num_images,), model.num_classes, np.int32)}
    array = np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"`labels` must be an int or integers in [0, {model.num_classes}), got "
            f"dtype {array.dtype}."
        )
    if array.ndim == 0:
        array = np.full((num_images,), int(array))
    if array.shape != (num_images,):
        raise ValueError(
            f"`labels` must be an int or an array of {num_images} labels (one per "
            f"image), got shape {array.shape}."
        )
    check_label_values(array, model.num_classes)
    conditioning = {"labels": array.astype(np.int32)}
    if guidance_scale != 1.0:
        conditioning["guidance_scale"] = np.float32(guidance_scale)
    return conditioning


def guided_output(call, x_t, timesteps, labels, guidance_scale, num_classes):
    """The network's output with classifier-free guidance, in one batched call.

    `call([x, t, labels])` runs the network. Without a guidance scale it is
    called once with `labels`; with one, on the doubled batch (the labels,
    then the null label) and the two halves are mixed as
    null + s · (label − null).
    """
    if guidance_scale is None:
        return ops.cast(call([x_t, timesteps, labels]), "float32")
    batch = ops.shape(x_t)[0]
    null = ops.full(ops.shape(labels), num_classes, dtype="int32")
    both = ops.cast(
        call(
            [
                ops.concatenate([x_t, x_t], axis=0),
                ops.concatenate([timesteps, timesteps], axis=0),
                ops.concatenate([ops.cast(labels, "int32"), null], axis=0),
            ]
        ),
        "float32",
    )
    labelled, unlabelled = both[:batch], both[batch:]
    scale = ops.cast(guidance_scale, "float32")
    return unlabelled + scale * (labelled - unlabelled)
