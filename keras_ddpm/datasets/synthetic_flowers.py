"""A procedural flower dataset, rendered by the library itself (no download)."""

import colorsys

import numpy as np

from keras_ddpm.utils import check_int

_SUPERSAMPLE = 3

FLOWER_COLOURS = ("red", "yellow", "green", "cyan", "blue", "magenta")
"""The class names of `synthetic_flowers` with labels: the petals' colour family.

Class k holds the petal hues nearest to k/6 on the colour wheel (k · 60°):
the three primaries and the three secondaries, each 60° wide.
"""


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, np.clip(s, 0, 1), np.clip(v, 0, 1)))


def _background(rng, y, x):
    """A soft two-colour gradient (sky, foliage or earth tones) with blotches."""
    hue = rng.choice(
        [rng.uniform(0.2, 0.42), rng.uniform(0.52, 0.66), rng.uniform(0.05, 0.12)]
    )
    top = _hsv(hue, rng.uniform(0.2, 0.6), rng.uniform(0.25, 0.85))
    bottom = _hsv(
        hue + rng.uniform(-0.06, 0.06), rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.6)
    )
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip(0.5 + 0.5 * (np.cos(angle) * y + np.sin(angle) * x), 0, 1)[..., None]
    image = top * (1 - ramp) + bottom * ramp
    blotches = int(rng.integers(0, 4))
    for _ in range(blotches):
        cy, cx, r = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.2, 0.6)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r**2))[..., None]
        shade = _hsv(
            hue + rng.uniform(-0.1, 0.1), rng.uniform(0.2, 0.7), rng.uniform(0.1, 0.7)
        )
        image = image * (1 - 0.5 * blob) + shade * 0.5 * blob
    attributes = {
        "background_hue": hue,
        "background_top": top,
        "background_bottom": bottom,
        "background_angle": angle,
        "blotches": blotches,
    }
    return image, attributes


def _flower(rng, image, y, x):
    """Paint one radially symmetric flower over `image` (float RGB in [0, 1])."""
    size = rng.uniform(0.55, 0.95)
    cy, cx = rng.uniform(-0.25, 0.25, 2)
    petals = int(rng.integers(4, 13))
    rotation = rng.uniform(0, 2 * np.pi)
    sharpness = rng.uniform(0.3, 3.0)  # < 1: round petals, > 1: thin pointed petals
    base = rng.uniform(0.0, 0.35)  # how far petals merge near the centre
    hue = rng.uniform(0, 1)
    petal_colour = _hsv(hue, rng.uniform(0.45, 1.0), rng.uniform(0.7, 1.0))
    tip_colour = _hsv(
        hue + rng.uniform(-0.08, 0.08), rng.uniform(0.1, 0.9), rng.uniform(0.8, 1.0)
    )
    dy, dx = y - cy, x - cx
    radius = np.sqrt(dy**2 + dx**2)
    theta = np.arctan2(dy, dx)

    layers = [(size, 0.0, petal_colour, tip_colour)]
    inner_size, inner_colour = 0.0, np.full(3, np.nan)
    if rng.random() < 0.5:  # a second, inner ring of petals between the outer ones
        inner_colour = _hsv(
            hue + rng.uniform(-0.15, 0.15), rng.uniform(0.4, 1.0), rng.uniform(0.6, 1.0)
        )
        inner_size = size * rng.uniform(0.5, 0.75)
        layers.append((inner_size, np.pi / petals, inner_colour, petal_colour))
    for extent, offset, colour, tip in layers:
        profile = np.abs(np.cos(petals * (theta - rotation - offset) / 2)) ** sharpness
        edge = extent * (base + (1 - base) * profile)
        inside = radius < edge
        t = np.clip(radius / np.maximum(edge, 1e-6), 0, 1)[..., None]
        vein = 0.9 + 0.1 * np.cos(petals * 6 * (theta - rotation))[..., None]
        shade = (colour * (1 - t) + tip * t) * vein * (0.75 + 0.25 * t)
        image = np.where(inside[..., None], shade, image)

    centre = size * rng.uniform(0.12, 0.28)
    centre_colour = _hsv(
        rng.choice([rng.uniform(0.08, 0.16), rng.uniform(0.0, 1.0)]),
        rng.uniform(0.6, 1.0),
        rng.uniform(0.3, 0.9),
    )
    dots = 0.85 + 0.15 * np.sign(np.sin(radius * 90) * np.sin(theta * 13))[..., None]
    disc = (radius < centre)[..., None]
    image = np.where(
        disc, centre_colour * dots * (1 - 0.4 * radius[..., None] / centre), image
    )
    attributes = {
        "petals": petals,
        "size": size,
        "position_y": cy,
        "position_x": cx,
        "rotation": rotation,
        "sharpness": sharpness,
        "base": base,
        "hue": hue,
        "petal_colour": petal_colour,
        "tip_colour": tip_colour,
        "inner_ring": inner_size > 0,
        "inner_size": inner_size,
        "inner_colour": inner_colour,
        "disc_radius": centre,
        "disc_colour": centre_colour,
    }
    return image, attributes


def _render(seed, image_size):
    """One flower image and the parameters it was drawn with."""
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    rng = np.random.default_rng(seed)
    s = _SUPERSAMPLE
    y, x = np.meshgrid(
        (np.arange(height * s) + 0.5) / (height * s) * 2 - 1,
        (np.arange(width * s) + 0.5) / (width * s) * 2 - 1,
        indexing="ij",
    )
    background, background_attributes = _background(rng, y, x)
    image, attributes = _flower(rng, background, y, x)
    image = image.reshape(height, s, width, s, 3).mean(axis=(1, 3))  # antialiasing
    return np.clip(image, 0, 1).astype(np.float32), attributes | background_attributes


