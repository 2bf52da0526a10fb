import os

import numpy as np

NOT_AN_IMAGE = (
    "Expected an image file (PNG, JPEG, WebP, GIF, BMP, ...); this upload could "
    "not be read as an image."
)
NOT_UPLOADED = "Expected an uploaded image; file paths are not accepted."


def read_upload(payload, upload_folder, mode="RGB"):
    """Decode an image a web client uploaded, refusing anything but an upload.

    A request names its upload by a path inside the server's upload folder;
    any other path (a file that was not uploaded) is refused before it is
    opened, so a client can never make the server read its own files.

    Args:
        payload: the upload as the web framework passes it: a dict (or
            object) with a `path`, or None.
        upload_folder: str, the folder uploads are stored in.
        mode: `"RGB"` or `"L"`, the pixel format to convert to. Defaults to
            `"RGB"`.

    Returns:
        A uint8 array `(H, W, 3)` (or `(H, W)` for `"L"`), or None when no
        image was uploaded.

    Raises:
        ValueError: one line, for a path outside `upload_folder` or a file
            that is not a readable image.

    Example:

    ```python
    import os
    import numpy as np
    from PIL import Image
    from keras_ddpm.demo import read_upload

    os.makedirs("uploads", exist_ok=True)
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save("uploads/a.png")
    read_upload({"path": "uploads/a.png"}, "uploads").shape  # (4, 6, 3)
    ```
    """
    from PIL import Image, ImageOps

    if payload is None:
        return None
    path = (
        payload.get("path")
        if isinstance(payload, dict)
        else getattr(payload, "path", None)
    )
    if not isinstance(path, str) or not path:
        raise ValueError(NOT_UPLOADED)
    folder = os.path.realpath(upload_folder)
    real = os.path.realpath(path)
    if os.path.commonpath([folder, real]) != folder or not os.path.isfile(real):
        raise ValueError(NOT_UPLOADED)
    try:
        with Image.open(real) as picture:
            picture = ImageOps.exif_transpose(picture)
            return np.asarray(picture.convert(mode))
    except Exception:  # PIL raises many kinds for files that are not images
        raise ValueError(NOT_AN_IMAGE) from None
