import numpy as np
import pytest

import keras_ddpm as kd

# synthetic_flowers(4, image_size=16, seed=3) as rendered before it returned
# attributes: per-image channel means and the pixel at (8, 8).
PINNED_MEANS = [
    [0.41410837, 0.27034897, 0.36919278],
    [0.57773256, 0.394978, 0.39993393],
    [0.26940426, 0.44650176, 0.39553645],
    [0.49595636, 0.50985706, 0.26236764],
]
PINNED_PIXELS = [
    [0.16345099, 0.10833658, 0.2933455],
    [0.6831432, 0.2985127, 0.55396456],
    [0.2736815, 0.45750818, 0.68047243],
    [0.7937991, 0.6244998, 0.20780988],
]

SCALARS = {
    "petals": (4, 12),
    "size": (0.55, 0.95),
    "position_y": (-0.25, 0.25),
    "position_x": (-0.25, 0.25),
    "rotation": (0, 2 * np.pi),
    "sharpness": (0.3, 3.0),
    "base": (0.0, 0.35),
    "hue": (0, 1),
    "inner_size": (0, 0.95 * 0.75),
    "disc_radius": (0.55 * 0.12, 0.95 * 0.28),
    "background_hue": (0, 1),
    "background_angle": (0, 2 * np.pi),
    "blotches": (0, 3),
}
COLOURS = ["petal_colour", "tip_colour", "disc_colour"]
COLOURS += ["background_top", "background_bottom"]


def test_images_are_unchanged_by_attributes():
    images = kd.datasets.synthetic_flowers(4, image_size=16, seed=3)
    np.testing.assert_allclose(images.mean(axis=(1, 2)), PINNED_MEANS, atol=1e-6)
    np.testing.assert_allclose(images[:, 8, 8], PINNED_PIXELS, atol=1e-6)
    with_attributes, _ = kd.datasets.synthetic_flowers(
        4, image_size=16, seed=3, return_attributes=True
    )
    assert with_attributes.tobytes() == images.tobytes()


def test_attributes_have_one_row_per_image_in_their_documented_ranges():
    _, attributes = kd.datasets.synthetic_flowers(
        200, image_size=8, seed=0, return_attributes=True
    )
    assert set(attributes) == set(SCALARS) | set(COLOURS) | {
        "inner_ring",
        "inner_colour",
    }
    for name, (low, high) in SCALARS.items():
        values = attributes[name]
        assert values.shape == (200,), name
        assert low <= values.min() and values.max() <= high, name
    assert attributes["petals"].dtype == np.int32
    assert set(np.unique(attributes["petals"])) == set(range(4, 13))
    for name in COLOURS:
        values = attributes[name]
        assert values.shape == (200, 3) and values.dtype == np.float32, name
        assert 0 <= values.min() and values.max() <= 1, name
    ring = attributes["inner_ring"]
    assert ring.dtype == bool and 0.3 < ring.mean() < 0.7
    assert np.all((attributes["inner_size"] > 0) == ring)
    assert np.all(np.isnan(attributes["inner_colour"][~ring]))
    assert np.all(np.isfinite(attributes["inner_colour"][ring]))
    size = attributes["size"]
    assert np.all(attributes["inner_size"][ring] <= 0.75 * size[ring] + 1e-6)


def test_attributes_do_not_depend_on_the_resolution():
    _, small = kd.datasets.synthetic_flowers(
        5, image_size=8, seed=4, return_attributes=True
    )
    _, large = kd.datasets.synthetic_flowers(
        5, image_size=(24, 40), seed=4, return_attributes=True
    )
    for name in small:
        np.testing.assert_array_equal(small[name], large[name], err_msg=name)


def test_attributes_describe_the_image():
    images, attributes = kd.datasets.synthetic_flowers(
        12, image_size=96, seed=5, return_attributes=True
    )
    # The pixel under the flower's centre shows the disc, its dots averaging 0.85.
    rows = np.round((attributes["position_y"] + 1) / 2 * 96 - 0.5).astype(int)
    cols = np.round((attributes["position_x"] + 1) / 2 * 96 - 0.5).astype(int)
    centre = images[np.arange(12), rows, cols]
    np.testing.assert_allclose(centre, 0.85 * attributes["disc_colour"], atol=0.12)


def test_bad_num_images_is_refused():
    with pytest.raises(ValueError, match="positive int"):
        kd.datasets.synthetic_flowers(0, return_attributes=True)
