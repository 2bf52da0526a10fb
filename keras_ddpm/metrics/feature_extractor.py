import os

import keras
import numpy as np
from keras import ops

from keras_ddpm.metrics.feature_statistics import FeatureStatistics
from keras_ddpm.utils import check_images, check_int, iterate_images, padded_chunks

# The no-top InceptionV3 weights that `keras.applications.InceptionV3` downloads.
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_HASH = "bcbd6486424b2319ff4ef7d526e38f63"
INCEPTION_MIN_SIZE = 75


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _inception_weights_path(weights):
    """Resolve `weights` to a local file (downloading the ImageNet weights) or None."""
    if weights is None:
        return None
    if weights == "imagenet":
        try:
            return keras.utils.get_file(
                INCEPTION_WEIGHTS_FILE,
                INCEPTION_WEIGHTS_URL,
                cache_subdir="models",
                file_hash=INCEPTION_WEIGHTS_HASH,
            )
        except Exception as error:
            raise OSError(
                f"Could not download the InceptionV3 ImageNet weights ({_first_line(error)}). "
                f"Fetch {INCEPTION_WEIGHTS_URL} where you have network access and pass "
                "weights='/path/to/" + INCEPTION_WEIGHTS_FILE + "', or pass "
                "feature_extractor=<a keras.Model> to use another encoder."
            ) from None
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"InceptionV3 weights file not found: {path}; pass weights='imagenet' "
                f"(downloads {INCEPTION_WEIGHTS_FILE}), the path of that file, or None."
            )
        return path
    raise ValueError(
        f"`weights` must be 'imagenet', a weights file path or None, got {weights!r}."
    )


def build_inception(image_size=299, weights="imagenet"):
    """InceptionV3 without its classifier: images → 2048 average-pooled features.

    Args:
        image_size: int ≥ 75, the square input size. Defaults to 299.
        weights: `"imagenet"` (downloaded once by Keras into `~/.keras/models`),
            the path of a local copy of that file
            (`inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`) or of
            weights saved from this model, or None (random weights: scores are
            then not comparable with anyone else's). Defaults to `"imagenet"`.

    Returns:
        A `keras.Model` mapping `(B, image_size, image_size, 3)` images,
        preprocessed for InceptionV3 (values in [-1, 1]), to `(B, 2048)`.

    Raises:
        OSError: when the ImageNet weights cannot be downloaded; the message
            says how to pass a local file instead.
        FileNotFoundError: for a weights path that does not exist.
        ValueError: for a bad `image_size` or `weights`, or an unreadable file.

    Example:

    ```python
    import keras_ddpm as kd

    encoder = kd.metrics.build_inception(image_size=75, weights=None)
    encoder.output_shape  # (None, 2048)
    ```

    References:
        - [Szegedy et al., 2016. Rethinking the Inception Architecture](https://arxiv.org/abs/1512.00567)
    """
    image_size = check_int("image_size", image_size, low=INCEPTION_MIN_SIZE)
    path = _inception_weights_path(weights)
    model = keras.applications.InceptionV3(
        include_top=False,
        weights=None,
        input_shape=(image_size, image_size, 3),
        pooling="avg",
    )
    if path is not None:
        try:
            model.load_weights(path)
        except Exception as error:
            raise ValueError(
                f"Could not load InceptionV3 weights from {path}: {_first_line(error)}"
            ) from None
    return model


