import json

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import keras_ddpm as kd


def test_image_grid_places_cells_row_by_row():
    images = np.stack([np.full((2, 3, 3), v, np.uint8) for v in (10, 20, 30, 40, 50)])
    grid = kd.viz.image_grid(images, rows=2, cols=3, padding=1, pad_value=0)
    assert grid.shape == (2 * 2 + 3, 3 * 3 + 4, 3) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 10 and grid[1, 5, 0] == 20 and grid[1, 9, 0] == 30
    assert (
        grid[4, 1, 0] == 40 and grid[4, 5, 0] == 50 and grid[4, 9, 0] == 0
    )  # empty cell
    floats = kd.viz.image_grid(
        np.array([[[[-1.0]]], [[[1.0]]]]), rows=1, cols=2, padding=0
    )
    assert floats[0, :, 0].tolist() == [0, 255]
    with pytest.raises(ValueError, match="Got 5 images for a 2×2 grid"):
        kd.viz.image_grid(images, rows=2, cols=2)
    with pytest.raises(ValueError, match=r"Expected images of shape \(N, H, W, C\)"):
        kd.viz.image_grid(np.zeros((2, 2)), rows=1, cols=2)
    with pytest.raises(ValueError, match="`cols` must be a positive int, got True"):
        kd.viz.image_grid(images, rows=5, cols=True)
    assert kd.viz.image_grid(images, np.int64(2), 3, padding=1).shape == grid.shape


def test_save_grid_png(tmp_path):
    path = tmp_path / "grid.png"
    kd.viz.save_grid(np.zeros((32, 8, 8, 3), np.float32), path, rows=4, cols=8, scale=2)
    with Image.open(path) as image:
        assert image.size == (2 * (8 * 8 + 9 * 2), 2 * (4 * 8 + 5 * 2))
    assert [p.name for p in tmp_path.iterdir()] == [
        "grid.png"
    ]  # no temporary left behind


def test_save_gif_holds_last_frame(tmp_path):
    trajectory = np.linspace(-1, 1, 11)[:, None, None, None, None] * np.ones(
        (11, 4, 8, 8, 3)
    )
    path = tmp_path / "denoise.gif"
    count = kd.viz.save_gif(trajectory, path, fps=10, hold_last=2.0)
    frames = iio.imread(path, index=None)
    assert count == 11 and frames.shape[0] == 11
    assert (
        frames[0][2:10, 2:10].mean() < 10 and frames[-1][2:10, 2:10].mean() > 245
    )  # first → last
    with Image.open(path) as gif:
        gif.seek(0)
        first = gif.info["duration"]
        gif.seek(10)
        last = gif.info["duration"]
    assert first == pytest.approx(100, abs=10) and last == pytest.approx(2100, abs=20)
    assert (
        kd.viz.save_gif(
            np.zeros((500, 1, 4, 4, 3)), tmp_path / "long.gif", max_frames=20
        )
        == 20
    )
    with pytest.raises(ValueError, match="trajectory of shape"):
        kd.viz.save_gif(np.zeros((3, 4, 4, 3)), tmp_path / "x.gif")


def test_save_strip(tmp_path):
    trajectory = np.random.default_rng(0).uniform(-1, 1, (51, 3, 8, 8, 3))
    strip = kd.viz.save_strip(
        trajectory, tmp_path / "strip.png", frames=6, num_images=2
    )
    assert strip.shape == (2 * 8 + 3 * 2, 6 * 8 + 7 * 2, 3)
    expected = kd.viz.to_uint8(trajectory[50, 1])
    np.testing.assert_array_equal(strip[2 + 10 : 2 + 10 + 8, -10:-2], expected)


def test_plot_history(tmp_path):
    history = {
        "loss": [0.5, 0.3, 0.2],
        "val_loss": [0.6, 0.4, 0.3],
        "val_kid": [0.4, 0.3, 0.2],
    }
    (tmp_path / "history.json").write_text(json.dumps(history))
    plotted = kd.viz.plot_history(str(tmp_path / "history.json"), tmp_path / "loss.png")
    assert plotted == ["loss", "val_loss", "val_kid"]
    with Image.open(tmp_path / "loss.png") as image:
        assert image.size[0] > 1000  # two panels side by side
    with pytest.raises(ValueError, match="no metric values"):
        kd.viz.plot_history({}, tmp_path / "empty.png")


def test_save_samples_writes_grid_gif_and_strip(tmp_path):
    trajectory = np.random.default_rng(1).uniform(-1, 1, (21, 32, 6, 6, 3))
    images = trajectory[-1]
    paths = kd.viz.save_samples(images, trajectory, tmp_path / "out")
    names = ["samples.png", "denoise.gif", "denoise_strip.png"]
    assert [str(p) for p in paths] == [str(tmp_path / "out" / n) for n in names]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    # The grid is image_grid's 4×8 tiling of the images, upscaled twice.
    expected = kd.viz.image_grid(images, 4, 8).repeat(2, axis=0).repeat(2, axis=1)
    np.testing.assert_array_equal(np.asarray(Image.open(paths[0])), expected)
    # Every step is a frame (21 < max_frames); each frame is a 2×4 grid of 8 images.
    frames = iio.imread(paths[1], index=None)
    assert frames.shape == (21, 2 * (2 * 6 + 3 * 2), 2 * (4 * 6 + 5 * 2), 3)
    with Image.open(paths[2]) as strip:  # 4 images × 6 steps
        assert strip.size == (2 * (6 * 6 + 7 * 2), 2 * (4 * 6 + 5 * 2))
    with pytest.raises(ValueError, match="33 images for a 4×8 grid"):
        kd.viz.save_samples(np.zeros((33, 6, 6, 3)), trajectory, tmp_path)
    with pytest.raises(ValueError, match="trajectory of shape"):
        kd.viz.save_samples(images, images, tmp_path)
