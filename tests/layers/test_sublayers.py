"""`call_sublayer`: the same answers as `Layer.__call__`, and `__call__` where it does more."""

import keras
import numpy as np
import pytest
from keras import layers, ops

import keras_ddpm as kd
from keras_ddpm.layers.sublayers import call_sublayer
from tests.helpers import count_calls


def _count_dunder_calls(monkeypatch, layer):
    """Count `__call__`s of the layer's class (Keras looks `__call__` up on the class)."""
    return count_calls(monkeypatch, type(layer), "__call__")


def test_built_layer_skips_dunder_call_and_answers_the_same(monkeypatch):
    dense = layers.Dense(3)
    dense.build((2, 4))
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    expected = ops.convert_to_numpy(dense(x))
    calls = _count_dunder_calls(monkeypatch, dense)
    got = call_sublayer(dense, ops.convert_to_tensor(x))
    assert calls == [0]
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, rtol=1e-6)


def test_unbuilt_layer_goes_through_dunder_call_which_builds_it(monkeypatch):
    dense = layers.Dense(3)
    calls = _count_dunder_calls(monkeypatch, dense)
    out = call_sublayer(dense, ops.ones((2, 4)))
    assert calls == [1] and dense.built
    assert tuple(out.shape) == (2, 3)


def test_quantized_layer_goes_through_dunder_call(monkeypatch):
    dense = layers.Dense(8)
    dense.build((2, 16))
    dense.quantize("int8")
    x = np.random.default_rng(1).normal(size=(2, 16)).astype("float32")
    expected = ops.convert_to_numpy(dense(x))
    calls = _count_dunder_calls(monkeypatch, dense)
    got = call_sublayer(dense, ops.convert_to_tensor(x))
    assert calls == [1]
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, rtol=1e-6)


def test_down_block_passes_training_on_to_its_blocks_dropout():
    """`training` reaches a residual block's dropout through `UNetLevel`'s direct calls."""
    block = kd.layers.DownBlock(8, block_depth=1, groups=2, dropout=0.5)
    x = ops.ones((2, 4, 4, 8))
    embedding = ops.ones((2, 16))
    inference, _ = block([x, embedding], training=False)
    again, _ = block([x, embedding], training=False)
    training, _ = block([x, embedding], training=True)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(inference), ops.convert_to_numpy(again)
    )
    assert not np.allclose(
        ops.convert_to_numpy(training), ops.convert_to_numpy(inference)
    )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_unet_level_answers_as_through_dunder_call(monkeypatch, policy):
    """A down block with attention, its inner calls direct or all through `__call__`."""
    block = kd.layers.DownBlock(
        8, block_depth=2, attention=True, groups=2, dtype=policy
    )
    rng = np.random.default_rng(2)
    x = ops.convert_to_tensor(rng.normal(size=(2, 8, 8, 4)).astype("float32"))
    embedding = ops.convert_to_tensor(rng.normal(size=(2, 16)).astype("float32"))
    direct, direct_skips = block([x, embedding])
    for module in ("unet_level", "residual_block", "attention_block", "down_block"):
        monkeypatch.setattr(
            f"keras_ddpm.layers.{module}.call_sublayer",
            lambda layer, *args, **kwargs: layer(*args, **kwargs),
        )
    through, through_skips = block([x, embedding])
    assert keras.backend.standardize_dtype(direct.dtype) == block.compute_dtype
    for a, b in zip([direct, *direct_skips], [through, *through_skips]):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(ops.cast(a, "float32")),
            ops.convert_to_numpy(ops.cast(b, "float32")),
        )
