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

import keras_ddpm as kd
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


# Training, sampling, killing and interrupting through the command line is the
# same process plumbing on every backend (fit, checkpoint restore and sampling
# themselves are tested in-process on all three); these long subprocess tests run
# once, under PyTorch, whose processes start and train tiny models several times
# faster than TensorFlow's.
main_job_backend_only = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="command-line training subprocesses run once, under the PyTorch backend",
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


def test_info_names_the_backend_its_version_and_the_devices(capsys):
    import importlib

    assert main(["info"]) == 0
    out = capsys.readouterr().out.splitlines()
    backend = keras.backend.backend()
    version = importlib.import_module(backend).__version__
    assert out[1] == f"keras {keras.__version__} (backend: {backend} {version})"
    assert out[2].startswith("other backends installed: ")
    assert backend not in out[2]
    assert out[4].startswith("devices: ") and ("cpu:0" in out[4] or "gpu" in out[4])
    assert out[4].endswith(f"({os.cpu_count()} CPU cores)")


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("train", "sample", "reconstruct", "info"):
        assert command in result.stdout


@main_job_backend_only
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
        "guide.keras",
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

    result = run(
        "sample",
        "--model",
        str(out / "model.keras"),
        "--guide",
        str(out / "guide.keras"),
        "--guide-scale",
        "1.5",
        "--guidance-interval",
        "5",
        "40",
        "--num",
        "4",
        "--steps",
        "2",
        "--grid",
        str(tmp_path / "guided.png"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "guided.png").is_file()

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((12, 10, 3), 40 * i, np.uint8)).save(
            folder / f"{i}.png"
        )
    (folder / "broken.png").write_bytes(b"not an image")
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
    # Skipped with a line of the command's own, not Python's warning format.
    assert (
        f"keras-ddpm reconstruct: warning: Skipping unreadable image {folder / 'broken.png'}"
        in result.stderr
    )
    assert "UserWarning" not in result.stderr
    with Image.open(tmp_path / "r.png") as image:
        assert image.size == (3 * 8 + 4 * 2, 3 * 8 + 4 * 2)


