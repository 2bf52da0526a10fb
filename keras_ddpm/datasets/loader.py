"""`load()`: image datasets as batched `tf.data` pipelines of float32 in [-1, 1]."""

import os
import warnings

import numpy as np

from keras_ddpm.datasets.synthetic_flowers import (
    FLOWER_COLOURS,
    _render_range,
    flower_colour,
)
from keras_ddpm.utils import (
    check_choice,
    check_float,
    check_image_size,
    check_int,
    no_autotune_options,
)

SPLITS = ("train", "validation", "all")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SYNTHETIC_SIZE = 4096
# The seed project's datasets (all their official splits pooled, then re-split
# 80/20): their image and class-label features (102 species, 37 breeds).
KNOWN_TFDS = {
    "oxford_flowers102": ("image", "label"),
    "oxford_iiit_pet": ("image", "label"),
}


def _tf():
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(
            "keras_ddpm.datasets builds tf.data pipelines and needs TensorFlow: "
            'pip install "keras-ddpm[datasets]" tensorflow-cpu'
        ) from error
    return tf


def _split_range(count, split, validation_fraction):
    cut = int(round(count * (1.0 - validation_fraction)))
    return {"train": (0, cut), "validation": (cut, count), "all": (0, count)}[split]


def _check_arguments(split, validation_fraction, batch_size, channels):
    """Return `validation_fraction` and `batch_size` as Python numbers, checked."""
    check_choice("split", split, SPLITS)
    validation_fraction = check_float(
        "validation_fraction", validation_fraction, 0.0, 1.0, high_inclusive=False
    )
    if split == "validation" and validation_fraction == 0:
        raise ValueError("split='validation' needs `validation_fraction` > 0.")
    batch_size = check_int("batch_size", batch_size, low=1)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(
            f"`channels` must be 1 (grayscale) or 3 (RGB), got {channels!r}."
        )
    return validation_fraction, batch_size


def preprocess(image, image_size, channels=3):
    """Central crop to the target aspect ratio, antialiased resize, scale to [-1, 1].

    Args:
        image: uint8 tensor `(H, W, C)` with C in {1, 2, 3, 4} (gray, gray+alpha,
            RGB, RGBA; alpha is dropped).
        image_size: `(height, width)` of the result.
        channels: 1 or 3.

    Returns:
        float32 tensor `(height, width, channels)` in [-1, 1].

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    image = np.zeros((48, 64, 4), np.uint8)  # RGBA, wider than tall
    kd.datasets.preprocess(image, (32, 32)).shape  # TensorShape([32, 32, 3])
    ```
    """
    tf = _tf()
    image = tf.convert_to_tensor(image)
    depth = tf.shape(image)[-1]
    image = tf.cond(
        depth >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3])
    )
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    height, width = image_size
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = tf.minimum(h / height, w / width)
    crop_h = tf.cast(tf.round(scale * height), tf.int32)
    crop_w = tf.cast(tf.round(scale * width), tf.int32)
    image = tf.image.crop_to_bounding_box(
        image, (shape[0] - crop_h) // 2, (shape[1] - crop_w) // 2, crop_h, crop_w
    )
    image = tf.image.resize(
        tf.cast(image, tf.float32), (height, width), method="area", antialias=True
    )
    image = tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)
    image.set_shape((height, width, channels))
    return image


def _images_from_array(array):
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"An image array must have shape (N, H, W, C) with C in 1..4, got {array.shape}."
        )
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"An image array must be uint8 (0..255) or float in [0, 1], got dtype {array.dtype}."
        )
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise ValueError(
            "A float image array must hold finite values in [0, 1], got values in "
            f"[{np.nanmin(array):.3g}, {np.nanmax(array):.3g}]; pass uint8 or rescale it."
        )
    return np.round(array * 255).astype(np.uint8)


def _image_files(folder):
    """The image files under `folder`, sorted, by their names alone."""
    files = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise ValueError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under folder {folder!r}."
        )
    return files


def _folder_files(folder):
    """The image files under `folder` that PIL can read, warning of the others."""
    files = _image_files(folder)
    from PIL import Image

    readable = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.verify()
            readable.append(path)
        except Exception as error:  # PIL raises many types for corrupt files
            warnings.warn(f"Skipping unreadable image {path}: {error}", stacklevel=3)
    if not readable:
        raise ValueError(
            f"None of the {len(files)} image files under {folder!r} could be read."
        )
    return readable


