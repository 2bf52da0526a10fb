"""Small helpers shared across the library: argument checks, file writing, backend state."""

import contextlib
import importlib.util
import json
import math
import os
import shutil
import tempfile

import numpy as np


def _shown(value):
    """`repr` of `value` on one line, numpy scalars shown as the Python number they hold."""
    return " ".join(
        repr(value.item() if isinstance(value, np.generic) else value).split()
    )


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name, value, low=None, high=None, allow_none=False):
    """Return `value` as a Python int, or raise a one-line error naming `name`.

    Python and numpy integers are ints; bools, floats (even whole ones) and
    strings are not.

    Args:
        name: str, the argument's name, as the error shows it.
        value: the value to check.
        low: int or None, the smallest value allowed. Defaults to None (no bound).
        high: int or None, the largest value allowed. Defaults to None (no bound).
        allow_none: bool, let None through (returned as is). Defaults to False.

    Returns:
        `value` as an `int`, or None when it is None and `allow_none` is set.

    Raises:
        ValueError: if `value` is not an int in [`low`, `high`], e.g.
            "`steps` must be an int in [1, 1000], got 0."

    Example:

    ```python
    import numpy as np
    from keras_ddpm.utils import check_int

    check_int("steps", np.int64(50), low=1, high=1000)  # 50
    check_int("batch_size", None, low=1, allow_none=True)  # None
    ```
    """
    if value is None and allow_none:
        return None
    if (
        not _is_int(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        if low is not None and high is not None:
            expected = f"an int in [{low}, {high}]"
        elif low == 1:
            expected = "a positive int"
        elif low is not None:
            expected = f"an int >= {low}"
        elif high is not None:
            expected = f"an int <= {high}"
        else:
            expected = "an int"
        if allow_none:
            expected += " or None"
        raise ValueError(f"`{name}` must be {expected}, got {_shown(value)}.")
    return int(value)


def check_float(
    name,
    value,
    low=None,
    high=None,
    low_inclusive=True,
    high_inclusive=True,
    allow_none=False,
):
    """Return `value` as a finite Python float, or raise a one-line error naming `name`.

    Python and numpy ints and floats are numbers; bools and strings are not,
    and NaN and infinities are refused.

    Args:
        name: str, the argument's name, as the error shows it.
        value: the value to check.
        low: float or None, the lower bound. Defaults to None (no bound).
        high: float or None, the upper bound. Defaults to None (no bound).
        low_inclusive: bool, whether `low` itself is allowed. Defaults to True.
        high_inclusive: bool, whether `high` itself is allowed. Defaults to True.
        allow_none: bool, let None through (returned as is). Defaults to False.

    Returns:
        `value` as a `float`, or None when it is None and `allow_none` is set.

    Raises:
        ValueError: if `value` is not a number, is not finite, or lies outside
            the bounds, e.g. "`dropout` must lie in [0, 1), got 1.0."

    Example:

    ```python
    from keras_ddpm.utils import check_float

    check_float("dropout", 0, low=0.0, high=1.0, high_inclusive=False)  # 0.0
    check_float("tau", 0.5, low=0.0, low_inclusive=False)  # 0.5
    ```
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        expected = "a number or None" if allow_none else "a number"
        raise ValueError(f"`{name}` must be {expected}, got {_shown(value)}.")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be finite, got {number}.")
    below = low is not None and (number < low if low_inclusive else number <= low)
    above = high is not None and (number > high if high_inclusive else number >= high)
    if below or above:
        if low is not None and high is not None:
            opening, closing = (
                "[" if low_inclusive else "(",
                "]" if high_inclusive else ")",
            )
            expected = f"lie in {opening}{low:g}, {high:g}{closing}"
        elif low is not None:
            expected = f"be {'>=' if low_inclusive else '>'} {low:g}"
        else:
            expected = f"be {'<=' if high_inclusive else '<'} {high:g}"
        raise ValueError(f"`{name}` must {expected}, got {_shown(value)}.")
    return number


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`, or raise a one-line error naming `name`.

    Args:
        name: str, the argument's name, as the error shows it.
        value: the value to check.
        choices: the allowed values, in the order the error lists them.

    Returns:
        `value`, unchanged.

    Raises:
        ValueError: if `value` is none of `choices`, e.g.
            "`split` must be one of 'train', 'validation', 'all', got 'test'."

    Example:

    ```python
    from keras_ddpm.utils import check_choice

    check_choice("split", "train", ("train", "validation", "all"))  # 'train'
    ```
    """
    choices = tuple(choices)
    try:
        allowed = any(
            value == choice and isinstance(value, bool) == isinstance(choice, bool)
            for choice in choices
        )
    except (TypeError, ValueError):  # arrays compare element-wise
        allowed = False
    if not allowed:
        shown = [repr(choice) for choice in choices]
        expected = shown[0] if len(shown) == 1 else f"one of {', '.join(shown)}"
        raise ValueError(f"`{name}` must be {expected}, got {_shown(value)}.")
    return value


def check_image_size(value, name="image_size"):
    """Return an image size given as an int or a `(height, width)` pair as `(h, w)`.

    Args:
        value: a positive int (a square) or a pair of positive ints.
        name: str, the argument's name, as the error shows it. Defaults to
            `"image_size"`.

    Returns:
        A tuple `(height, width)` of Python ints.

    Raises:
        ValueError: if `value` is neither a positive int nor a pair of them.

    Example:

    ```python
    from keras_ddpm.utils import check_image_size

    check_image_size(64)  # (64, 64)
    check_image_size([48, 64])  # (48, 64)
    ```
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"`{name}` must be a positive int or a (height, width) pair, got {value!r}."
            )
        return tuple(check_int(f"{name}[{i}]", s, low=1) for i, s in enumerate(value))
    size = check_int(name, value, low=1)
    return size, size


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
    if os.path.isfile(folder):
        raise OSError(f"The output folder {folder!r} is a file; give a folder.")
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


def no_autotune_options():
    """`tf.data.Options` that turn tf.data's autotuning off.

    Its tuning thread sleeps between rounds, twice as long after each round
    and for up to a minute once a pipeline has run a while, and destroying an
    iterator that has not run out waits for that thread to wake. `fit`
    destroys one at each epoch's start, at each validation's start and when
    it ends; on 2 CPU cores this stalled training for up to 41 s at an epoch's
    start. Without it, `AUTOTUNE` parallelism falls back to one call per core
    and prefetching still runs ahead.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def without_autotune(data):
    """`data` with tf.data's autotuning off, where it is a `tf.data.Dataset` that leaves it unset.

    See `no_autotune_options` for why. A pipeline whose options set
    `autotune.enabled` either way, and anything that is not a
    `tf.data.Dataset`, is returned as it is.
    """
    if not hasattr(data, "element_spec") or not hasattr(data, "with_options"):
        return data  # not a tf.data pipeline: TensorFlow need not be imported
    import tensorflow as tf

    if not isinstance(data, tf.data.Dataset):
        return data
    if data.options().autotune.enabled is not None:
        return data  # the user's own choice (None: left unset)
    return data.with_options(no_autotune_options())


def padded_chunks(arrays, batch_size, always_full=False):
    """Split arrays along their first axis into chunks of exactly one size.

    The last chunk is padded with zeros, so that every chunk has one shape and
    a compiled program traced once serves them all.

    Args:
        arrays: a list of numpy arrays sharing their first dimension N.
        batch_size: int >= 1, rows per chunk.
        always_full: bool. With False, fewer than `batch_size` rows make one
            unpadded chunk of N rows; with True, every chunk has `batch_size`
            rows, even then (one traced shape whatever N). Defaults to False.

    Yields:
        `(begin, size, parts)`: the first row, the number of real rows and the
        list of chunks, one per array.

    Example:

    ```python
    import numpy as np
    from keras_ddpm.utils import padded_chunks

    [(b, n, p[0].shape) for b, n, p in padded_chunks([np.ones((5, 2))], 4)]
    # [(0, 4, (4, 2)), (4, 1, (4, 2))]
    ```
    """
    num = len(arrays[0])
    if not always_full:
        batch_size = min(batch_size, num)
    for begin in range(0, num, batch_size):
        parts = []
        for array in arrays:
            part = array[begin : begin + batch_size]
            if len(part) < batch_size:
                pad = np.zeros((batch_size - len(part),) + part.shape[1:], part.dtype)
                part = np.concatenate([part, pad])
            parts.append(part)
        yield begin, min(batch_size, num - begin), parts


def torch_compiling():
    """Whether TorchDynamo is tracing the current call (PyTorch backend).

    `torch.compiler.is_compiling` from PyTorch 2.3, `torch._dynamo.is_compiling`
    before.

    Returns:
        bool, True while `torch.compile` traces the caller.
    """
    import torch

    check = getattr(torch.compiler, "is_compiling", None)
    if check is None:
        from torch._dynamo import is_compiling as check
    return check()


# The backends Keras can run on that an extra of keras-ddpm installs.
BACKEND_EXTRAS = ("tensorflow", "jax", "torch")
# The other backends Keras knows.
OTHER_BACKENDS = ("numpy", "openvino")


def check_backend_installed(environ=None):
    """Raise a one-line error if the backend Keras is about to load is not installed.

    Keras reads its backend from the `KERAS_BACKEND` variable, else from the
    `backend` of `$KERAS_HOME/keras.json` (`~/.keras/keras.json`), else uses
    TensorFlow, and fails deep inside its own import when that package is
    missing or the name unknown. Checked before Keras is imported.

    Args:
        environ: mapping of environment variables; None reads `os.environ`.

    Raises:
        ImportError: if that backend (`tensorflow`, `jax` or `torch`) is not
            installed, naming the extra that installs it, or if Keras does not
            know its name.
    """
    environ = os.environ if environ is None else environ
    backend, source = environ.get("KERAS_BACKEND"), "KERAS_BACKEND"
    if not backend:  # where Keras looks: $KERAS_HOME, else ~/.keras or /tmp/.keras
        if "KERAS_HOME" in environ:
            home = environ["KERAS_HOME"]
        else:
            base = os.path.expanduser("~")
            home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
        config = os.path.expanduser(os.path.join(home, "keras.json"))
        try:
            with open(config) as file:
                backend, source = json.load(file).get("backend"), config
        except (OSError, ValueError, AttributeError):
            backend = None
    if not backend:
        backend, source = "tensorflow", "Keras' default"
    if backend not in BACKEND_EXTRAS + OTHER_BACKENDS:
        raise ImportError(
            f"Keras' backend is {backend!r} ({source}): expected one of "
            f"{', '.join(BACKEND_EXTRAS)} (or Keras' {' and '.join(OTHER_BACKENDS)})."
        )
    if backend in BACKEND_EXTRAS and importlib.util.find_spec(backend) is None:
        others = " or ".join(
            name
            for name in BACKEND_EXTRAS
            if name != backend and importlib.util.find_spec(name) is not None
        )
        hint = f", or set KERAS_BACKEND={others.split()[0]}" if others else ""
        raise ImportError(
            f"Keras' backend is {backend} ({source}), but {backend} is not "
            f"installed: pip install 'keras-ddpm[{backend}]'{hint}."
        )
