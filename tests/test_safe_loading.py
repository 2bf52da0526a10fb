"""Saved models load with `safe_mode=True`; files that would run code are refused."""

import json
import zipfile

import keras
import pytest

import keras_ddpm as kd
from keras_ddpm.cli import main


def test_our_configs_hold_no_code_and_load_safely(tmp_path):
    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1)
    model = kd.DiffusionModel(net, ema_momentum=0.9)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    text = json.dumps(config)
    assert '"Lambda"' not in text and "__lambda__" not in text
    assert isinstance(keras.saving.load_model(path, safe_mode=True), kd.DiffusionModel)


def test_a_lambda_layer_is_refused_by_default(tmp_path, capsys):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "untrusted.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(path)
    assert main(["sample", "--model", str(path)]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert line.startswith("keras-ddpm sample: error: could not load model")
    assert "Lambda" in line or "safe_mode" in line
