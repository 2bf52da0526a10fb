import numpy as np
import pytest

import keras_ddpm as kd
from tests.helpers import run_layer_test


def test_layer_contract_and_numpy_formula():
    timesteps = np.array([0.0, 1.0, 17.0, 999.0], dtype="float32")
    (out,) = run_layer_test(
        kd.layers.SinusoidalEmbedding, {"dim": 16}, timesteps, (4, 16)
    )
    half = 8
    frequencies = 10000.0 ** (-np.arange(half) / half)
    phases = timesteps[:, None].astype(np.float64) * frequencies
    expected = np.concatenate([np.sin(phases), np.cos(phases)], axis=-1)
    np.testing.assert_allclose(out, expected, atol=2e-4)


def test_integer_timesteps_and_custom_period():
    layer = kd.layers.SinusoidalEmbedding(4, max_period=100)
    out = np.asarray(layer(np.array([3, 50], dtype="int32")))
    phases = np.array([3, 50])[:, None] * 100.0 ** (-np.arange(2) / 2)
    np.testing.assert_allclose(
        out, np.concatenate([np.sin(phases), np.cos(phases)], -1), atol=1e-5
    )


@pytest.mark.parametrize("dim", [7, 0, -2, 2.0, True])
def test_bad_dim_is_a_clear_error(dim):
    with pytest.raises(ValueError, match=r"`dim` must be an (even )?int >= 2"):
        kd.layers.SinusoidalEmbedding(dim)


def test_numpy_ints_are_kept_as_python_ints():
    layer = kd.layers.SinusoidalEmbedding(np.int64(8), max_period=np.float32(100))
    config = layer.get_config()
    assert type(config["dim"]) is int and type(config["max_period"]) is float
    with pytest.raises(ValueError, match=r"`max_period` must be > 1, got 1"):
        kd.layers.SinusoidalEmbedding(8, max_period=1)
