"""The ```python blocks of every guide run, in order, in one namespace."""

import re
from pathlib import Path

import keras
import pytest

GUIDES = sorted(
    (Path(__file__).resolve().parent.parent / "docs" / "guides").glob("*.md")
)


@pytest.mark.parametrize("guide", GUIDES, ids=[g.stem for g in GUIDES])
def test_guide_code_runs(guide, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    policy = keras.mixed_precision.dtype_policy()
    namespace = {}
    try:
        for block in blocks:
            exec(compile(block, str(guide), "exec"), namespace)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
