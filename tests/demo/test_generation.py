"""The computations behind the web demo, without a server: grids, animations, reconstructions."""

import numpy as np
import pytest
from PIL import Image

import keras_ddpm as kd
from keras_ddpm.demo import (
    display_scale,
    fit_image,
    generate_progressively,
    inpaint_picture,
    model_summary,
    painted_mask,
    reconstruct_picture,
    save_animation,
)
from keras_ddpm.models import sampling

SIZE, SCALE = 8, 16  # 8×8 images are shown 16× larger (128 px tiles)


@pytest.fixture(scope="module")
def model():
    net = kd.models.build_unet(
        image_size=SIZE, widths=(8,), block_depth=1, attention_levels=()
    )
    return kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20}, seed=0)


def enlarged_grid(images, rows, cols):
    """The demo's display of `images`, built here from numpy and kd.viz."""
    grid = kd.viz.image_grid(images, rows, cols)
    return np.repeat(np.repeat(grid, SCALE, axis=0), SCALE, axis=1)


def test_display_scale():
    assert display_scale((32, 32, 3)) == 4
    assert display_scale((SIZE, SIZE, 3)) == SCALE
    assert display_scale((64, 32, 1)) == 2
    assert display_scale((256, 256, 3)) == 1


def test_grid_fills_in_batch_by_batch_and_matches_generate(model):
    updates = list(
        generate_progressively(
            model,
            5,
            sampler={"name": "ddim", "eta": 0.0},
            steps=3,
            seed=7,
            batch_size=2,
        )
    )
    assert [done for done, _, _ in updates] == [2, 4, 5]
    assert [trajectory is None for _, _, trajectory in updates] == [True, True, False]
    # DDIM with η = 0 is deterministic: the same seed gives model.generate's images.
    reference = model.generate(5, sampler="ddim", steps=3, seed=7)
    final = updates[-1][1]
    assert final.shape == (SCALE * (2 * SIZE + 6), SCALE * (3 * SIZE + 8), 3)
    assert (
        np.abs(final.astype(int) - enlarged_grid(reference, 2, 3).astype(int)).max()
        <= 1
    )
    # Before its batch runs, a tile shows its initial noise: N(0, I) drawn from the seed.
    noise = np.random.default_rng(7).standard_normal((5, SIZE, SIZE, 3), np.float32)
    first = enlarged_grid(np.concatenate([reference[:2], noise[2:]]), 2, 3)
    assert np.abs(updates[0][1].astype(int) - first.astype(int)).max() <= 1
    # Kept frames: all 4 (steps + 1), from the noise to the final images.
    trajectory = updates[-1][2]
    assert trajectory.shape == (4, 5, SIZE, SIZE, 3)
    np.testing.assert_allclose(trajectory[0], np.clip(noise, -1, 1), atol=1e-6)
    np.testing.assert_allclose(trajectory[-1], reference, atol=1e-4)


def record_chunks(monkeypatch):
    """Record the padded image chunks the sampling module hands to its program."""
    shapes = []
    original = sampling.padded_chunks

    def recording(arrays, batch_size, **kwargs):
        for begin, size, parts in original(arrays, batch_size, **kwargs):
            shapes.append(parts[0].shape)
            yield begin, size, parts

    monkeypatch.setattr(sampling, "padded_chunks", recording)
    return shapes


def test_stopping_between_batches_stops_the_work(model, monkeypatch):
    calls = record_chunks(monkeypatch)
    updates = generate_progressively(model, 6, steps=2, seed=0, batch_size=2)
    done, _, _ = next(updates)
    updates.close()  # what cancelling a request does to the generator
    assert done == 2
    assert calls == [(2, SIZE, SIZE, 3)]


def test_last_batch_is_padded_to_reuse_one_compiled_loop(model, monkeypatch):
    shapes = record_chunks(monkeypatch)
    list(generate_progressively(model, 5, steps=2, seed=0, batch_size=4))
    assert [shape[0] for shape in shapes] == [4, 4]