@pytest.mark.parametrize(
    "args,message",
    [
        (["sample", "--model", "missing.keras"], "model file not found: missing.keras"),
        (["train", "--epochs", "0"], "expected a positive int"),
        (["train", "--learning-rate", "nan"], "expected a positive, finite float"),
        (["train", "--learning-rate", "inf"], "expected a positive, finite float"),
        (["sample", "--model", "m.keras", "--num", "-3"], "expected a positive int"),
        (["reconstruct", "--model", "m", "--images", "i", "--steps", "x"], "got 'x'"),
        (["evaluate", "--num-subsets", "0"], "expected a positive int"),
        (
            ["evaluate", "--save-reference", "r.npz", "--dataset", "d", "--num", "1"],
            "argument --num: expected an int >= 2, got '1'",
        ),
        (
            ["evaluate", "--model", "m.keras", "--dataset", "d", "--num-images", "1"],
            "argument --num-images: expected an int >= 2",
        ),
        (["serve", "--model", "m.keras", "--max-queue", "1.5"], "positive int"),
        (["serve", "--model", "m.keras", "--port", "99999"], "an int in [1, 65535]"),
        (["sample", "--model", "m.keras", "--seed", "-1"], "expected an int >= 0"),
        (["interpolate", "--model", "m.keras", "--seed-b", "-2"], "an int >= 0"),
        (["interpolate", "--model", "m.keras", "--sampler", "ddpm"], "invalid choice"),
        (
            ["train", "--dataset", "no_such_dataset_xyz", "--out", "{tmp}"],
            "Unknown dataset",
        ),
        (["train", "--config", "missing.toml"], "config file not found"),
        (
            ["sample", "--model", "{tmp}/broken.keras"],
            "could not load model {tmp}/broken.keras: not a .keras file",
        ),
        (["sample", "--model", "{tmp}"], "--model names a folder, not a .keras file"),
        (
            ["sample", "--model", "{tmp}/broken.keras", "--guide", "{tmp}"],
            "--guide names a folder, not a .keras file",
        ),
        (
            ["sample", "--model", "m.keras", "--per-class", "2", "--gif", "x.png"],
            "--gif does not apply with --per-class",
        ),
        (
            ["sample", "--model", "m.keras", "--per-class", "2", "--rows", "2"],
            "--num and --rows do not apply with --per-class",
        ),
        (
            ["sample", "--model", "m.keras", "--per-class", "2", "--num", "4"],
            "--num and --rows do not apply with --per-class",
        ),
        (
            ["sample", "--model", "m.keras", "--grid", "o.png", "--gif", "o.png"],
            "--gif must name a .gif file, got o.png",
        ),
        (
            ["sample", "--model", "m.keras", "--grid", "o.txt"],
            "--grid must name a .png",
        ),
        (
            ["sample", "--model", "m.keras", "--grid", "{tmp}/broken.keras/o.png"],
            "--grid {tmp}/broken.keras/o.png: cannot write into {tmp}/broken.keras",
        ),
        (
            ["interpolate", "--model", "m.keras", "--out", "o.gif"],
            "--out must name a .png file, got o.gif",
        ),
        (
            ["reconstruct", "--model", "m.keras", "--images", "{tmp}/broken.keras"],
            "--images names a file, not a folder of images",
        ),
        (
            ["inpaint", "--model", "{tmp}/broken.keras", "--image", "x.png"]
            + ["--box", "0", "0", "4", "4"],
            "could not load model {tmp}/broken.keras: not a .keras file",
        ),
        (["sample", "--model", "m.keras", "--guide-scale", "2"], "needs --guide"),
        (
            ["sample", "--model", "m.keras", "--guide", "g.keras", "--guidance", "2"],
            "--guide (autoguidance) and --guidance (classifier-free) exclude",
        ),
        (
            ["sample", "--model", "m.keras", "--guide", "g.keras", "--per-class", "2"],
            "--guide does not apply with --per-class",
        ),
        (
            ["sample", "--model", "m.keras", "--per-class", "2"]
            + ["--guidance-interval", "1", "5"],
            "--guidance-interval does not apply with --per-class",
        ),
        (
            ["train", "--guide-interval", "10", "5", "--out", "{tmp}"],
            "--guide-interval must be two finite timesteps with 0 <= low <= high",
        ),
        (
            ["sample", "--model", "{tmp}/broken.keras", "--guide", "missing.keras"],
            "model file not found: missing.keras",
        ),
        (["frobnicate"], "invalid choice"),
        (
            ["train", "--frobnicate"],
            "keras-ddpm train: error: unrecognized arguments: --frobnicate "
            "(see 'keras-ddpm train --help')",
        ),
        (["--frobnicate"], "keras-ddpm: error: unrecognized arguments: --frob"),
        (["--frobnicate", "train"], "keras-ddpm: error: unrecognized arguments: --"),
        (["train", "--out", "{tmp}/broken.keras"], "is a file; give a folder."),
        (["train", "--config", "{tmp}/binary.toml"], "is not UTF-8 text, as TOML"),
        (
            ["train", "--devices", "3", "--batch-size", "8", "--out", "{tmp}"],
            "must be a multiple of --devices 3",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    (tmp_path / "binary.toml").write_bytes(b"\x00\xff\xfe")
    try:
        status = main([a.replace("{tmp}", str(tmp_path)) for a in args])
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    assert status == 2
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    message = message.replace("{tmp}", str(tmp_path))
    assert (
        len(lines) == 1 and lines[0].startswith("keras-ddpm") and message in lines[0]
    ), stderr


def test_running_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    def allocate(**settings):
        np.zeros((2**37, 2**20))  # 1 EiB: more than any address space

    monkeypatch.setattr(kd.training, "train", allocate)
    assert main(["train", "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "keras-ddpm train: error: out of memory (Unable to allocate 1.00 EiB"
    )
    assert lines[0].endswith(
        "lower the image size, the batch size or the number of images"
    )


def test_output_files_are_checked_without_creating_folders(tmp_path, capsys):
    grid = tmp_path / "new" / "grid.png"
    assert main(["sample", "--model", "missing.keras", "--grid", str(grid)]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_unwritable_output_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("train", *TINY, "--out", str(blocker / "run"))
    assert result.returncode == 2
    assert "Cannot write to output folder" in error_lines(result)[0]


# Runs the command line with one pause patched in, at a chosen moment of
# training; the test SIGKILLs the process there. Nothing else is changed.
PAUSING_CLI = """
import os, sys, time
import keras
import keras_ddpm as kd
from keras_ddpm.cli.main import main

point = os.environ["KILL_POINT"]

def pause():
    print("PAUSED", flush=True)
    time.sleep(600)

def batch_begin(self, batch, logs=None):
    if point == "first_epoch" and batch == 2:
        pause()

save_checkpoint = kd.callbacks.Checkpoint.save
def checkpoint_saved(self, epochs_completed):
    path = save_checkpoint(self, epochs_completed)
    if point == "after_save" and epochs_completed == 1:
        pause()
    return path

save_model = keras.Model.save
def model_saved(self, path, *args, **kwargs):
    save_model(self, path, *args, **kwargs)
    if point == "mid_save" and ".ckpt-epoch00002" in str(path):
        pause()  # written, not yet renamed into place

kd.callbacks.HistoryFile.on_train_batch_begin = batch_begin
kd.callbacks.Checkpoint.save = checkpoint_saved
keras.Model.save = model_saved
sys.exit(main(sys.argv[1:]))
"""


def resume_message(survivors):
    """What a `--resume` run prints first, given the checkpoints it finds."""
    if survivors:
        done = survivors[-1]
        return f"({done} epoch{'' if done == 1 else 's'} done)"
    return "No checkpoint"


# Each kill point, and the checkpoint epochs that must survive a SIGKILL there.
KILL_POINTS = [("first_epoch", []), ("after_save", [1]), ("mid_save", [1])]


@main_job_backend_only
def test_sigkill_then_resume_loses_at_most_one_epoch(tmp_path):
    # One run killed at each point in turn, every run after the first resuming
    # the one before; then a last run finishes the training.
    out = tmp_path / "run"
    checkpoints = out / "checkpoints"
    args = ["train", *TINY, "--epochs", "2", "--out", str(out), "--verbose", "0"]
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    previous = None
    for point, survivors in KILL_POINTS:
        resume = [] if previous is None else ["--resume"]
        process = subprocess.Popen(
            [sys.executable, "-c", PAUSING_CLI, *args, *resume],
            env={**env, "KILL_POINT": point},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        printed = []
        try:
            for line in process.stdout:
                if line.strip() == "PAUSED":
                    break
                printed.append(line)
            assert process.poll() is None, f"training ended before {point}"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        if previous is not None:
            assert resume_message(previous) in "".join(printed), point
        assert not (out / "model.keras").exists()
        found = kd.callbacks.list_checkpoints(checkpoints)
        assert sorted(epochs for _, epochs, _ in found) == survivors, point
        for path, _, _ in found:  # every complete-looking file is complete
            keras.saving.load_model(path)
        leftovers = (
            [n for n in os.listdir(checkpoints) if n.endswith(".tmp.keras")]
            if checkpoints.is_dir()
            else []
        )
        assert len(leftovers) == (point == "mid_save"), point
        previous = survivors

    result = run(*args, "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    assert resume_message(previous) in result.stdout
    model = keras.saving.load_model(out / "model.keras")
    steps = 2 * (32 // 8)  # 80% of 40 images in batches of 8, 2 epochs
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations.value)) == steps
    assert int(keras.ops.convert_to_numpy(model.ema_updates.value)) == steps
    assert not [n for n in os.listdir(checkpoints) if n.endswith(".tmp.keras")]


@main_job_backend_only
def test_non_finite_loss_stops_training_with_one_line(tmp_path, capsys):
    # Replacing a run: a diverged run leaves neither the replaced run's model
    # nor a guide of its own beside it.
    (tmp_path / "model.keras").write_bytes(b"the replaced run's model")
    status = main(
        ["train", *TINY, "--epochs", "2", "--out", str(tmp_path), "--verbose", "0"]
        + ["--learning-rate", "1e30", "--overwrite"]
    )
    assert status == 1
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "keras-ddpm train: error: loss became"
    )
    assert " at step " in lines[0] and "no checkpoint was written" in lines[0]
    assert not (tmp_path / "model.keras").exists()
    assert not (tmp_path / "guide.keras").exists()
    assert kd.callbacks.list_checkpoints(tmp_path / "checkpoints") == []


def test_full_disk_fails_before_training(tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0)
    )
    status = main(["train", *TINY, "--out", str(tmp_path)])
    assert status == 2
    out, err = capsys.readouterr()
    (line,) = [x for x in err.splitlines() if x.strip()]
    assert "Not enough free space" in line and "MiB free" in line
    assert "Train step" not in out  # refused before the step was timed
    assert not (tmp_path / "checkpoints").exists()


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


def test_a_guide_samples_as_the_recipe_unless_told(tmp_path):
    from argparse import Namespace

    from keras_ddpm.cli.options import guide_options
    from tests.helpers import tiny_compiled_model

    tiny_compiled_model().save(tmp_path / "g.keras")
    guide = str(tmp_path / "g.keras")
    options = guide_options(
        Namespace(guide=guide, guide_scale=None, guidance_interval=None)
    )
    # None: left to `generate`, whose defaults the recipe's pictures use.
    assert options["guide_scale"] is None and options["guidance_interval"] is None
    assert kd.training.DEFAULTS["guide_scale"] == kd.models.autoguidance.DEFAULT_SCALE
    assert kd.training.DEFAULTS["guide_interval"] is None
    options = guide_options(
        Namespace(guide=guide, guide_scale=1.5, guidance_interval=[0.0, 20.0])
    )
    assert (options["guide_scale"], options["guidance_interval"]) == (1.5, [0.0, 20.0])
    # Without a guide an interval is classifier-free guidance's, not read here.
    assert (
        guide_options(Namespace(guide=None, guide_scale=None, guidance_interval=[1, 2]))
        == {}
    )
