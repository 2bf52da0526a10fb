"""The ratios the benchmark suite prints and publishes are computed right."""

import importlib.util
import sys
from pathlib import Path

import keras
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="pure Python: runs once, under the TensorFlow backend",
)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _record(kind, variant, policy, images_per_s):
    return {
        "kind": kind,
        "variant": variant,
        "backend": "jax",
        "image_size": 32,
        "batch": 16,
        "policy": policy,
        "jit_compile": True,
        "images_per_s": images_per_s,
        "flops_per_image": 3e9,
        "gflops": 100.0,
        "peak_gflops": 300.0,
        "utilisation": 1 / 3,
    }


def test_ratios_compare_variants_and_policies_of_one_configuration():
    report = _load("report")
    records = [
        _record("train", "diffusion_fit", "float32", 10.0),
        _record("train", "bare_fit", "float32", 11.0),
        _record("train", "diffusion_fit", "mixed_bfloat16", 25.0),
        _record("sample", "compiled", "float32", 2.0),
        _record("sample", "bare_calls", "float32", 2.1),
        _record("sample", "eager", "float32", 0.5),
    ]
    ratios = {
        text.split(":")[0]: value for text, _, value in report.variant_ratios(records)
    }
    assert ratios == pytest.approx(
        {"train overhead": 1.1, "sampling overhead": 1.05, "sampling speed-up": 4.0}
    )
    policies = {what: value for what, _, value in report.policy_ratios(records)}
    assert policies == pytest.approx({"train/diffusion_fit": 2.5})
    table = report.results_table(records)
    assert table.count("\n") == len(records) + 1 and "33 %" in table


def test_make_table_writes_the_page_from_json(tmp_path):
    import json

    make_table = _load("make_table")
    records = [
        _record("train", "diffusion_fit", "float32", 10.0),
        _record("train", "bare_fit", "float32", 12.0),
    ]
    data = {
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}},
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [{"extra_info": {**r, "device": "cpu"}} for r in records],
    }
    (tmp_path / "run.json").write_text(json.dumps(data))
    page = tmp_path / "benchmarks.md"
    make_table.main([str(tmp_path / "run.json"), "-o", str(page)])
    text = page.read_text()
    assert "Test CPU" in text and "| 1.20 |" in text
    with pytest.raises(SystemExit, match="no keras-ddpm benchmark records"):
        (tmp_path / "empty.json").write_text(json.dumps({"benchmarks": []}))
        make_table.main([str(tmp_path / "empty.json"), "-o", str(page)])
