"""What the web demo computes, without any web framework: grids, animations, reconstructions."""

import os

import numpy as np

from keras_ddpm.models import sampling
from keras_ddpm.models.guidance_interval import guidance_conditioning
from keras_ddpm.utils import check_int
from keras_ddpm.viz.images import _grid_shape, image_grid, save_gif

# Tiles are enlarged (nearest neighbour) to about this many pixels on screen.
DISPLAY_PIXELS = 128


def display_scale(image_shape):
    """The integer upscaling the demo applies to a model's images for display.

    Args:
        image_shape: `(H, W, C)` of the model's images.

    Returns:
        int >= 1: `DISPLAY_PIXELS // max(H, W)`, at least 1.

    Example:

    ```python
    from keras_ddpm.demo import display_scale

    display_scale((32, 32, 3))  # 4
    ```
    """
    return max(1, DISPLAY_PIXELS // max(image_shape[:2]))


def _enlarge(grid, scale):
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid[..., 0] if grid.shape[-1] == 1 else grid


def model_summary(model, name=None):
    """The facts about a `DiffusionModel` the demo shows next to its controls.

    Args:
        model: a `DiffusionModel`.
        name: str or None, a display name (e.g. the model file's name).

    Returns:
        A dict of display strings: `image size`, `schedule`, `prediction`,
        `training steps`, `parameters`, `EMA`, `backend` (and `model` when
        `name` is given, `classes` for a class-conditional model).

    Example:

    ```python
    import keras_ddpm as kd
    from keras_ddpm.demo import model_summary

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model_summary(kd.DiffusionModel(net, schedule="cosine"))["image size"]  # '8×8×3'
    ```
    """
    import keras

    height, width, channels = model.image_shape
    schedule = model.schedule.get_config()
    schedule_name = type(model.schedule).__name__.replace("Schedule", "").lower()
    details = ", ".join(
        f"{k}={v}" for k, v in schedule.items() if k not in ("timesteps", "name")
    )
    summary = {} if name is None else {"model": str(name)}
    summary.update(
        {
            "image size": f"{height}×{width}×{channels}",
            "schedule": f"{schedule_name}, T = {model.schedule.timesteps}"
            + (f" ({details})" if details else ""),
            "prediction": model.prediction,
            "training steps": f"{int(keras.ops.convert_to_numpy(model.ema_updates.value)):,}",
            "parameters": f"{model.network.count_params():,}",
            "EMA": "none"
            if model.ema_momentum is None
            else f"momentum {model.ema_momentum} (used for sampling)",
            "backend": keras.backend.backend(),
        }
    )
    if model.num_classes is not None:
        names = list(model.class_names or [])
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        summary["classes"] = f"{model.num_classes}" + (f" ({shown})" if names else "")
    return summary


def generate_progressively(
    model,
    num_images,
    sampler="ddim",
    steps=50,
    seed=0,
    batch_size=4,
    max_frames=24,
    labels=None,
    guidance_scale=1.0,
    guide=None,
    guide_scale=None,
    guidance_interval=None,
):
    """Generate images a batch at a time, yielding the grid as it fills in.

    It runs exactly what `DiffusionModel.generate` runs (the same initial
    noise, the same noise stream per batch), so the final grid equals
    `model.generate(num_images, ..., seed=seed, batch_size=batch_size)`, for
    every sampler. Tiles not generated yet show their initial noise. Every
    batch has the same size (the last one is padded), so one compiled sampling
    loop serves them all. Stopping the iteration between batches stops the work.

    Args:
        model: a `DiffusionModel`.
        num_images: int >= 1.
        sampler: a sampler name or config dict, e.g. `{"name": "ddim", "eta": 0}`.
        steps: int, denoising steps.
        seed: int >= 0.
        batch_size: int >= 1, images per compiled call. Defaults to 4.
        max_frames: int >= 2, evenly spaced denoising frames kept for the
            animation. Defaults to 24.
        labels: None, an int or one label per image: the class of a
            conditional model, as in `generate`. Defaults to None.
        guidance_scale: float, classifier-free guidance of a conditional
            model. Defaults to 1.0.
        guide: a `DiffusionModel` to guide the model with (autoguidance), as
            in `generate`. Defaults to None.
        guide_scale: float or None, the autoguidance scale, as in
            `generate`. Defaults to None.
        guidance_interval: None or `(low, high)` timesteps, the guided
            steps, as in `generate`. Defaults to None.

    Yields:
        `(done, grid, trajectory)`: images finished so far; the uint8 grid
        (near-square, 2 px padding, enlarged by `display_scale`); and, only in
        the last item, the kept frames `(frames, num_images, H, W, C)` in
        [-1, 1] (None before).

    Raises:
        ValueError: for counts, steps, seeds or a guide the model rejects.

    Example:

    ```python
    import keras_ddpm as kd
    from keras_ddpm.demo import generate_progressively

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    for done, grid, trajectory in generate_progressively(model, 3, steps=2, batch_size=2):
        print(done, grid.shape)  # 2 (352, 352, 3), then 3 (352, 352, 3)
    ```
    """
    num_images = check_int("num_images", num_images, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    seed = check_int("seed", seed, low=0)
    conditioning = guidance_conditioning(
        model, num_images, labels, guidance_scale, guide, guide_scale, guidance_interval
    )
    shape = model.image_shape
    scale = display_scale(shape)
    rows, cols = _grid_shape(num_images, None, None)
    noise = np.random.default_rng(seed).standard_normal(
        (num_images,) + shape, dtype=np.float32
    )
    images = np.clip(noise, -1.0, 1.0)
    kept, frames = None, []
    chunks = sampling.sample_chunks(
        model,
        noise,
        sampler=sampler,
        steps=steps,
        seed=seed,
        return_trajectory=True,
        batch_size=batch_size,
        conditioning=conditioning,
        guide=guide,
    )
    for begin, result, trajectory in chunks:
        if kept is None:
            kept = np.unique(
                np.round(
                    np.linspace(
                        0, len(trajectory) - 1, min(max_frames, len(trajectory))
                    )
                ).astype(int)
            )
        done = begin + len(result)
        images[begin:done] = np.clip(result, -1.0, 1.0)
        frames.append(np.clip(trajectory[kept], -1.0, 1.0))
        grid = _enlarge(image_grid(images, rows, cols), scale)
        final = done == num_images
        yield done, grid, np.concatenate(frames, axis=1) if final else None


def save_animation(trajectory, path, image_shape=None):
    """Write kept denoising frames as a GIF in the demo's grid layout.

    Args:
        trajectory: `(frames, N, H, W, C)` in [-1, 1], as yielded last by
            `generate_progressively`.
        path: output `.gif` file.
        image_shape: `(H, W, C)` used for `display_scale`; defaults to the
            trajectory's.

    Returns:
        `path`.

    Example:

    ```python
    import numpy as np
    from keras_ddpm.demo import save_animation

    save_animation(np.random.uniform(-1, 1, (5, 4, 8, 8, 3)), "denoise.gif")
    ```
    """
    trajectory = np.asarray(trajectory)
    shape = trajectory.shape[2:] if image_shape is None else image_shape
    rows, cols = _grid_shape(trajectory.shape[1], None, None)
    save_gif(
        trajectory,
        path,
        duration=2.0,
        hold_last=2.0,
        rows=rows,
        cols=cols,
        scale=display_scale(shape),
    )
    return os.fspath(path)


def fit_image(image, image_shape):
    """An uploaded picture as a model input: center crop, resize, scale to [-1, 1].

    Args:
        image: uint8 array `(H, W)`, `(H, W, 1)`, `(H, W, 3)` or `(H, W, 4)`
            (alpha is dropped), of any size.
        image_shape: `(H, W, C)` the model expects, C in (1, 3).

    Returns:
        float32 array `image_shape` in [-1, 1].

    Raises:
        ValueError: for anything that is not a 2-D picture with 1, 3 or 4 channels.

    Example:

    ```python
    import numpy as np
    from keras_ddpm.demo import fit_image

    fit_image(np.zeros((60, 80, 3), np.uint8), (32, 32, 3)).shape  # (32, 32, 3)
    ```
    """
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if (
        array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[-1] not in (3, 4))
        or min(array.shape[:2]) < 1
    ):
        raise ValueError(
            f"Expected a picture (H, W) or (H, W, C) with C in (1, 3, 4), got shape {array.shape}."
        )
    if array.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 picture, got dtype {array.dtype}.")
    picture = Image.fromarray(array[..., :3] if array.ndim == 3 else array)
    height, width, channels = image_shape
    picture = picture.convert("L" if channels == 1 else "RGB")
    # Largest centered crop with the model's aspect ratio, then an antialiased resize.
    scale = min(picture.width / width, picture.height / height)
    crop_w, crop_h = round(scale * width), round(scale * height)
    left, top = (picture.width - crop_w) // 2, (picture.height - crop_h) // 2
    picture = picture.crop((left, top, left + crop_w, top + crop_h)).resize(
        (width, height), Image.Resampling.LANCZOS
    )
    result = np.asarray(picture, dtype=np.float32) / 127.5 - 1.0
    return result.reshape(image_shape)


def reconstruct_picture(model, image, t, sampler="ddim", steps=50, seed=0):
    """Noise an uploaded picture to step `t` and denoise it back, for display.

    Args:
        model: a `DiffusionModel`.
        image: uint8 picture of any size (see `fit_image`).
        t: int in [0, T − 1], the step to noise to.
        sampler: a sampler name or config dict.
        steps: int in [1, t + 1], denoising steps.
        seed: int >= 0, the noise added and drawn while sampling.

    Returns:
        A uint8 strip of three tiles, enlarged by `display_scale`: the input
        (cropped and resized to the model's size), the noised x_t, and the
        reconstruction.

    Raises:
        ValueError: for a bad picture, `t`, `steps` or seed.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd
    from keras_ddpm.demo import reconstruct_picture

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    picture = np.zeros((30, 40, 3), np.uint8)
    reconstruct_picture(model, picture, t=10, steps=3).shape  # (192, 512, 3)
    ```
    """
    original = fit_image(image, model.image_shape)[None]
    restored, trajectory = model.reconstruct(
        original,
        t,
        sampler=sampler,
        steps=steps,
        seed=seed,
        return_trajectory=True,
        batch_size=1,
    )
    tiles = np.concatenate([original, trajectory[0], restored])
    return _enlarge(image_grid(tiles, 1, 3), display_scale(model.image_shape))


def painted_mask(layers, size):
    """The inpainting mask of strokes painted in an image editor: 255 keep, 0 fill in.

    A pixel is filled in where any layer's stroke covers it (alpha > 0), and
    kept everywhere else.

    Args:
        layers: a list of the editor's RGBA layers, uint8 `(H, W, 4)`, each the
            size of the picture; `(H, W, 3)` or `(H, W)` layers count every
            non-black pixel as painted.
        size: `(H, W)` of the picture, used when there is no layer.

    Returns:
        uint8 array `(H, W)`: 255 where the pixel is kept, 0 where it is
        filled in.

    Raises:
        ValueError: for a layer whose size is not the picture's.

    Example:

    ```python
    import numpy as np
    from keras_ddpm.demo import painted_mask

    stroke = np.zeros((4, 6, 4), np.uint8)
    stroke[1:3, 2:4] = (255, 0, 255, 255)
    painted_mask([stroke], (4, 6))[1]  # array([255, 255,   0,   0, 255, 255], dtype=uint8)
    ```
    """
    painted = np.zeros(tuple(size), bool)
    for layer in layers or ():
        layer = np.asarray(layer)
        if layer.shape[:2] != painted.shape:
            raise ValueError(
                f"Expected painted layers of the picture's size {painted.shape}, "
                f"got {layer.shape[:2]}."
            )
        if layer.ndim == 3 and layer.shape[-1] == 4:
            painted |= layer[..., 3] > 0
        else:
            painted |= (layer.reshape(painted.shape + (-1,)) > 0).any(axis=-1)
    return np.where(painted, 0, 255).astype(np.uint8)


def inpaint_picture(
    model,
    image,
    mask,
    sampler="ddpm",
    steps=50,
    jump_length=5,
    jump_n_sample=5,
    num_images=1,
    seed=0,
):
    """Fill in the painted region of an uploaded picture (RePaint), for display.

    The picture and its mask are center-cropped and resized to the model's
    size together (`fit_image`); a model pixel is filled in when at least
    half of it was painted.

    Args:
        model: a `DiffusionModel`.
        image: uint8 picture of any size (see `fit_image`).
        mask: uint8 `(H, W)` of the picture's size: 255 (or any value >= 128)
            keeps the pixel, 0 fills it in, as made by `painted_mask`.
        sampler: a sampler of the linear step rule (`"ddpm"`, `"ddim"`, ...),
            name or config dict.
        steps: int, the sampler's steps.
        jump_length: int in [1, steps], steps per jump back.
        jump_n_sample: int >= 1, walks over each stretch (1: no resampling).
        num_images: int >= 1, fillings drawn.
        seed: int >= 0.

    Returns:
        A uint8 strip enlarged by `display_scale`: the input (at the model's
        size), the region to fill shown grey, then each filling.

    Raises:
        ValueError: for a bad picture or mask, a mask that fills in nothing,
            or sampling settings `model.inpaint` refuses.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd
    from keras_ddpm.demo import inpaint_picture

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    picture = np.zeros((30, 40, 3), np.uint8)
    mask = np.full((30, 40), 255, np.uint8)
    mask[10:20, 15:25] = 0
    inpaint_picture(model, picture, mask, steps=4, jump_length=2, jump_n_sample=2).shape
    # (192, 512, 3)
    ```
    """
    num_images = check_int("num_images", num_images, low=1)
    original = fit_image(image, model.image_shape)
    mask = np.asarray(mask)
    if mask.shape != np.asarray(image).shape[:2] or mask.dtype != np.uint8:
        raise ValueError(
            f"Expected a uint8 mask of the picture's size {np.asarray(image).shape[:2]}, "
            f"got {mask.dtype} {mask.shape}."
        )
    height, width, _ = model.image_shape
    keep = fit_image(mask, (height, width, 1)) >= 0.0  # at least half kept
    if keep.all():
        raise ValueError("Paint over the region to fill in first.")
    keep = keep.astype(np.float32)
    filled = model.inpaint(
        np.repeat(original[None], num_images, axis=0),
        keep,
        sampler=sampler,
        steps=steps,
        jump_length=jump_length,
        jump_n_sample=jump_n_sample,
        seed=seed,
    )
    tiles = np.concatenate([original[None], (keep * original)[None], filled])
    return _enlarge(image_grid(tiles, 1, len(tiles)), display_scale(model.image_shape))
