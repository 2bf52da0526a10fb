"""The ```python blocks of every guide run, in order, in one namespace per guide."""

import re
from pathlib import Path

import keras
import pytest

GUIDES = sorted(
    (Path(__file__).resolve().parent.parent / "docs" / "guides").glob("*.md")
)


# The guides call only backend-agnostic library code, tested on every backend
# elsewhere; running them once keeps CI within its time budget.
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="guides run once, under the TensorFlow backend",
)
@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_guide_code_runs(guide, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.S)
    assert blocks, f"{guide.name} has no python blocks"
    namespace = {"__name__": "__guide__"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{guide.name}[block {number}]", "exec"), namespace)
