"""`keras-ddpm serve`: arguments, errors, and what it hands to the web app."""

import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import pytest

import keras_ddpm as kd
from keras_ddpm.cli.main import main as cli_main

torch_only = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="command wiring is backend-independent: checked once, under PyTorch",
)


def tiny_model_file(folder):
    net = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, attention_levels=()
    )
    path = os.path.join(folder, "tiny.keras")
    kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20}).save(path)
    return path


def test_serve_is_listed_with_its_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["serve", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--model",
        "--host",
        "--port",
        "--max-images",
        "--max-steps",
        "--max-queue",
        "--guide",
        "--guide-scale",
        "--guidance-interval",
    ):
        assert flag in text
    assert "127.0.0.1" in text
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "serve" in capsys.readouterr().out


def test_missing_model_is_one_line(capsys, tmp_path):
    pytest.importorskip("gradio")
    code = cli_main(["serve", "--model", str(tmp_path / "nope.keras")])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "model file not found" in error


def test_bad_port_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["serve", "--model", "m.keras", "--port", "0"])
    assert exit_.value.code == 2
    assert "expected an int in [1, 65535], got '0'" in capsys.readouterr().err


def test_a_taken_port_is_one_line_before_the_model_loads(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli_main(
            ["serve", "--model", str(tmp_path / "nope.keras"), "--port", str(port)]
        )
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert (
        f"cannot listen on 127.0.0.1:{port}: Address already in use; give "
        "another --port (or --host)"
    ) in error


def test_a_host_of_another_machine_is_one_line(capsys, tmp_path):
    model = str(tmp_path / "nope.keras")
    code = cli_main(["serve", "--model", model, "--host", "192.0.2.1"])  # TEST-NET-1
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert "cannot listen on 192.0.2.1:7860: Cannot assign requested address" in error


def test_missing_gradio_names_the_extra(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails
    code = cli_main(["serve", "--model", str(tmp_path / "m.keras")])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1
    assert 'pip install "keras-ddpm[demo]"' in error
    from keras_ddpm.demo import build_demo

    with pytest.raises(ImportError, match=r"keras-ddpm\[demo\]"):
        build_demo(object())


@torch_only
def test_serve_builds_the_app_with_the_flags_and_binds_localhost(
    monkeypatch, tmp_path, capsys
):
    pytest.importorskip("gradio")
    from keras_ddpm.demo import app

    launched = {}

    def fake_launch(demo, host, port, block):
        launched.update(demo=demo, host=host, port=port, block=block)

    monkeypatch.setattr(app, "launch_demo", fake_launch)
    path = tiny_model_file(tmp_path)
    assert (
        cli_main(["serve", "--model", path, "--max-images", "3", "--max-steps", "7"])
        == 0
    )
    assert (launched["host"], launched["port"], launched["block"]) == (
        "127.0.0.1",
        7860,
        True,
    )
    sliders = {
        c["props"].get("elem_id"): c["props"]
        for c in launched["demo"].config["components"]
        if c["type"] == "slider"
    }
    assert sliders["num-images"]["maximum"] == 3
    assert sliders["steps"]["maximum"] == 7
    assert "http://127.0.0.1:7860/" in capsys.readouterr().out


def test_importing_the_library_does_not_import_gradio(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails
    root = os.path.dirname(kd.__file__)
    files = [os.path.join(root, "__init__.py"), os.path.join(root, "cli", "main.py")]
    files += [os.path.join(root, "cli", "serve.py")]
    demo = os.path.join(root, "demo")
    files += [
        os.path.join(demo, name)
        for name in sorted(os.listdir(demo))
        if name.endswith(".py")
    ]
    for path in files:
        runpy.run_path(path)  # raises ImportError if the module imports gradio


@pytest.mark.slow
@torch_only
def test_serve_command_answers_on_localhost_and_stops_on_ctrl_c(tmp_path):
    pytest.importorskip("gradio")
    path = tiny_model_file(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keras_ddpm.cli",
            "serve",
            "--model",
            path,
            "--port",
            str(port),
        ],
        env={**os.environ, "KERAS_BACKEND": "torch"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 240
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/", timeout=5
                ) as page:
                    assert page.status == 200
                    assert "keras-ddpm" in page.read().decode()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.time() < deadline, "server did not answer"
                time.sleep(1)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert f"http://127.0.0.1:{port}/" in process.stdout.read()


@torch_only
def test_space_template_builds_the_demo_from_the_model_beside_it(tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    space = tmp_path / "space"
    space.mkdir()
    for name in ("app.py", "requirements.txt", "README.md"):
        (space / name).write_text(
            open(os.path.join(root, "examples", "space", name)).read()
        )
    os.replace(tiny_model_file(tmp_path), space / "model.keras")
    monkeypatch.delenv("KERAS_DDPM_MODEL", raising=False)
    namespace = runpy.run_path(str(space / "app.py"), run_name="space")
    demo = namespace["demo"]
    info = next(
        c["props"]["value"]
        for c in demo.config["components"]
        if c["props"].get("elem_id") == "model-info"
    )
    assert "model.keras" in info and "8×8×3" in info
    assert "keras-ddpm[demo" in (space / "requirements.txt").read_text()


def test_a_guide_scale_without_a_guide_is_one_line(capsys, tmp_path):
    code = cli_main(
        ["serve", "--model", str(tmp_path / "m.keras"), "--guide-scale", "2"]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "--guide-scale needs --guide" in error
    code = cli_main(
        ["serve", "--model", str(tmp_path / "m.keras"), "--guidance-interval", "1", "2"]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "--guidance-interval needs --guide" in error
