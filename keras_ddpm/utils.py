"""Small helpers shared by the file-writing parts of the library."""

import contextlib
import os
import shutil
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; move it into place only on success.

    A crash while writing never leaves a truncated file at `path`: readers see
    the old file or the new one. The temporary file keeps `path`'s suffix, since
    some writers (Keras, imageio) choose the format from it.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, suffix = os.path.splitext(os.path.basename(path))
    if base.endswith(".weights"):  # Keras wants '.weights.h5' kept whole
        base, suffix = base[: -len(".weights")], ".weights" + suffix
    handle, temporary = tempfile.mkstemp(
        prefix=f".{base}.", suffix=".tmp" + suffix, dir=folder
    )
    os.close(handle)
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 is not what users expect
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def check_writable_folder(folder):
    """Create `folder` if needed and fail early, with a clear message, if it is not writable."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise OSError(
            f"Cannot write to output folder {folder!r}: {error.strerror or error}."
        ) from None


def check_free_space(folder, needed_bytes):
    """Fail early, with a clear message, if `folder`'s disk has under `needed_bytes` free."""
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise OSError(
            f"Not enough free space in {folder!r}: training needs about "
            f"{needed_bytes / 2**20:.1f} MiB for checkpoints, {free / 2**20:.1f} MiB free."
        )


class ConfigEquality:
    """Value semantics for plain config objects (schedules, samplers).

    Two objects are equal when they have the same type and `get_config()`; they
    hash accordingly (compiled sampling loops are cached on them) and print as
    their constructor call.
    """

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


class Registry:
    """Names → classes of one kind, and the `get` / `serialize` / `deserialize` trio."""

    def __init__(self, kind, base, names):
        self.kind, self.base, self.names = kind, base, names

    def _options(self):
        return f"expected one of {sorted(self.names)}, a config dict or a {self.base.__name__} instance"

    def from_name(self, name, kwargs):
        key = str(name).lower().replace(self.kind, "").strip("_ ")
        if key not in self.names:
            raise ValueError(f"Unknown {self.kind} {name!r}; {self._options()}.")
        return self.names[key](**kwargs)

    def serialize(self, obj):
        import keras

        if not isinstance(obj, self.base):
            raise ValueError(f"Expected a {self.base.__name__} instance, got {obj!r}.")
        return keras.saving.serialize_keras_object(obj)

    def deserialize(self, config):
        import keras

        if not isinstance(config, dict):
            raise ValueError(f"Expected a {self.kind} config dict, got {config!r}.")
        if "name" in config and "class_name" not in config:
            return self.from_name(
                config["name"], {k: v for k, v in config.items() if k != "name"}
            )
        obj = keras.saving.deserialize_keras_object(config)
        if not isinstance(obj, self.base):
            raise ValueError(
                f"Config {config!r} does not describe a {self.base.__name__}."
            )
        return obj

    def get(self, identifier):
        if isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            return self.from_name(identifier, {})
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        raise ValueError(
            f"Could not interpret {self.kind} {identifier!r}; {self._options()}."
        )


def check_images(images, what="images"):
    """Validate a batch of images `(B, H, W, C)` in [-1, 1]; return float32 numpy."""
    if not isinstance(images, np.ndarray):
        from keras import ops

        images = ops.convert_to_numpy(images)
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(
            f"Expected {what} of shape (B, H, W, C), got shape {array.shape}."
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"Expected float {what} scaled to [-1, 1], got dtype {array.dtype}; "
            "convert uint8 images with x / 127.5 - 1."
        )
    array = array.astype(np.float32)
    if array.size and not np.all(np.isfinite(array)):
        raise ValueError(f"{what.capitalize()} contain NaN or Inf values.")
    if array.size and (array.min() < -1.001 or array.max() > 1.001):
        raise ValueError(
            f"Expected {what} in [-1, 1], got values in [{array.min():.3g}, {array.max():.3g}]."
        )
    return array


def iterate_images(data, limit=None):
    """Yield float32 numpy batches `(B, H, W, C)` from `data`, at most `limit` images.

    `data` is an array `(N, H, W, C)`, a `tf.data.Dataset` or any iterable of
    batches; `(images, labels)` batches give their images.
    """
    if limit is not None and limit <= 0:
        return
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        batches = [data]
    else:
        try:
            batches = iter(data)
        except TypeError:
            raise ValueError(
                "Expected images as an array (N, H, W, C), a tf.data.Dataset or an "
                f"iterable of batches, got {type(data).__name__}."
            ) from None
    seen = 0
    for batch in batches:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        if isinstance(batch, dict):
            raise ValueError(
                f"Expected image batches, got a dict with keys {sorted(batch)}."
            )
        batch = check_images(batch)
        if limit is not None:
            batch = batch[: limit - seen]
        seen += len(batch)
        yield batch
        if limit is not None and seen >= limit:
            return
