"""Small helpers shared by the file-writing parts of the library."""

import contextlib
import os
import tempfile


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
