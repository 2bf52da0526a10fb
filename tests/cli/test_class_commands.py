"""The command line of class-conditional models: `sample --label/--guidance/--per-class`,
`reconstruct --label`, `info --model` and `train --conditional`, in process."""

import keras
import numpy as np
import pytest
from PIL import Image

import keras_ddpm as kd
from keras_ddpm.cli import main

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="command-line plumbing over the public API: it runs once, under PyTorch",
)

NAMES = ["red", "green", "blue"]
DDIM = ["--sampler", "ddim", "--steps", "3"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    net = kd.models.build_unet(
        8, widths=(8,), block_depth=1, groups=4, attention_levels=(), num_classes=3
    )
    model = kd.DiffusionModel(
        net,
        schedule={"name": "cosine", "timesteps": 50},
        num_classes=3,
        class_names=NAMES,
    )
    model.save(folder / "conditional.keras")
    plain = kd.DiffusionModel(
        kd.models.build_unet(
            8, widths=(8,), block_depth=1, groups=4, attention_levels=()
        ),
        schedule={"name": "cosine", "timesteps": 50},
    )
    plain.save(folder / "plain.keras")
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 90 * i, np.uint8)).save(
            folder / f"photo{i}.png"
        )
    return folder, keras.saving.load_model(folder / "conditional.keras")


def expected_grid(model, rows, cols, **options):
    images = model.generate(rows * cols, sampler="ddim", steps=3, seed=0, **options)
    return kd.viz.image_grid(images, rows, cols)


def read(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def test_per_class_grid_has_one_row_per_class(saved, capsys):
    folder, model = saved
    out = folder / "classes.png"
    status = main(
        [
            "sample",
            "--model",
            str(folder / "conditional.keras"),
            "--per-class",
            "2",
            "--guidance",
            "3",
            "--grid",
            str(out),
            *DDIM,
        ]
    )
    assert status == 0
    assert "(rows: red, green, blue)" in capsys.readouterr().out
    want = expected_grid(model, 3, 2, labels=[0, 0, 1, 1, 2, 2], guidance_scale=3.0)
    np.testing.assert_allclose(read(out), want, atol=1)


@pytest.mark.parametrize("label", ["green", "1"])
def test_label_by_name_or_index(saved, label):
    folder, model = saved
    out = folder / f"green-{label}.png"
    status = main(
        [
            "sample",
            "--model",
            str(folder / "conditional.keras"),
            "--num",
            "4",
            "--rows",
            "1",
            "--label",
            label,
            "--guidance",
            "2",
            "--grid",
            str(out),
            *DDIM,
        ]
    )
    assert status == 0
    want = expected_grid(model, 1, 4, labels=1, guidance_scale=2.0)
    np.testing.assert_allclose(read(out), want, atol=1)


def test_reconstruct_takes_a_label(saved):
    folder, model = saved
    photos = folder / "photos"
    photos.mkdir(exist_ok=True)
    for name in ("photo0.png", "photo1.png"):
        (photos / name).write_bytes((folder / name).read_bytes())
    out = folder / "r.png"
    status = main(
        [
            "reconstruct",
            "--model",
            str(folder / "conditional.keras"),
            "--images",
            str(photos),
            "--t",
            "20",
            "--sampler",
            "ddim",
            "--label",
            "blue",
            "--guidance",
            "2",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    originals = np.asarray(
        next(
            iter(
                kd.datasets.load(
                    photos,
                    image_size=8,
                    batch_size=2,
                    split="all",
                    augment=False,
                    shuffle=False,
                    validation_fraction=0.0,
                )
            )
        )
    )
    restored, noised = model.reconstruct(
        originals,
        20,
        sampler="ddim",
        seed=0,
        labels=2,
        guidance_scale=2.0,
        return_trajectory=True,
    )
    want = kd.viz.image_grid(np.concatenate([originals, noised[0], restored]), 3, 2)
    np.testing.assert_allclose(read(out), want, atol=1)


def test_info_lists_the_classes(saved, capsys):
    folder, _ = saved
    assert main(["info", "--model", str(folder / "conditional.keras")]) == 0
    out = capsys.readouterr().out
    assert "classes: 3 (label dropout 0.1)" in out
    assert "0: red" in out and "2: blue" in out and "images: 8x8x3" in out
    assert main(["info", "--model", str(folder / "plain.keras")]) == 0
    assert "classes: none (unconditional)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "model,args,message",
    [
        (
            "conditional",
            ["--label", "purple"],
            "not a class of this model: expected "
            "an index in [0, 3) or one of red, green, blue",
        ),
        ("conditional", ["--label", "3"], "--label 3 is out of range: expected [0, 3)"),
        ("conditional", ["--per-class", "2", "--gif", "x.gif"], "--gif does not apply"),
        ("conditional", ["--guidance", "nan"], "--guidance must be a finite float"),
        ("plain", ["--label", "0"], "--label needs a class-conditional model"),
        ("plain", ["--guidance", "2"], "--guidance needs a class-conditional model"),
        ("plain", ["--per-class", "2"], "--per-class needs a class-conditional model"),
    ],
)
def test_class_option_errors_are_one_line(saved, capsys, model, args, message):
    folder, _ = saved
    status = main(
        [
            "sample",
            "--model",
            str(folder / f"{model}.keras"),
            *args,
            *DDIM,
            "--grid",
            str(folder / "never.png"),
        ]
    )
    assert status == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not (folder / "never.png").exists()


def test_train_conditional_flags_reach_the_recipe(monkeypatch, tmp_path):
    calls = []

    def fake_train(**kwargs):
        calls.append(kwargs)
        return kd.training.TrainingResult(None, {}, kwargs.get("output_dir"))

    monkeypatch.setattr(kd.training, "train", fake_train)
    assert (
        main(["train", "--conditional", "--label-dropout", "0.2", "--guidance", "3"])
        == 0
    )
    assert calls[-1] == {
        "conditional": True,
        "label_dropout": 0.2,
        "guidance_scale": 3.0,
        "resume": False,
    }
    config = tmp_path / "run.toml"
    config.write_text("conditional = true\nguidance = 1.5\n")
    assert main(["train", "--config", str(config)]) == 0
    assert calls[-1] == {"conditional": True, "guidance_scale": 1.5, "resume": False}
