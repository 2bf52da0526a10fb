import importlib.util
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from keras_ddpm import utils
from keras_ddpm.utils import (
    atomic_path,
    check_backend_installed,
    check_choice,
    check_float,
    check_image_size,
    check_int,
    check_writable_folder,
)


def test_atomic_path_moves_into_place_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            with open(temporary, "w") as file:
                file.write("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    with atomic_path(target) as temporary:
        assert temporary.endswith(".txt")
        with open(temporary, "w") as file:
            file.write("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask


def test_keras_suffixes_are_kept(tmp_path):
    with atomic_path(tmp_path / "model.weights.h5") as temporary:
        assert temporary.endswith(".weights.h5")


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="Cannot write to output folder"):
        check_writable_folder(str(blocker / "sub"))


@pytest.mark.parametrize(
    "kwargs,value,message",
    [
        (
            dict(low=1, high=1000),
            0,
            r"^`steps` must be an int in \[1, 1000\], got 0\.$",
        ),
        (dict(low=1, high=1000), 1001, r"in \[1, 1000\], got 1001\.$"),
        (dict(low=1), 0, r"^`steps` must be a positive int, got 0\.$"),
        (dict(low=2), 1, r"^`steps` must be an int >= 2, got 1\.$"),
        (dict(high=5), 6, r"^`steps` must be an int <= 5, got 6\.$"),
        (dict(), "3", r"^`steps` must be an int, got '3'\.$"),
        (dict(low=1), True, r"positive int, got True\.$"),
        (dict(low=1), 2.0, r"positive int, got 2\.0\.$"),
        (dict(low=1), np.int64(-4), r"positive int, got -4\.$"),
        (dict(low=1, allow_none=True), 0, r"a positive int or None, got 0\.$"),
        (dict(), None, r"an int, got None\.$"),
    ],
)
def test_check_int_refuses_with_one_line(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        check_int("steps", value, **kwargs)


def test_check_int_returns_python_ints():
    for value in (np.int32(7), np.uint8(7), 7):
        result = check_int("steps", value, low=1, high=7)
        assert result == 7 and type(result) is int
    assert check_int("batch_size", None, low=1, allow_none=True) is None
    assert check_int("offset", -3) == -3


@pytest.mark.parametrize(
    "kwargs,value,message",
    [
        (
            dict(low=0.0, high=1.0, high_inclusive=False),
            1.0,
            r"^`x` must lie in \[0, 1\), got 1\.0\.$",
        ),
        (
            dict(low=0, high=1, low_inclusive=False, high_inclusive=False),
            0,
            r"lie in \(0, 1\), got 0\.$",
        ),
        (dict(low=0, high=1), -0.5, r"lie in \[0, 1\], got -0\.5\.$"),
        (dict(low=0.0, low_inclusive=False), 0.0, r"^`x` must be > 0, got 0\.0\.$"),
        (dict(low=1e-4), 0.0, r"^`x` must be >= 0\.0001, got 0\.0\.$"),
        (dict(high=2, high_inclusive=False), 2, r"^`x` must be < 2, got 2\.$"),
        (dict(), float("nan"), r"^`x` must be finite, got nan\.$"),
        (dict(low=0.0, high=1.0), float("nan"), r"must be finite, got nan\.$"),
        (dict(), -np.inf, r"must be finite, got -inf\.$"),
        (dict(), True, r"^`x` must be a number, got True\.$"),
        (dict(), "0.5", r"^`x` must be a number, got '0\.5'\.$"),
        (dict(allow_none=True), "a", r"a number or None, got 'a'\.$"),
        (dict(high=1.0), np.float32(1.5), r"must be <= 1, got 1\.5\.$"),
    ],
)
def test_check_float_refuses_with_one_line(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        check_float("x", value, **kwargs)


def test_check_float_returns_python_floats_and_keeps_bounds():
    for value in (np.float32(0.5), np.int64(0), 1):
        result = check_float("x", value, low=0.0, high=1.0)
        assert type(result) is float
    assert check_float("x", 0.0, low=0.0) == 0.0
    assert check_float("x", 1.0, high=1.0) == 1.0
    assert check_float("x", None, allow_none=True) is None


def test_check_choice():
    assert check_choice("split", "all", ("train", "validation", "all")) == "all"
    with pytest.raises(
        ValueError,
        match=r"^`split` must be one of 'train', 'validation', 'all', got 'test'\.$",
    ):
        check_choice("split", "test", ("train", "validation", "all"))
    with pytest.raises(
        ValueError, match=r"^`channels` must be one of 1, 3, got True\.$"
    ):
        check_choice("channels", True, (1, 3))
    with pytest.raises(ValueError, match=r"^`mode` must be 'a', got 'b'\.$"):
        check_choice("mode", "b", ["a"])
    with pytest.raises(ValueError, match=r"got array\(\[0\., 0\.\]\)\.$"):
        check_choice("channels", np.zeros(2), (1, 3))
    assert check_choice("channels", np.int64(3), (1, 3)) == 3


def test_check_image_size():
    assert check_image_size(np.int64(8)) == (8, 8)
    assert check_image_size([16, 32]) == (16, 32)
    with pytest.raises(ValueError, match=r"^`image_size\[1\]` must be a positive int"):
        check_image_size((8, 0))
    with pytest.raises(ValueError, match=r"a positive int or a \(height, width\) pair"):
        check_image_size((8, 8, 8))
    with pytest.raises(ValueError, match=r"^`size` must be a positive int, got True"):
        check_image_size(True, name="size")


@pytest.fixture
def only_tensorflow_installed(monkeypatch):
    """`find_spec` as if TensorFlow were the only backend installed."""
    real = importlib.util.find_spec

    def find_spec(name, *args):
        if name in ("jax", "torch"):
            return None
        return real(name, *args)

    monkeypatch.setattr(utils.importlib.util, "find_spec", find_spec)


@pytest.mark.usefixtures("only_tensorflow_installed")
def test_a_missing_backend_is_named_with_its_extra(tmp_path):
    home = str(tmp_path)  # no keras.json there
    with pytest.raises(ImportError) as raised:
        check_backend_installed({"KERAS_BACKEND": "jax", "KERAS_HOME": home})
    assert str(raised.value) == (
        "Keras' backend is jax (KERAS_BACKEND), but jax is not installed: "
        "pip install 'keras-ddpm[jax]', or set KERAS_BACKEND=tensorflow."
    )
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    with pytest.raises(
        ImportError, match=r"torch \(.*keras.json\).*keras-ddpm\[torch\]"
    ):
        check_backend_installed({"KERAS_HOME": home})
    # The variable wins over keras.json, as in Keras; installed backends and
    # those Keras runs without an extra pass.
    check_backend_installed({"KERAS_BACKEND": "tensorflow", "KERAS_HOME": home})
    check_backend_installed({"KERAS_BACKEND": "numpy", "KERAS_HOME": home})
    with pytest.raises(ImportError) as raised:
        check_backend_installed({"KERAS_BACKEND": "bogus", "KERAS_HOME": home})
    assert str(raised.value) == (
        "Keras' backend is 'bogus' (KERAS_BACKEND): expected one of tensorflow, "
        "jax, torch (or Keras' numpy and openvino)."
    )


def test_a_missing_default_backend_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(utils.importlib.util, "find_spec", lambda name, *args: None)
    (tmp_path / "keras.json").write_text("not json")
    with pytest.raises(ImportError) as raised:
        check_backend_installed({"KERAS_HOME": str(tmp_path)})
    assert str(raised.value) == (
        "Keras' backend is tensorflow (Keras' default), but tensorflow is not "
        "installed: pip install 'keras-ddpm[tensorflow]'."
    )


def test_importing_the_package_checks_the_backend_first():
    """A fresh interpreter without the backend's package stops with the one line."""
    code = "import sys\nsys.modules['jax'] = None  # as if not installed\nimport keras_ddpm\n"
    environment = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "ImportError: Keras' backend is jax (KERAS_BACKEND), but jax is not "
            "installed: pip install 'keras-ddpm[jax]'"
        )
    )