def test_stochastic_grid_equals_generate_with_the_same_batches(model):
    *_, (_, grid, _) = generate_progressively(
        model, 5, sampler="ddpm", steps=3, seed=4, batch_size=2
    )
    reference = model.generate(5, sampler="ddpm", steps=3, seed=4, batch_size=2)
    assert (
        np.abs(grid.astype(int) - enlarged_grid(reference, 2, 3).astype(int)).max() <= 1
    )


def test_frames_are_capped_evenly(model):
    *_, (_, _, trajectory) = generate_progressively(
        model, 1, sampler="ddpm", steps=9, seed=0, max_frames=4
    )
    # Frames 0, 3, 6 and 9 of the 10 (steps + 1): evenly spaced, first and last kept.
    assert trajectory.shape == (4, 1, SIZE, SIZE, 3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_images=0), "num_images"),
        (dict(batch_size=0), "batch_size"),
        (dict(seed=-1), "seed"),
        (dict(steps=21), "steps"),
    ],
)
def test_bad_arguments(model, kwargs, message):
    arguments = dict(num_images=2, steps=2, seed=0, batch_size=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        next(generate_progressively(model, **arguments))


def test_animation_is_a_gif_of_the_grid(tmp_path):
    trajectory = np.random.default_rng(0).uniform(-1, 1, (6, 3, SIZE, SIZE, 3))
    path = save_animation(trajectory, tmp_path / "denoise.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 6
        assert gif.size == (SCALE * (2 * SIZE + 6), SCALE * (2 * SIZE + 6))
        gif.seek(5)
        last = np.asarray(gif.convert("RGB"))
    expected = enlarged_grid(trajectory[-1], 2, 2)
    # GIF palettes quantise colours; the picture is still the last frame's grid.
    assert np.abs(last.astype(int) - expected.astype(int)).mean() < 12


def split_picture(height, width):
    """A picture whose centred square is white on the left, black on the right,
    with red bands outside that square (a correct crop drops them)."""
    picture = np.zeros((height, width, 3), np.uint8)
    margin = (width - height) // 2
    picture[:, :margin] = picture[:, width - margin :] = (255, 0, 0)
    picture[:, margin : margin + height // 2] = 255
    return picture


def test_fit_image_crops_the_centre_and_resizes():
    image = fit_image(split_picture(60, 80), (SIZE, SIZE, 3))
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[:, :3], 1.0, atol=0.02)  # white, no red
    np.testing.assert_allclose(image[:, -3:], -1.0, atol=0.02)  # black, no red


def test_fit_image_converts_channels():
    grey = np.full((10, 10), 255, np.uint8)
    np.testing.assert_allclose(fit_image(grey, (4, 4, 3)), 1.0, atol=1e-6)
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent: alpha is dropped
    np.testing.assert_allclose(
        fit_image(rgba, (4, 4, 3))[0, 0], [1.0, -1.0, -1.0], atol=1e-6
    )
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    # ITU-R 601 luma, as PIL converts: L = 0.299 R + 0.587 G + 0.114 B.
    luma = fit_image(red, (4, 4, 1))
    assert luma.shape == (4, 4, 1)
    np.testing.assert_allclose(luma, round(0.299 * 255) / 127.5 - 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "picture,message",
    [
        (np.zeros((4, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 3), np.float32), "uint8"),
    ],
)
def test_fit_image_rejects_non_pictures(picture, message):
    with pytest.raises(ValueError, match=message):
        fit_image(picture, (SIZE, SIZE, 3))


def test_reconstruction_strip(model):
    picture = split_picture(30, 40)
    t, seed = 12, 5
    strip = reconstruct_picture(
        model, picture, t=t, sampler={"name": "ddim", "eta": 0.0}, steps=4, seed=seed
    )
    assert strip.shape == (SCALE * (SIZE + 4), SCALE * (3 * SIZE + 8), 3)
    original = fit_image(picture, (SIZE, SIZE, 3))
    # q(x_t | x_0) in closed form: sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, ε drawn from the seed.
    alpha_bar = model.schedule.alphas_cumprod[t]
    noise = np.random.default_rng(seed).standard_normal((1, SIZE, SIZE, 3), np.float32)
    noised = np.sqrt(alpha_bar) * original + np.sqrt(1 - alpha_bar) * noise
    restored = model.reconstruct(original[None], t, sampler="ddim", steps=4, seed=seed)
    expected = enlarged_grid(
        np.concatenate([original[None], np.clip(noised, -1, 1), restored]), 1, 3
    )
    assert np.abs(strip.astype(int) - expected.astype(int)).max() <= 1


def test_reconstruction_rejects_bad_t(model):
    with pytest.raises(ValueError, match="`t` must be an int in"):
        reconstruct_picture(model, np.zeros((8, 8, 3), np.uint8), t=20, steps=1)


def test_model_summary(model):
    model.ema_updates.assign(1234)
    summary = model_summary(model, "flowers.keras")
    assert summary["model"] == "flowers.keras"
    assert summary["image size"] == "8×8×3"
    assert summary["schedule"].startswith("linear, T = 20")
    assert summary["training steps"] == "1,234"
    assert summary["parameters"] == f"{model.network.count_params():,}"
    assert summary["prediction"] == "epsilon"
    assert "0.999" in summary["EMA"]
    model.ema_updates.assign(0)


def test_painted_mask_fills_in_wherever_a_layer_has_a_stroke():
    first = np.zeros((6, 10, 4), np.uint8)
    first[1:3, 2:5] = (255, 0, 255, 255)
    second = np.zeros((6, 10, 4), np.uint8)
    second[4, 7:9, 3] = 1  # a faint edge still counts as painted
    second[0, 0, :3] = 200  # colour without alpha is not a stroke
    mask = painted_mask([first, second], (6, 10))
    expected = np.full((6, 10), 255, np.uint8)
    expected[1:3, 2:5] = 0
    expected[4, 7:9] = 0
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(painted_mask([], (3, 4)), np.full((3, 4), 255))
    with pytest.raises(ValueError, match=r"picture's size \(6, 10\), got \(5, 10\)"):
        painted_mask([first[:5]], (6, 10))


def test_inpainting_strip_keeps_the_unpainted_pixels(model):
    picture = split_picture(30, 40)  # centred 30×30: white left, black right
    mask = np.full((30, 40), 255, np.uint8)
    mask[:15, 20:35] = 0  # the top of the black half, in the picture's pixels
    strip = inpaint_picture(
        model,
        picture,
        mask,
        sampler="ddpm",
        steps=4,
        jump_length=2,
        jump_n_sample=2,
        num_images=2,
        seed=3,
    )
    assert strip.shape == (SCALE * (SIZE + 4), SCALE * (4 * SIZE + 10), 3)
    original = fit_image(picture, (SIZE, SIZE, 3))
    # The picture's crop is columns 5..35: the mask's hole is model pixels
    # rows 0..3, columns 4..7 (at least half of each painted).
    keep = np.ones((SIZE, SIZE, 1), np.float32)
    keep[:4, 4:] = 0.0
    filled = model.inpaint(
        np.repeat(original[None], 2, axis=0),
        keep,
        sampler="ddpm",
        steps=4,
        jump_length=2,
        jump_n_sample=2,
        seed=3,
    )
    expected = enlarged_grid(
        np.concatenate([original[None], (keep * original)[None], filled]), 1, 4
    )
    assert np.abs(strip.astype(int) - expected.astype(int)).max() <= 1
    tiles = [
        strip[2 * SCALE :, (2 + k * (SIZE + 2)) * SCALE :][
            : SIZE * SCALE, : SIZE * SCALE
        ]
        for k in range(4)
    ]
    kept = np.repeat(np.repeat(keep[..., 0] > 0, SCALE, 0), SCALE, 1)
    for filling in tiles[2:]:
        np.testing.assert_array_equal(filling[kept], tiles[0][kept])
    assert np.all(np.abs(tiles[1][~kept].astype(int) - 128) <= 1)  # the hole, grey


@pytest.mark.parametrize(
    "mask,message",
    [
        (np.full((30, 40), 255, np.uint8), "Paint over the region to fill in first"),
        (np.zeros((30, 41), np.uint8), r"uint8 mask of the picture's size \(30, 40\)"),
        (np.zeros((30, 40), np.float32), "uint8 mask"),
    ],
)
def test_inpainting_rejects_bad_masks(model, mask, message):
    with pytest.raises(ValueError, match=message):
        inpaint_picture(model, split_picture(30, 40), mask, steps=2, jump_length=1)


def test_inpainting_refuses_a_sampler_with_its_own_step(model):
    mask = np.zeros((30, 40), np.uint8)
    with pytest.raises(ValueError, match="linear step rule"):
        inpaint_picture(model, split_picture(30, 40), mask, sampler="heun", steps=2)


def test_a_conditional_grid_matches_guided_generate():
    net = kd.models.build_unet(
        image_size=SIZE,
        widths=(8,),
        block_depth=1,
        groups=2,  # with a channel per group, normalisation removes the label
        attention_levels=(),
        num_classes=3,
    )
    # Untrained output layers are zero: random weights make labels matter.
    rng = np.random.default_rng(0)
    net.set_weights([w + rng.normal(0, 0.2, w.shape) for w in net.get_weights()])
    model = kd.DiffusionModel(
        net,
        schedule={"name": "linear", "timesteps": 20},
        seed=0,
        num_classes=3,
        class_names=["a", "b", "c"],
    )
    options = dict(sampler={"name": "ddim", "eta": 0.0}, steps=2, seed=1)
    *_, (_, grid, _) = generate_progressively(
        model, 3, batch_size=2, labels=2, guidance_scale=4.0, **options
    )
    reference = model.generate(3, labels=2, guidance_scale=4.0, **options)
    assert (
        np.abs(grid.astype(int) - enlarged_grid(reference, 2, 2).astype(int)).max() <= 1
    )
    unguided = model.generate(3, labels=2, **options)
    assert not np.allclose(reference, unguided, atol=1e-3)  # the scale was used
    assert model_summary(model)["classes"] == "3 (a, b, c)"


def test_an_autoguided_grid_matches_guided_generate(model):
    guide_net = kd.models.build_unet(
        image_size=SIZE, widths=(4,), block_depth=1, groups=2, attention_levels=()
    )
    # Untrained output layers are zero: random weights make the guide matter.
    rng = np.random.default_rng(1)
    guide_net.set_weights(
        [w + rng.normal(0, 0.2, w.shape) for w in guide_net.get_weights()]
    )
    guide = kd.DiffusionModel(guide_net, schedule={"name": "linear", "timesteps": 20})
    options = dict(sampler={"name": "ddim", "eta": 0.0}, steps=2, seed=1)
    *_, (_, grid, _) = generate_progressively(
        model, 3, batch_size=2, guide=guide, guide_scale=1.5, **options
    )
    reference = model.generate(3, guide=guide, guide_scale=1.5, **options)
    assert (
        np.abs(grid.astype(int) - enlarged_grid(reference, 2, 2).astype(int)).max() <= 1
    )
    assert not np.allclose(reference, model.generate(3, **options), atol=1e-3)
    # Guided over part of the steps only, as `generate` does.
    *_, (_, grid, _) = generate_progressively(
        model, 3, batch_size=2, guide=guide, guidance_interval=(10, 20), **options
    )
    limited = model.generate(3, guide=guide, guidance_interval=(10, 20), **options)
    assert (
        np.abs(grid.astype(int) - enlarged_grid(limited, 2, 2).astype(int)).max() <= 1
    )
    assert not np.allclose(
        limited, model.generate(3, guide=guide, **options), atol=1e-3
    )
    with pytest.raises(ValueError, match="needs a `guide` model"):
        next(generate_progressively(model, 3, guide_scale=2.0, **options))
    with pytest.raises(ValueError, match="`guidance_interval` limits guidance"):
        next(generate_progressively(model, 3, guidance_interval=(10, 20), **options))
