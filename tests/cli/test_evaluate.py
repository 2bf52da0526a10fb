"""`keras-ddpm evaluate`, run in-process once (the command is backend-independent plumbing)."""

import keras
import numpy as np
import pytest

import keras_ddpm as kd
from keras_ddpm.cli import main
from tests.metrics.encoders import tiny_encoder

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="command-line plumbing: runs once, under the TensorFlow backend",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    net = kd.models.build_unet(8, widths=(8,), block_depth=1, groups=4)
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    model.save(folder / "model.keras")
    tiny_encoder(size=8).save(folder / "encoder.keras")
    return folder


def common(files):
    return [
        "--model",
        str(files / "model.keras"),
        "--feature-extractor",
        str(files / "encoder.keras"),
        "--num",
        "10",
        "--steps",
        "2",
        "--batch-size",
        "8",
    ]


DATA = ["--dataset", "synthetic_flowers", "--num-images", "60"]


def test_kid_then_fid_from_saved_reference_statistics(files, capsys):
    reference = files / "reference.npz"
    status = main(
        ["evaluate", *common(files), *DATA, "--subset-size", "5", "--num-subsets", "4"]
        + ["--save-reference", str(reference)]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert reference.is_file()
    line = next(line for line in out.splitlines() if line.startswith("KID "))
    value, spread = float(line.split()[1]), float(line.split()[3])
    assert np.isfinite(value) and spread > 0
    assert (
        "over 4 subsets of 5" in line and "10 real images of synthetic_flowers" in line
    )

    stats = kd.metrics.FeatureStatistics.load(reference)
    assert stats.count == 10 and stats.features.shape == (10, 32)

    status = main(
        ["evaluate", *common(files), "--metric", "fid", "--reference", str(reference)]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    line = next(line for line in out.splitlines() if line.startswith("FID "))
    assert float(line.split()[1]) > 0 and "bootstrap" in line

    # Statistics alone, without a model.
    alone = files / "alone.npz"
    args = ["evaluate", *common(files)[2:], *DATA, "--image-size", "8"]
    assert main(args + ["--save-reference", str(alone)]) == 0
    assert kd.metrics.FeatureStatistics.load(alone).count == 10


def test_a_split_smaller_than_num_is_named(files, capsys):
    args = ["evaluate", *common(files), *DATA, "--num", "20", "--subset-size", "5"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert (
        "keras-ddpm evaluate: warning: the validation split of synthetic_flowers "
        "holds 12 images, fewer than --num 20: the reference takes them all"
    ) in captured.err
    assert "20 generated images" in captured.out and "vs 12 real images" in captured.out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "synthetic_flowers"], "give --model"),
        (["--model", "{tmp}/model.keras"], "give --dataset"),
        (["--model", "missing.keras", "--dataset", "x"], "model file not found"),
        (
            ["--model", "{tmp}/model.keras", "--reference", "missing.npz"],
            "reference statistics not found",
        ),
        (
            ["--model", "{tmp}/model.keras", "--dataset", "x", "--weights", "no.h5"],
            "weights file not found",
        ),
        (
            [
                "--model",
                "{tmp}/model.keras",
                "--dataset",
                "x",
                "--feature-extractor",
                "no.keras",
            ],
            "model file not found: no.keras",
        ),
        (["--metric", "is"], "invalid choice"),
        (
            ["--save-reference", "r.npz", "--dataset", "synthetic_flowers"],
            "give --image-size without --model",
        ),
        (
            ["--model", "{tmp}/model.keras", "--dataset", "x", "--image-size", "8"],
            "--image-size does not apply with --model",
        ),
        (
            ["--model", "{tmp}/model.keras", "--dataset", "x", "--encoder-size", "20"],
            "--encoder-size must be an int >= 75, got 20.",
        ),
        (
            ["--model", "{tmp}/model.keras", "--dataset", "x"]
            + ["--feature-extractor", "flowers", "--encoder-size", "20"],
            "--encoder-size does not apply with --feature-extractor flowers: it "
            "takes 8x8 images",
        ),
        (
            ["--model", "{tmp}/model.keras", "--dataset", "x"]
            + ["--feature-extractor", "{tmp}/model.keras"],
            "--feature-extractor must map images to features (B, d), got a "
            "DiffusionModel",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(files, capsys, args, message):
    try:
        status = main(["evaluate", *[a.replace("{tmp}", str(files)) for a in args]])
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    assert status == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("keras-ddpm") and message in lines[0]


def test_fid_under_the_shipped_flowers_encoder(files, capsys):
    status = main(
        [
            "evaluate",
            "--model",
            str(files / "model.keras"),
            "--feature-extractor",
            "flowers",
            "--metric",
            "fid",
            "--num",
            "8",
            "--steps",
            "2",
            *DATA,
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    line = next(line for line in out.splitlines() if line.startswith("FID "))
    # An untrained model's samples are far from flowers in the encoder's space.
    assert float(line.split()[1]) > 10
