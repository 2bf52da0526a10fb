"""The README's two set-up commands stay true."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAIN_COMMAND = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install tensorflow-cpu -e ".[datasets,viz]" '
    "&& keras-ddpm train"
)


def shell_blocks():
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_readme_gives_the_main_job_and_the_test_command():
    commands = [line.strip() for block in shell_blocks() for line in block.splitlines()]
    assert MAIN_COMMAND in commands
    assert "bash .ci/run" in commands
    assert (ROOT / ".ci" / "run").is_file()


@pytest.mark.slow
def test_main_job_command_runs_verbatim_in_a_fresh_checkout(tmp_path):
    checkout = tmp_path / "keras-ddpm"
    shutil.copytree(
        ROOT,
        checkout,
        ignore=shutil.ignore_patterns(
            ".venv", "runs", "*.egg-info", "__pycache__", ".git"
        ),
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "KERAS_BACKEND")
    }
    subprocess.run(
        ["bash", "-c", MAIN_COMMAND],
        cwd=checkout,
        env=env,
        check=True,
        timeout=3600,
        stdout=sys.stderr,
    )
    for name in ("model.keras", "samples.png", "denoise.gif"):
        assert (checkout / "runs" / "flowers" / name).is_file()