def render_flower(seed, image_size=64):
    """Render one flower image, deterministic from `seed`.

    Args:
        seed: int, the image's seed.
        image_size: int or `(height, width)`. Defaults to 64.

    Returns:
        float32 numpy array `(height, width, 3)` in [0, 1].

    Example:

    ```python
    import keras_ddpm as kd

    kd.datasets.render_flower(seed=7, image_size=(48, 64)).shape  # (48, 64, 3)
    ```
    """
    return _render(seed, image_size)[0]


def flower_colour(hue):
    """The colour family (class index into `FLOWER_COLOURS`) of petal hues.

    The families are the six 60° sectors of the colour wheel centred on red
    (hue 0), yellow (1/6), green (1/3), cyan (1/2), blue (2/3) and magenta
    (5/6); a hue goes to the nearest centre (hues wrap around at 1).

    Args:
        hue: float or array of floats, hues in [0, 1) (others are wrapped).

    Returns:
        int32 numpy array of the shape of `hue`, values in 0–5.

    Raises:
        ValueError: if a hue is not finite.

    Example:

    ```python
    import keras_ddpm as kd

    _, attributes = kd.datasets.synthetic_flowers(
        4, image_size=16, return_attributes=True
    )
    labels = kd.datasets.flower_colour(attributes["hue"])  # int32, (4,)
    [kd.datasets.FLOWER_COLOURS[k] for k in labels]  # e.g. ['blue', 'red', ...]
    ```
    """
    hue = np.asarray(hue, np.float64)
    if not np.all(np.isfinite(hue)):
        raise ValueError("Hues must be finite numbers, got NaN or infinity.")
    sectors = len(FLOWER_COLOURS)
    return (np.floor(np.mod(hue, 1.0) * sectors + 0.5) % sectors).astype(np.int32)


# Attributes that are integers or booleans; all others are float32.
_INTEGER_ATTRIBUTES = {"petals": np.int32, "blotches": np.int32, "inner_ring": bool}


def synthetic_flowers(num_images, image_size=64, seed=0, return_attributes=False):
    """Render `num_images` procedural flowers as a float32 array in [0, 1].

    Each flower is radially symmetric, with a random petal count (4–12), petal
    shape, colours, size, rotation, centre, optional inner ring and a background
    gradient. Image `i` depends only on `(seed, i)`, at any resolution.

    With `return_attributes=True` the parameters each image was drawn with
    come too (the same draws: the images are identical either way), as a dict
    of arrays with one row per image. Positions and lengths are in image
    coordinates, [-1, 1] from top to bottom and left to right; angles in
    radians; colours RGB in [0, 1]; hues in [0, 1). `flower_colour(hue)` gives
    each flower's class for conditional training, its petals' colour family
    (`FLOWER_COLOURS`), as `kd.datasets.load(..., labels=True)` does.

    - `petals` (int32): petal count, 4–12.
    - `size`: the petals' outer radius, 0.55–0.95.
    - `position_y`, `position_x`: the flower's centre, each in [-0.25, 0.25].
    - `rotation`: the petals' angle, in [0, 2π) (the flower repeats every
      2π/petals).
    - `sharpness`: the petal profile's exponent, 0.3–3 (below 1 round petals,
      above 1 thin pointed ones).
    - `base`: how far petals merge near the centre, 0–0.35 of `size`.
    - `hue`: the petals' hue; `petal_colour`, `tip_colour` `(N, 3)`: the
      colours at the base and at the tip of the outer petals.
    - `inner_ring` (bool): whether an inner ring of petals, turned half a
      petal, is drawn; `inner_size` its radius (0 without one) and
      `inner_colour` `(N, 3)` its colour (NaN without one).
    - `disc_radius`, `disc_colour` `(N, 3)`: the central disc.
    - `background_hue`; `background_top`, `background_bottom` `(N, 3)`: the
      gradient's two colours; `background_angle`: its direction;
      `blotches` (int32): how many soft blotches are painted over it, 0–3.

    Args:
        num_images: int, how many images.
        image_size: int or `(height, width)`. Defaults to 64.
        seed: int, the dataset's seed. Defaults to 0.
        return_attributes: bool, also return the parameters of each image.
            Defaults to False.

    Returns:
        float32 numpy array `(num_images, height, width, 3)` in [0, 1]; with
        `return_attributes=True`, the tuple `(images, attributes)`.

    Raises:
        ValueError: if `num_images` is not a positive int.

    Example:

    ```python
    import keras_ddpm as kd

    flowers = kd.datasets.synthetic_flowers(8, image_size=32, seed=0)
    flowers.shape  # (8, 32, 32, 3)
    flowers, attributes = kd.datasets.synthetic_flowers(
        8, image_size=32, seed=0, return_attributes=True
    )
    attributes["petals"]  # int32 array (8,), values in 4..12
    attributes["petal_colour"].shape  # (8, 3)
    ```
    """
    num_images = check_int("num_images", num_images, low=1)
    rendered = _render_range(num_images, image_size, seed, 0, num_images)
    images = np.stack([image for image, _ in rendered])
    if not return_attributes:
        return images
    attributes = {
        name: np.array(
            [a[name] for _, a in rendered],
            dtype=_INTEGER_ATTRIBUTES.get(name, np.float32),
        )
        for name in rendered[0][1]
    }
    return images, attributes


def _render_range(num_images, image_size, seed, start, stop):
    """`(image, attributes)` of images `start`…`stop − 1` of `synthetic_flowers(num_images, ...)`.

    Image i depends only on `(seed, i)`, so a split renders only its own images.
    """
    seeds = np.random.SeedSequence(seed).spawn(int(num_images))[start:stop]
    return [_render(s.generate_state(1)[0], image_size) for s in seeds]