def _check_dataset_name(source):
    """Refuse a string that is not a folder but names a path, not a dataset."""
    if os.path.sep in str(source) or os.path.exists(source):
        raise ValueError(f"{str(source)!r} is not a folder of images.")


def training_images(source, num_images=None, labels=False, validation_fraction=0.2):
    """How many images `load(source, split="train", ...)` holds, where that is
    known without starting TensorFlow or reading an image; else None.

    Known for synthetic flowers and for a folder (by its files' names; an
    unreadable file found later makes one fewer). The source itself is
    checked as `load` checks it, so a training run can fail on it before it
    spends time on anything else.

    Raises:
        ValueError: as `load` does for a folder without images, a folder
            without class sub-folders under `labels=True`, or a path that
            is not a folder.
    """
    num_images = check_int("num_images", num_images, low=1, allow_none=True)
    if not isinstance(source, (str, os.PathLike)):
        return None
    if str(source) == "synthetic_flowers":
        count = SYNTHETIC_SIZE if num_images is None else num_images
        num_images = None  # the size itself, not a cap
    elif os.path.isdir(source):
        files = _image_files(os.fspath(source))
        if labels:
            _folder_classes(os.fspath(source), files)
        count = len(files)
    else:
        _check_dataset_name(source)
        return None  # a TFDS name: known once it is read
    start, stop = _split_range(count, "train", validation_fraction)
    return stop - start if num_images is None else min(stop - start, num_images)


def _folder_classes(folder, files):
    """Class names (the sorted sub-folders holding images) and each file's label."""
    parts = [os.path.relpath(path, folder).split(os.sep) for path in files]
    loose = [os.path.join(*p) for p in parts if len(p) == 1]
    if loose:
        raise ValueError(
            f"labels=True reads one class per sub-folder of {folder!r}, but "
            f"{len(loose)} images lie in the folder itself (e.g. {loose[0]!r}); "
            "move them into a class folder."
        )
    names = sorted({p[0] for p in parts})
    index = {name: k for k, name in enumerate(names)}
    return tuple(names), np.array([index[p[0]] for p in parts], np.int32)


def _folder_dataset(tf, files, channels, labels=None):
    def decode(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=0, expand_animations=False
        )
        return tf.ensure_shape(image, (None, None, None))

    dataset = tf.data.Dataset.from_tensor_slices(files).map(
        decode, num_parallel_calls=tf.data.AUTOTUNE
    )
    if labels is not None:
        dataset = tf.data.Dataset.zip(
            dataset, tf.data.Dataset.from_tensor_slices(labels)
        )
    return dataset.ignore_errors(log_warning=True)


def tfds_split(official_splits, split, validation_fraction):
    """The TFDS split string that pools all official splits, then takes our part.

    Example: `("train", "test")`, `"train"`, `0.2` → `"test[:80%]+train[:80%]"`.
    """
    percent = int(round(100 * (1 - validation_fraction)))
    part = {"train": f"[:{percent}%]", "validation": f"[{percent}%:]", "all": ""}[split]
    return "+".join(f"{name}{part}" for name in sorted(official_splits))


def _feature_key(tfds, name, features, kind, preferred):
    """The key of `name`'s `kind` feature: `preferred` if it is one, else the first."""
    if preferred in features.keys() and isinstance(features[preferred], kind):
        return preferred
    key = next((k for k, f in features.items() if isinstance(f, kind)), None)
    if key is None:
        raise ValueError(
            f"TFDS dataset {name!r} has no {kind.__name__} feature"
            + (" (labels=True needs one)." if kind is tfds.features.ClassLabel else ".")
        )
    return key


