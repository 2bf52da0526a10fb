"""Uploads are read from the upload folder only, and non-images get a message."""

import os

import numpy as np
import pytest
from PIL import Image

from keras_ddpm.demo import read_upload


@pytest.fixture
def folders(tmp_path):
    uploads, elsewhere = tmp_path / "uploads", tmp_path / "elsewhere"
    uploads.mkdir()
    elsewhere.mkdir()
    return str(uploads), str(elsewhere)


def save(folder, name, array):
    path = os.path.join(folder, name)
    Image.fromarray(array).save(path)
    return path


def test_reads_an_uploaded_picture(folders):
    uploads, _ = folders
    picture = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    path = save(uploads, "a.png", picture)
    np.testing.assert_array_equal(read_upload({"path": path}, uploads), picture)
    grey = read_upload({"path": path}, uploads, mode="L")
    assert grey.shape == (4, 6)


def test_object_payloads_and_no_upload(folders):
    uploads, _ = folders
    path = save(uploads, "b.png", np.zeros((3, 3, 3), np.uint8))

    class Payload:
        pass

    payload = Payload()
    payload.path = path
    assert read_upload(payload, uploads).shape == (3, 3, 3)
    assert read_upload(None, uploads) is None


@pytest.mark.parametrize(
    "make_path",
    [
        lambda uploads, elsewhere: os.path.join(elsewhere, "private.png"),
        lambda uploads, elsewhere: os.path.join(
            uploads, "..", "elsewhere", "private.png"
        ),
        lambda uploads, elsewhere: uploads,  # the folder itself
        lambda uploads, elsewhere: "",
        lambda uploads, elsewhere: 42,
    ],
)
def test_paths_outside_the_upload_folder_are_refused(folders, make_path):
    uploads, elsewhere = folders
    save(elsewhere, "private.png", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="file paths are not accepted"):
        read_upload({"path": make_path(uploads, elsewhere)}, uploads)


def test_a_link_out_of_the_upload_folder_is_refused(folders):
    uploads, elsewhere = folders
    target = save(elsewhere, "private.png", np.zeros((3, 3, 3), np.uint8))
    link = os.path.join(uploads, "link.png")
    os.symlink(target, link)
    with pytest.raises(ValueError, match="file paths are not accepted"):
        read_upload({"path": link}, uploads)


def test_non_images_get_a_one_line_message(folders):
    uploads, _ = folders
    path = os.path.join(uploads, "notes.png")
    with open(path, "w") as file:
        file.write("not a picture")
    with pytest.raises(ValueError, match="Expected an image file") as error:
        read_upload({"path": path}, uploads)
    assert "\n" not in str(error.value) and uploads not in str(error.value)
