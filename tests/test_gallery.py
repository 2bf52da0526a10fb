"""`scripts/make_gallery.py` regenerates every gallery image from a checkpoint."""

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import keras_ddpm as kd

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location(
    "make_gallery", ROOT / "scripts" / "make_gallery.py"
)
make_gallery = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_gallery)

GALLERY = [
    "samples.png",
    "denoise.gif",
    "denoise_strip.png",
    "sampler_steps.png",
    "reconstruction.png",
    "inpainting.png",
    "interpolation.png",
    "schedules.png",
    "loss.png",
]


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="a script over the public API: it runs once, under TensorFlow",
)
def test_one_command_writes_every_gallery_image(tmp_path):
    import tensorflow as tf

    # Tracing costs more than running at this size; graph mode is tested elsewhere.
    tf.config.run_functions_eagerly(True)
    try:
        _write_and_check_gallery(tmp_path)
    finally:
        tf.config.run_functions_eagerly(False)


def _write_and_check_gallery(tmp_path):
    net = kd.models.build_unet(image_size=8, widths=(8, 16), block_depth=1)
    model = kd.DiffusionModel(net, schedule={"name": "cosine", "timesteps": 50})
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "history.json").write_text(
        json.dumps({"loss": [0.5, 0.3], "val_loss": [0.6, 0.4]})
    )
    out = tmp_path / "images"

    status = make_gallery.main(
        [
            "--model",
            str(run / "model.keras"),
            "--out",
            str(out),
            "--steps",
            "2",
            "3",
            "--sample-steps",
            "4",
        ]
    )

    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(GALLERY)
    # The samples are the library's own: generate, then save_grid at scale 2.
    expected = (
        kd.viz.image_grid(
            model.generate(32, sampler="ddim", steps=4, seed=0, batch_size=8), 4, 8
        )
        .repeat(2, axis=0)
        .repeat(2, axis=1)
    )
    np.testing.assert_array_equal(np.asarray(Image.open(out / "samples.png")), expected)
    with Image.open(out / "denoise.gif") as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    # An animation whose last frame is held for 1.5 s.
    assert gif.n_frames > 1 and durations[-1] >= 1500 > durations[0]
    rows = np.asarray(Image.open(out / "reconstruction.png")).shape[0]
    assert rows == 2 * (5 * 8 + 6 * 2)  # originals + 2 × (noised, restored), scale 2
    inpainted = np.asarray(Image.open(out / "inpainting.png"))
    assert inpainted.shape[:2] == (2 * (3 * 8 + 4 * 2), 2 * (6 * 8 + 7 * 2))
    walks = np.asarray(Image.open(out / "interpolation.png"))
    assert walks.shape[:2] == (2 * (2 * 8 + 3 * 2), 2 * (8 * 8 + 9 * 2))

    # With --guide, the samples are guided by that model.
    guide_net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1)
    rng = np.random.default_rng(0)
    for variable in guide_net.trainable_variables:  # not the zero output of a new U-Net
        variable.assign(rng.normal(0, 0.2, variable.shape).astype("float32"))
    guide = kd.DiffusionModel(guide_net, schedule={"name": "cosine", "timesteps": 50})
    guide.save(run / "guide.keras")
    guided = tmp_path / "guided"
    arguments = ["--model", str(run / "model.keras"), "--out", str(guided)]
    arguments += ["--guide", str(run / "guide.keras"), "--steps", "2"]
    assert make_gallery.main(arguments + ["--sample-steps", "4"]) == 0
    images = model.generate(32, sampler="ddim", steps=4, seed=0, guide=guide)
    assert (
        np.abs(images - model.generate(32, sampler="ddim", steps=4, seed=0)).max() > 0.1
    )
    expected = kd.viz.image_grid(images, 4, 8).repeat(2, axis=0).repeat(2, axis=1)
    np.testing.assert_array_equal(
        np.asarray(Image.open(guided / "samples.png")), expected
    )


def test_missing_files_are_one_line_errors(tmp_path, capsys):
    assert make_gallery.main(["--model", str(tmp_path / "none.keras")]) == 2
    assert "model file not found" in capsys.readouterr().err
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "history.json").write_text("{}")
    arguments = ["--model", str(tmp_path / "m.keras"), "--guide", "none.keras"]
    assert make_gallery.main(arguments) == 2
    assert "guide file not found: none.keras" in capsys.readouterr().err