def _tfds_dataset(tf, name, split, validation_fraction, data_dir, download, labels):
    """The pooled-and-split TFDS dataset of images (and labels) and its class names."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            f"Loading the TFDS dataset {name!r} needs tensorflow-datasets: "
            'pip install "keras-ddpm[datasets]"'
        ) from error
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:
        raise ValueError(
            f"Unknown dataset {name!r}: not 'synthetic_flowers', not an existing folder, "
            f"and TFDS does not know it ({error.__class__.__name__})."
        ) from None
    try:
        if download:
            builder.download_and_prepare()
        spec = tfds_split(builder.info.splits.keys(), split, validation_fraction)
        dataset = builder.as_dataset(split=spec, shuffle_files=False)
    except ImportError as error:  # a module tensorflow-datasets needs for it
        package = (error.name or "").split(".")[0]
        advice = f": pip install -U {package}" if package else f" ({error})"
        raise ImportError(
            f"Could not prepare TFDS dataset {name!r}: tensorflow-datasets could "
            f"not import {error.name or 'a module'}{advice}."
        ) from None
    except Exception as error:
        raise ValueError(
            f"Could not prepare TFDS dataset {name!r} in {data_dir or tfds.core.constants.DATA_DIR!r}: "
            f"{str(error).splitlines()[0] if str(error) else error.__class__.__name__}. Without a network, "
            "download it elsewhere and pass its folder as `data_dir`, or load a folder of images instead."
        ) from None
    image_key, label_key = KNOWN_TFDS.get(name, ("image", "label"))
    features = builder.info.features
    image_key = _feature_key(tfds, name, features, tfds.features.Image, image_key)
    if not labels:
        return dataset.map(lambda example: example[image_key]), None
    label_key = _feature_key(tfds, name, features, tfds.features.ClassLabel, label_key)
    names = features[label_key].names
    return (
        dataset.map(
            lambda example: (example[image_key], tf.cast(example[label_key], tf.int32))
        ),
        tuple(names),
    )


def load(
    source,
    image_size=64,
    batch_size=64,
    split="train",
    augment=True,
    validation_fraction=0.2,
    seed=0,
    channels=3,
    num_images=None,
    shuffle=None,
    cache=True,
    data_dir=None,
    download=True,
    labels=False,
):
    """Load images as a shuffled, batched, prefetched `tf.data.Dataset` in [-1, 1].

    Sources:

    - `"synthetic_flowers"`: procedural flowers rendered by the library, no
      download (`num_images`, default 4096, deterministic from `seed`);
    - a TFDS name such as `"oxford_flowers102"` or `"oxford_iiit_pet"`: all
      official splits pooled, then split `1 − validation_fraction` /
      `validation_fraction` (the seed project's 80/20 re-split);
    - a folder of jpg/png/bmp/gif images, searched recursively (corrupt files
      are skipped with a warning);
    - a numpy array `(N, H, W, C)`, uint8 in 0..255 or float in [0, 1].

    Every image is cropped centrally to the target aspect ratio, resized with
    antialiasing, scaled to [-1, 1] and, with `augment=True`, flipped
    horizontally at random. The batches work as `model.fit` input on every Keras
    backend. The `"train"` split drops its last partial batch, so every step has
    the same shape and compiles once. tf.data's autotuning is off: its
    thread made each new epoch wait for up to 41 s on 2 CPU cores (parallel
    maps still use every core). A pipeline of your own avoids that wait with
    `dataset.with_options(options)` where `options.autotune.enabled = False`.

    With `labels=True` the batches are `(images, labels)` pairs, int32 labels
    in `[0, num_classes)` for a class-conditional `DiffusionModel`, and the
    dataset has two more attributes, `class_names` (a tuple of str) and
    `num_classes`. The classes are:

    - `"synthetic_flowers"`: the petals' colour family, `FLOWER_COLOURS`
      (red, yellow, green, cyan, blue, magenta; see `flower_colour`), chosen
      because a person sees it at any size, a small model learns it in
      minutes, and the flowers encoder can judge it in samples;
    - a TFDS dataset: its class-label feature (`"label"`: the 102 species of
      Oxford Flowers 102, the 37 breeds of Oxford-IIIT Pets), with its names;
    - a folder: one class per sub-folder, in sorted order of the sub-folder
      names (images in the folder itself are refused). Every split of the
      same folder has the same classes.

    Args:
        source: str name, folder path or numpy array (see above).
        image_size: int or `(height, width)`. Defaults to 64.
        batch_size: int. Defaults to 64.
        split: `"train"`, `"validation"` or `"all"`. Defaults to `"train"`.
        augment: bool, random horizontal flips (training split only). Defaults to True.
        validation_fraction: float in [0, 1), the held-out share. Defaults to 0.2.
        seed: int, seed of the split, shuffling, flips and synthetic images.
        channels: 1 (grayscale) or 3 (RGB). Defaults to 3.
        num_images: int or None, size of `"synthetic_flowers"`, or a cap on
            the images taken from any other source.
        shuffle: bool or None; None shuffles the training split only.
        cache: bool, keep preprocessed images in memory. Defaults to True.
        data_dir: str or None, TFDS data directory.
        download: bool, let TFDS download and prepare the dataset if needed.
        labels: bool, also yield each image's class (see above). Not for an
            array source: pass its labels to `model.fit(images, labels)`.
            Defaults to False.

    Returns:
        A `tf.data.Dataset` of float32 batches `(batch_size, height, width,
        channels)`; with `labels=True`, of `(images, labels)` pairs, with
        `class_names` and `num_classes` attributes.

    Raises:
        ValueError: unknown name, empty folder or no readable image, a bad
            array, a dataset that cannot be downloaded, bad arguments, or
            `labels=True` for an array, a folder without class sub-folders or
            a TFDS dataset without a class label.
        ImportError: TensorFlow or tensorflow-datasets missing (names the extra).

    Example:

    ```python
    import keras_ddpm as kd

    ds = kd.datasets.load("synthetic_flowers", image_size=32, batch_size=16, num_images=64)
    next(iter(ds)).shape  # TensorShape([16, 32, 32, 3])

    pairs = kd.datasets.load(
        "synthetic_flowers", image_size=32, batch_size=16, num_images=64, labels=True
    )
    pairs.class_names  # ('red', 'yellow', 'green', 'cyan', 'blue', 'magenta')
    images, labels = next(iter(pairs))  # (16, 32, 32, 3) float32, (16,) int32
    ```
    """
    tf = _tf()
    size = check_image_size(image_size)
    validation_fraction, batch_size = _check_arguments(
        split, validation_fraction, batch_size, channels
    )
    num_images = check_int("num_images", num_images, low=1, allow_none=True)
    if not isinstance(labels, bool):
        raise ValueError(f"`labels` must be True or False, got {labels!r}.")

    class_names = None
    if isinstance(source, np.ndarray):
        if labels:
            raise ValueError(
                "labels=True reads the classes of a dataset name or a folder; "
                "for an array, pass its labels to model.fit(images, labels)."
            )
        array = _images_from_array(source)
        start, stop = _split_range(len(array), split, validation_fraction)
        dataset = tf.data.Dataset.from_tensor_slices(array[start:stop])
    elif isinstance(source, (str, os.PathLike)) and str(source) == "synthetic_flowers":
        count = SYNTHETIC_SIZE if num_images is None else int(num_images)
        start, stop = _split_range(count, split, validation_fraction)
        rendered = _render_range(count, size, seed, start, stop)
        flowers = np.round(np.stack([image for image, _ in rendered]) * 255)
        elements = flowers.astype(np.uint8)
        if labels:
            class_names = FLOWER_COLOURS
            hues = [attributes["hue"] for _, attributes in rendered]
            elements = (elements, flower_colour(hues))
        dataset = tf.data.Dataset.from_tensor_slices(elements)
    elif isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        folder = os.fspath(source)
        files = _folder_files(folder)
        classes = None
        if labels:
            class_names, classes = _folder_classes(folder, files)
        order = np.random.default_rng(seed).permutation(
            len(files)
        )  # split independent of file names
        start, stop = _split_range(len(files), split, validation_fraction)
        kept = order[start:stop]
        dataset = _folder_dataset(
            tf,
            [files[i] for i in kept],
            channels,
            None if classes is None else classes[kept],
        )
    elif isinstance(source, (str, os.PathLike)):
        _check_dataset_name(source)
        dataset, class_names = _tfds_dataset(
            tf, str(source), split, validation_fraction, data_dir, download, labels
        )
    else:
        raise ValueError(
            f"`source` must be a dataset name, a folder path or a numpy array, got {type(source).__name__}."
        )
    if num_images is not None and str(source) != "synthetic_flowers":
        dataset = dataset.take(int(num_images))

    def each_image(function):
        """`function` on the image of each element, the label passed through."""
        if labels:
            return lambda image, label: (function(image), label)
        return function

    dataset = dataset.map(
        each_image(lambda image: preprocess(image, size, channels)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if cache:
        dataset = dataset.cache()
    training = split != "validation"
    if shuffle if shuffle is not None else training:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    if augment and training:
        dataset = dataset.map(
            each_image(lambda image: tf.image.random_flip_left_right(image, seed=seed)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.batch(batch_size, drop_remainder=split == "train")
    dataset = dataset.prefetch(tf.data.AUTOTUNE).with_options(no_autotune_options())
    if labels:
        # As keras.utils.image_dataset_from_directory does: names on the dataset.
        dataset.class_names = tuple(class_names)
        dataset.num_classes = len(class_names)
    return dataset
