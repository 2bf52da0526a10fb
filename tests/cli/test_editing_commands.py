"""`keras-ddpm inpaint`, `interpolate` and `reconstruct --strength`, in process."""

import keras
import numpy as np
import pytest
from PIL import Image

import keras_ddpm as kd
from keras_ddpm.cli import main

# Command-line plumbing over methods tested on every backend in tests/models.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="command-line plumbing over the public API: it runs once, under PyTorch",
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    net = kd.models.build_unet(
        8, widths=(8,), block_depth=1, groups=4, attention_levels=()
    )
    model = kd.DiffusionModel(net, schedule={"name": "cosine", "timesteps": 50})
    model.save(folder / "model.keras")
    photo = np.zeros((12, 10, 3), np.uint8)
    photo[:, :, 0] = 200
    Image.fromarray(photo).save(folder / "photo.png")
    mask = np.full((12, 10), 255, np.uint8)
    mask[4:8, 3:7] = 0
    Image.fromarray(mask).save(folder / "mask.png")
    return folder, model


def test_inpaint_writes_original_region_and_fillings(saved, capsys):
    folder, model = saved
    out = folder / "filled.png"
    common = [
        "--model",
        str(folder / "model.keras"),
        "--image",
        str(folder / "photo.png"),
    ]
    extra = ["--sampler", "ddim", "--steps", "6", "--jump-length", "3"]
    status = main(
        [
            "inpaint",
            *common,
            "--box",
            "2",
            "2",
            "6",
            "6",
            "--num",
            "2",
            "--out",
            str(out),
            *extra,
        ]
    )
    assert status == 0
    assert "Wrote" in capsys.readouterr().out
    with Image.open(out) as image:
        row = np.asarray(image)[::2, ::2]  # written at scale 2
    assert row.shape == (8 + 2 * 2, 4 * 8 + 5 * 2, 3)  # original, region, 2 fillings
    cells = [row[2:10, 2 + 10 * i : 10 + 10 * i] for i in range(4)]
    # Kept pixels of every filling are the original's (the photo is pure red).
    for cell in (cells[2], cells[3]):
        np.testing.assert_array_equal(cell[:2], cells[0][:2])
    status = main(
        [
            "inpaint",
            *common,
            "--mask",
            str(folder / "mask.png"),
            "--out",
            str(folder / "m.png"),
            "--num",
            "1",
            *extra,
        ]
    )
    assert status == 0 and (folder / "m.png").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--box", "0", "0", "9", "4"], "--box must satisfy 0 <= X0 < X1 <= 8"),
        (
            [
                "--box",
                "0",
                "0",
                "8",
                "8",
                "--sampler",
                "ddim",
                "--jump-length",
                "20",
                "--steps",
                "5",
            ],
            "--jump-length (20) must be at most the steps (5)",
        ),
        (
            ["--mask", "{folder}/photo.png", "--image", "{folder}/none.png"],
            "image not found",
        ),
        (["--mask", "{folder}/all_white.png"], "nothing to fill in"),
        (
            ["--image", "{folder}", "--box", "0", "0", "4", "4"],
            "--image names a folder, not an image file",
        ),
    ],
)
def test_inpaint_errors_are_one_line(saved, capsys, args, message):
    folder, _ = saved
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(folder / "all_white.png")
    arguments = [
        "inpaint",
        "--model",
        str(folder / "model.keras"),
        "--image",
        str(folder / "photo.png"),
    ]
    arguments += [a.replace("{folder}", str(folder)) for a in args]
    assert main(arguments) == 2
    assert message in capsys.readouterr().err


def test_interpolate_writes_the_walk(saved, capsys):
    folder, model = saved
    out, gif = folder / "walk.png", folder / "walk.gif"
    status = main(
        [
            "interpolate",
            "--model",
            str(folder / "model.keras"),
            "--seed",
            "3",
            "--seed-b",
            "4",
            "--num",
            "5",
            "--sampler",
            "ddim",
            "--steps",
            "4",
            "--out",
            str(out),
            "--gif",
            str(gif),
        ]
    )
    assert status == 0
    with Image.open(out) as image:
        assert image.size == (2 * (5 * 8 + 6 * 2), 2 * (8 + 2 * 2))
    assert gif.is_file()
    frames = model.interpolate(3, 4, num=5, sampler="ddim", steps=4)
    expected = kd.viz.image_grid(frames, 1, 5).repeat(2, 0).repeat(2, 1)
    with Image.open(out) as image:
        np.testing.assert_array_equal(np.asarray(image), expected)
    # A stochastic sampler is refused: DDPM is not offered, DDIM with noise
    # is named by the library.
    with pytest.raises(SystemExit) as exit_:
        main(
            ["interpolate", "--model", str(folder / "model.keras"), "--sampler", "ddpm"]
        )
    assert exit_.value.code == 2
    assert "invalid choice: 'ddpm'" in capsys.readouterr().err
    command = [
        "interpolate",
        "--model",
        str(folder / "model.keras"),
        "--sampler",
        "ddim",
    ]
    command += ["--eta", "1"]
    assert main(command) == 2
    assert "needs a deterministic sampler" in capsys.readouterr().err


def test_reconstruct_strength(saved, capsys):
    folder, _ = saved
    photos = folder / "photos"
    photos.mkdir(exist_ok=True)
    Image.open(folder / "photo.png").save(photos / "a.png")
    base = [
        "reconstruct",
        "--model",
        str(folder / "model.keras"),
        "--images",
        str(photos),
        "--sampler",
        "ddim",
        "--steps",
        "3",
        "--out",
        str(folder / "r.png"),
    ]
    assert main([*base, "--strength", "0.5"]) == 0
    assert (
        "noised to t=24" in capsys.readouterr().out
    )  # round(0.5 · 49) = 24 (half to even)
    assert main(base) == 0  # neither: --strength 0.3, whatever the model's T
    assert "noised to t=15" in capsys.readouterr().out  # round(0.3 · 49) = 15
    assert main([*base, "--strength", "1.5"]) == 2
    assert "--strength must lie in (0, 1]" in capsys.readouterr().err
