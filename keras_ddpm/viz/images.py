"""Grids, GIFs and strips of images in [-1, 1]."""

import os

import numpy as np

from keras_ddpm.utils import atomic_path, check_int


def to_uint8(images):
    """Convert images to uint8: floats are read as [-1, 1], uint8 is kept.

    Args:
        images: array of any shape, float in [-1, 1] or uint8.

    Returns:
        A uint8 array of the same shape.

    Raises:
        ValueError: for an array that is neither float nor uint8.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    kd.viz.to_uint8(np.array([-1.0, 0.0, 1.0]))  # array([  0, 128, 255], dtype=uint8)
    ```
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            f"Expected float images in [-1, 1] or uint8, got dtype {images.dtype}."
        )
    images = np.nan_to_num(images.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _check_batch(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"Expected images of shape (N, H, W, C) with C in (1, 3, 4), got {images.shape}."
        )
    return images


def image_grid(images, rows, cols, padding=2, pad_value=255):
    """Tile images into one uint8 picture, row by row.

    Args:
        images: `(N, H, W, C)` float in [-1, 1] or uint8, with N <= rows·cols
            (empty cells are filled with `pad_value`).
        rows: int, grid rows.
        cols: int, grid columns.
        padding: int, pixels between cells and around the grid. Defaults to 2.
        pad_value: int, the padding's grey level. Defaults to 255 (white).

    Returns:
        uint8 array `(rows·H + (rows+1)·padding, cols·W + (cols+1)·padding, C)`.

    Raises:
        ValueError: for a shape other than `(N, H, W, C)` with C in (1, 3, 4),
            non-positive `rows`/`cols`, or more images than cells.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    grid = kd.viz.image_grid(np.zeros((6, 8, 8, 3), "float32"), rows=2, cols=3)
    grid.shape  # (22, 32, 3)
    ```
    """
    images = to_uint8(_check_batch(images))
    rows, cols = check_int("rows", rows, low=1), check_int("cols", cols, low=1)
    if len(images) > rows * cols:
        raise ValueError(
            f"Got {len(images)} images for a {rows}×{cols} grid of {rows * cols} cells."
        )
    n, h, w, c = images.shape
    grid = np.full(
        (rows * h + (rows + 1) * padding, cols * w + (cols + 1) * padding, c),
        pad_value,
        np.uint8,
    )
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[top : top + h, left : left + w] = images[i]
    return grid


def _write_image(array, path, scale=1):
    from PIL import Image

    if array.shape[-1] == 1:
        array = array[..., 0]
    image = Image.fromarray(array)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")


def save_grid(images, path, rows=4, cols=8, scale=1, padding=2):
    """Save images as a PNG grid (written atomically).

    Args:
        images: `(N, H, W, C)` float in [-1, 1] or uint8, N <= rows·cols.
        path: output file.
        rows: int. Defaults to 4.
        cols: int. Defaults to 8.
        scale: int, nearest-neighbour upscaling of the whole grid. Defaults to 1.
        padding: int, pixels between cells. Defaults to 2.

    Returns:
        The uint8 grid that was written.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    kd.viz.save_grid(np.random.uniform(-1, 1, (32, 16, 16, 3)), "grid.png", rows=4, cols=8)
    ```
    """
    grid = image_grid(images, rows, cols, padding=padding)
    _write_image(grid, path, scale)
    return grid


def _frames(trajectory):
    trajectory = np.asarray(trajectory)
    if trajectory.ndim != 5:
        raise ValueError(
            f"Expected a trajectory of shape (steps + 1, N, H, W, C), got {trajectory.shape}."
        )
    return trajectory


def _grid_shape(n, rows, cols):
    if rows is None and cols is None:
        cols = int(np.ceil(np.sqrt(n)))
    if cols is None:
        cols = int(np.ceil(n / rows))
    if rows is None:
        rows = int(np.ceil(n / cols))
    return rows, cols


def save_gif(
    trajectory,
    path,
    fps=20,
    duration=None,
    hold_last=1.5,
    rows=None,
    cols=None,
    max_frames=100,
    scale=1,
):
    """Save a denoising trajectory as an animated GIF (via imageio), last frame held.

    Args:
        trajectory: `(steps + 1, N, H, W, C)` from `generate(..., return_trajectory=True)`.
        path: output `.gif` file.
        fps: frames per second. Defaults to 20.
        duration: float or None, total seconds of the animation before the hold;
            overrides `fps` when given.
        hold_last: seconds the final images stay on screen. Defaults to 1.5.
        rows: int or None, grid rows of each frame; default near-square.
        cols: int or None, grid columns of each frame; default near-square.
        max_frames: int, frames kept (evenly spaced, always with the first and
            the last). Defaults to 100.
        scale: int, nearest-neighbour upscaling. Defaults to 1.

    Returns:
        The number of frames written.

    Raises:
        ValueError: for a trajectory not of rank 5 or `max_frames` < 2.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    trajectory = np.random.uniform(-1, 1, (11, 4, 16, 16, 3))
    kd.viz.save_gif(trajectory, "denoise.gif", duration=2.0)
    ```
    """
    import imageio.v3 as iio

    trajectory = _frames(trajectory)
    max_frames = check_int("max_frames", max_frames, low=2)
    keep = np.unique(
        np.round(
            np.linspace(0, len(trajectory) - 1, min(max_frames, len(trajectory)))
        ).astype(int)
    )
    rows, cols = _grid_shape(trajectory.shape[1], rows, cols)
    frames = []
    for index in keep:
        grid = image_grid(trajectory[index], rows, cols)
        if scale != 1:
            grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
        frames.append(grid if grid.shape[-1] != 1 else np.repeat(grid, 3, axis=-1))
    frame_ms = 1000.0 * (duration / len(frames) if duration else 1.0 / fps)
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms + 1000.0 * hold_last]
    with atomic_path(path) as temporary:
        iio.imwrite(
            temporary, np.stack(frames), extension=".gif", duration=durations, loop=0
        )
    return len(frames)


def save_strip(trajectory, path, frames=6, num_images=None, scale=1):
    """Save a static figure of denoising steps: one row per image, `frames` columns.

    Args:
        trajectory: `(steps + 1, N, H, W, C)`.
        path: output PNG.
        frames: int >= 2, evenly spaced steps shown, from noise to result. Defaults to 6.
        num_images: int or None, rows (default all N).
        scale: int, nearest-neighbour upscaling. Defaults to 1.

    Returns:
        The uint8 picture that was written.

    Raises:
        ValueError: for a trajectory not of rank 5 or `frames` < 2.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    kd.viz.save_strip(np.random.uniform(-1, 1, (51, 3, 16, 16, 3)), "strip.png", frames=6)
    ```
    """
    trajectory = _frames(trajectory)
    frames = check_int("frames", frames, low=2)
    n = (
        trajectory.shape[1]
        if num_images is None
        else min(int(num_images), trajectory.shape[1])
    )
    steps = np.round(
        np.linspace(0, len(trajectory) - 1, min(frames, len(trajectory)))
    ).astype(int)
    cells = (
        trajectory[steps][:, :n]
        .transpose(1, 0, 2, 3, 4)
        .reshape((-1,) + trajectory.shape[2:])
    )
    return save_grid(cells, path, rows=n, cols=len(steps), scale=scale)


def save_samples(images, trajectory, directory, scale=2):
    """Save the pictures `keras-ddpm train` ends with: a grid, a GIF and a strip.

    Writes, each atomically, into `directory` (created if missing):

    - `samples.png`: the images as a 4×8 grid;
    - `denoise.gif`: the denoising of the first 8 images, a 2×4 grid per frame,
      3 seconds long with the last frame held;
    - `denoise_strip.png`: 6 evenly spaced steps of the first 4 images.

    Args:
        images: `(N, H, W, C)` float in [-1, 1] or uint8, N <= 32.
        trajectory: `(steps + 1, N', H, W, C)` from
            `generate(..., return_trajectory=True)`.
        directory: output folder.
        scale: int, nearest-neighbour upscaling of every picture. Defaults to 2.

    Returns:
        The paths written, in the order above.

    Raises:
        ValueError: for more than 32 images, images not shaped `(N, H, W, C)`,
            or a trajectory not of rank 5.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    trajectory = np.random.uniform(-1, 1, (11, 32, 16, 16, 3))
    kd.viz.save_samples(trajectory[-1], trajectory, "samples")
    # ['samples/samples.png', 'samples/denoise.gif', 'samples/denoise_strip.png']
    ```
    """
    trajectory = _frames(trajectory)
    grid, gif, strip = (
        os.path.join(directory, name)
        for name in ("samples.png", "denoise.gif", "denoise_strip.png")
    )
    save_grid(images, grid, rows=4, cols=8, scale=scale)
    save_gif(trajectory[:, :8], gif, rows=2, cols=4, scale=scale, duration=3.0)
    save_strip(trajectory, strip, frames=6, num_images=4, scale=scale)
    return [grid, gif, strip]


def save_class_grid(
    model, path, per_class=8, classes=None, guidance_scale=1.0, scale=2, **options
):
    """Sample a class-conditional model and save one row per class as a PNG grid.

    Row i holds `per_class` samples of `classes[i]`, all drawn in one
    `model.generate` call (so the seed makes the whole grid reproducible).

    Args:
        model: a `DiffusionModel` with `num_classes`.
        path: output file (written atomically).
        per_class: int, samples per row. Defaults to 8.
        classes: sequence of int class indices, or None for every class.
        guidance_scale: float, classifier-free guidance (1: plain
            conditional). Defaults to 1.0.
        scale: int, nearest-neighbour upscaling. Defaults to 2.
        **options: passed to `model.generate` (`sampler`, `steps`, `seed`,
            `batch_size`, ...).

    Returns:
        The generated images, float32 `(len(classes) · per_class, H, W, C)`,
        row by row.

    Raises:
        ValueError: for an unconditional model, a class out of range, or a
            bad `per_class`.

    Example:

    ```python
    import keras_ddpm as kd

    net = kd.models.build_unet(16, widths=(8, 16), block_depth=1, num_classes=3)
    model = kd.DiffusionModel(net, num_classes=3, class_names=["a", "b", "c"])
    images = kd.viz.save_class_grid(model, "classes.png", per_class=4, steps=5)
    images.shape  # (12, 16, 16, 3): a row of 4 per class
    ```
    """
    per_class = check_int("per_class", per_class, low=1)
    if getattr(model, "num_classes", None) is None:
        raise ValueError(
            "save_class_grid needs a class-conditional model (one with `num_classes`)."
        )
    classes = list(range(model.num_classes) if classes is None else classes)
    if not classes:
        raise ValueError("`classes` must name at least one class.")
    labels = np.repeat(np.asarray(classes), per_class)
    images = model.generate(
        len(labels), labels=labels, guidance_scale=guidance_scale, **options
    )
    save_grid(images, path, rows=len(classes), cols=per_class, scale=scale)
    return images
