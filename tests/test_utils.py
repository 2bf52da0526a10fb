import os
import stat

import pytest

from keras_ddpm.utils import atomic_path, check_writable_folder


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