def _check_one_input(model):
    """Refuse a model that takes more than images, such as a diffusion model."""
    from keras_ddpm.models.diffusion_model import DiffusionModel

    if isinstance(model, DiffusionModel):
        raise ValueError(
            "`feature_extractor` must map images to features (B, d), got a "
            "DiffusionModel (it takes images and timesteps); give an encoder "
            "such as kd.metrics.flowers_encoder()."
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return  # a subclassed model: its output is checked on the first call
    if inputs is not None and len(inputs) != 1:
        names = ", ".join(getattr(x, "name", "?") for x in inputs)
        raise ValueError(
            "`feature_extractor` must take one input, the images, got a model "
            f"of {len(inputs)} inputs ({names})."
        )


class FeatureExtractor:
    """Turn images in [-1, 1] into feature vectors with a Keras encoder.

    The default encoder is InceptionV3 from `keras.applications` (average-pooled
    2048 features), fed images resized bilinearly (antialiased when shrinking)
    to `image_size`, grey images repeated to three channels, and preprocessed
    as InceptionV3 expects (`keras.applications.inception_v3.preprocess_input`
    of the 0..255 image). Any other `keras.Model` mapping images to `(B, d)`
    works too: it gets images in [-1, 1], resized to its own input size when it
    declares one (else to `image_size`, or left as they are when that is None).

    Images pass through the encoder in fixed-size chunks (the last one padded),
    so a compiled encoder is traced once.

    Args:
        feature_extractor: a `keras.Model` or None for InceptionV3.
        image_size: int or None, the encoder's input size. Defaults to 299.
        weights: InceptionV3 weights: `"imagenet"`, a local file path or None
            (see `build_inception`). Ignored with a `feature_extractor`.
        batch_size: int, images per encoder call. Defaults to 64.

    Raises:
        ValueError: for a `feature_extractor` that is not a Keras model or
            takes more than images (a `DiffusionModel`), a bad
            `image_size` or `batch_size`, or an encoder whose output is not
            one feature vector per image.
        OSError: when the ImageNet weights cannot be downloaded.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    encoder = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3), keras.layers.GlobalAveragePooling2D()]
    )
    extractor = kd.metrics.FeatureExtractor(encoder)
    images = np.random.uniform(-1, 1, (10, 32, 32, 3)).astype("float32")
    extractor(images).shape  # (10, 8), float64
    ```

    References:
        - [Szegedy et al., 2016. Rethinking the Inception Architecture](https://arxiv.org/abs/1512.00567)
    """

    def __init__(
        self, feature_extractor=None, image_size=299, weights="imagenet", batch_size=64
    ):
        self.batch_size = check_int("batch_size", batch_size, low=1)
        image_size = check_int("image_size", image_size, low=1, allow_none=True)
        self.inception = feature_extractor is None
        if self.inception:
            self.model = build_inception(image_size, weights)
            label = weights if weights in (None, "imagenet") else "file"
            self.description = f"inception_v3:{label}:{image_size}"
        else:
            if not isinstance(feature_extractor, keras.layers.Layer):
                raise ValueError(
                    "`feature_extractor` must be a keras.Model (images → (B, d)), "
                    f"got {type(feature_extractor).__name__}."
                )
            _check_one_input(feature_extractor)
            self.model = feature_extractor
            self.description = f"{feature_extractor.name}:{image_size}"
        self.input_size, self.channels = self._model_input(image_size)
        if not self.inception:
            self.description = f"{feature_extractor.name}:{self.input_size}"

    def _model_input(self, image_size):
        try:
            shape = tuple(self.model.input_shape)
        except (AttributeError, ValueError, TypeError):
            shape = None
        if shape is None or len(shape) != 4:
            return (image_size, image_size) if image_size else None, None
        height, width, channels = shape[1:]
        if height is None or width is None:
            size = (image_size, image_size) if image_size else None
        else:
            size = (int(height), int(width))
        return size, channels

    def _prepare(self, images):
        x = ops.convert_to_tensor(images)
        if self.channels is not None and x.shape[-1] != self.channels:
            if x.shape[-1] == 1 and self.channels == 3:
                x = ops.repeat(x, 3, axis=-1)
            else:
                raise ValueError(
                    f"The feature extractor takes {self.channels}-channel images, got "
                    f"{x.shape[-1]} channels."
                )
        if self.input_size is not None and tuple(x.shape[1:3]) != self.input_size:
            x = ops.image.resize(
                x, self.input_size, interpolation="bilinear", antialias=True
            )
        if self.inception:
            # Our [-1, 1] images as 0..255 pixels, then Keras' own InceptionV3 scaling.
            x = keras.applications.inception_v3.preprocess_input((x + 1.0) * 127.5)
        return x

    def __call__(self, images):
        """Features of `images` `(B, H, W, C)` in [-1, 1], as float64 numpy `(B, d)`."""
        images = check_images(images)
        outputs = []
        # Always full chunks: one traced shape per extractor.
        chunks = padded_chunks([images], self.batch_size, always_full=True)
        for _, size, (chunk,) in chunks:
            features = self.model.predict_on_batch(self._prepare(chunk))
            features = np.asarray(ops.convert_to_numpy(features))
            if features.ndim != 2:
                raise ValueError(
                    "The feature extractor must return features of shape (B, d), got "
                    f"shape {features.shape}; end it with a pooling layer."
                )
            outputs.append(features[:size].astype(np.float64))
        if not outputs:
            return np.zeros((0, 0), np.float64)
        return np.concatenate(outputs)

    def statistics(self, data, max_images=None, keep_features=True):
        """Feature statistics of a dataset, e.g. as a reusable reference.

        Args:
            data: an array `(N, H, W, C)` in [-1, 1], a `tf.data.Dataset` or an
                iterable of such batches (or of `(images, labels)`).
            max_images: int or None, stop after this many images.
            keep_features: bool, keep the features (KID needs them). Defaults to True.

        Returns:
            A `FeatureStatistics`; `.save("stats.npz")` keeps it for later.

        Raises:
            ValueError: for fewer than 2 images, or images of the wrong shape.
        """
        stats = FeatureStatistics(
            keep_features=keep_features, extractor=self.description
        )
        for batch in iterate_images(data, max_images):
            stats.update(self(batch))
        if stats.count < 2:
            raise ValueError(f"Statistics need at least 2 images, got {stats.count}.")
        return stats
