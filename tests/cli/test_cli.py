"""The command line, run as a user runs it: in a subprocess."""

import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from keras_ddpm.cli import main

TINY = [
    "--image-size",
    "8",
    "--num-images",
    "40",
    "--batch-size",
    "8",
    "--widths",
    "8",
    "16",
    "--block-depth",
    "1",
    "--timesteps",
    "50",
    "--sample-steps",
    "3",
]


# Killing and interrupting training is the same process plumbing on every backend
# (checkpoint restore itself is tested in-process on all three in tests/callbacks);
# these long subprocess tests run once, under the main job's backend.
main_job_backend_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="kill/interrupt subprocess tests run once, under the TensorFlow backend",
)


def run(*args, timeout=300):
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        [sys.executable, "-m", "keras_ddpm.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def error_lines(result):
    return [
        line for line in result.stderr.splitlines() if line.startswith("keras-ddpm")
    ]


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("train", "sample", "reconstruct", "info"):
        assert command in result.stdout


def test_train_sample_and_reconstruct(tmp_path):
    out = tmp_path / "run"
    result = run("train", *TINY, "--epochs", "2", "--out", str(out), "--verbose", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in (
        "model.keras",
        "samples.png",
        "denoise.gif",
        "denoise_strip.png",
        "history.json",
        "loss.png",
    ):
        assert (out / name).is_file(), name
    with Image.open(out / "samples.png") as grid:
        assert grid.size == (2 * (8 * 8 + 9 * 2), 2 * (4 * 8 + 5 * 2))

    result = run(
        "sample",
        "--model",
        str(out / "model.keras"),
        "--num",
        "4",
        "--steps",
        "2",
        "--grid",
        str(tmp_path / "s.png"),
        "--gif",
        str(tmp_path / "s.gif"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "s.png").is_file() and (tmp_path / "s.gif").is_file()

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((12, 10, 3), 40 * i, np.uint8)).save(
            folder / f"{i}.png"
        )
    result = run(
        "reconstruct",
        "--model",
        str(out / "model.keras"),
        "--images",
        str(folder),
        "--t",
        "10",
        "--out",
        str(tmp_path / "r.png"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(tmp_path / "r.png") as image:
        assert image.size == (3 * 8 + 4 * 2, 3 * 8 + 4 * 2)


@pytest.mark.parametrize(
    "args,message",
    [
        (["sample", "--model", "missing.keras"], "model file not found: missing.keras"),
        (["train", "--epochs", "0"], "expected a positive int"),
        (
            ["train", "--dataset", "no_such_dataset_xyz", "--out", "{tmp}"],
            "Unknown dataset",
        ),
        (["train", "--config", "missing.toml"], "config file not found"),
        (["sample", "--model", "{tmp}/broken.keras"], "could not load model"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    try:
        status = main([a.replace("{tmp}", str(tmp_path)) for a in args])
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    assert status == 2
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1 and lines[0].startswith("keras-ddpm") and message in lines[0]
    ), stderr


def test_unwritable_output_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("train", *TINY, "--out", str(blocker / "run"))
    assert result.returncode == 2
    assert "Cannot write to output folder" in error_lines(result)[0]


@main_job_backend_only
def test_sigkill_then_resume_continues_from_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = ["train", *TINY, "--epochs", "6", "--out", str(out), "--verbose", "0"]
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_ddpm.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = out / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if checkpoints.is_dir() and any(
            n.startswith("ckpt-epoch00002") for n in os.listdir(checkpoints)
        ):
            break
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "model.keras").exists()
    survivors = sorted(n for n in os.listdir(checkpoints) if n.endswith(".keras"))
    done = int(survivors[-1][len("ckpt-epoch") :][:5])
    assert done >= 2

    result = run(*args, "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"({done} epochs done)" in result.stdout
    model = keras.saving.load_model(out / "model.keras")
    steps_per_epoch = 32 // 8  # 80% of 40 images in batches of 8
    assert (
        int(keras.ops.convert_to_numpy(model.optimizer.iterations.value))
        == 6 * steps_per_epoch
    )
    assert (
        int(keras.ops.convert_to_numpy(model.ema_updates.value)) == 6 * steps_per_epoch
    )


@main_job_backend_only
def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "run"
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keras_ddpm.cli",
            "train",
            *TINY,
            "--epochs",
            "200",
            "--out",
            str(out),
            "--verbose",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoints = out / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not (
        checkpoints.is_dir() and os.listdir(checkpoints)
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 130, stderr[-2000:]
    assert "run again with --resume" in stdout
    assert "Traceback" not in stderr
    newest = sorted(n for n in os.listdir(checkpoints) if n.endswith(".keras"))[-1]
    assert int(newest[len("ckpt-epoch") :][:5]) < 200
    assert not (out / "model.keras").exists()
