import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.helpers import run_layer_test
from tests.layers.test_residual_block import group_norm


def test_layer_contract():
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 8)).astype("float32")
    run_layer_test(
        kd.layers.AttentionBlock, {"num_heads": 2, "groups": 4}, x, (2, 4, 4, 8)
    )


def test_matches_numpy_self_attention():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 8)).astype("float32")
    block = kd.layers.AttentionBlock(num_heads=2, groups=2)
    out = ops.convert_to_numpy(block(x))
    mha = block.attention

    def dense(layer, value):
        return np.einsum(
            "...c,chd->...hd", value, ops.convert_to_numpy(layer.kernel)
        ) + ops.convert_to_numpy(layer.bias)

    h = group_norm(x.astype(np.float64), 2).reshape(2, 15, 8)
    q, k, v = (
        dense(mha._query_dense, h),
        dense(mha._key_dense, h),
        dense(mha._value_dense, h),
    )
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(4)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = np.einsum("bhqk,bkhd->bqhd", weights, v)
    projected = np.einsum(
        "bqhd,hdc->bqc", attended, ops.convert_to_numpy(mha._output_dense.kernel)
    )
    projected += ops.convert_to_numpy(mha._output_dense.bias)
    np.testing.assert_allclose(out, x + projected.reshape(x.shape), atol=1e-4)


@pytest.mark.parametrize("num_heads", [0, True, 1.0])
def test_num_heads_must_be_a_positive_int(num_heads):
    with pytest.raises(ValueError, match="`num_heads` must be a positive int"):
        kd.layers.AttentionBlock(num_heads=num_heads)


def test_heads_must_divide_channels():
    with pytest.raises(ValueError, match=r"divisible by `num_heads` \(3\)"):
        kd.layers.AttentionBlock(num_heads=3, groups=4)(
            np.zeros((1, 2, 2, 8), "float32")
        )


def test_zero_init_starts_as_the_identity_and_learns():
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 8)).astype("float32")
    block = kd.layers.AttentionBlock(num_heads=2, groups=4, zero_init=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(block(x)), x)
    mha = block.attention
    np.testing.assert_array_equal(ops.convert_to_numpy(mha._output_dense.kernel), 0.0)
    for dense in (mha._query_dense, mha._key_dense, mha._value_dense):
        assert np.abs(ops.convert_to_numpy(dense.kernel)).max() > 0
    # Only the output kernel starts at zero: its gradient is the attended
    # values, which are not zero, so the block can leave the identity.
    target = np.random.default_rng(3).standard_normal(x.shape).astype("float32")
    model = keras.Sequential([keras.Input(x.shape[1:]), block])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(x, target)
    assert np.abs(ops.convert_to_numpy(mha._output_dense.kernel)).max() > 0
    assert np.abs(ops.convert_to_numpy(block(x)) - x).max() > 1e-4


def test_zero_init_is_saved_and_a_trained_block_loads_unchanged(tmp_path):
    x = np.random.default_rng(4).standard_normal((2, 2, 2, 8)).astype("float32")
    block = kd.layers.AttentionBlock(groups=4, zero_init=True)
    model = keras.Sequential([keras.Input(x.shape[1:]), block])
    kernel = block.attention._output_dense.kernel
    kernel.assign(np.ones(kernel.shape, "float32"))  # as if trained
    expected = ops.convert_to_numpy(model(x))
    model.save(tmp_path / "block.keras")
    loaded = keras.saving.load_model(tmp_path / "block.keras", safe_mode=True)
    assert loaded.layers[0].zero_init is True
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), expected, atol=1e-6)
    plain = kd.layers.AttentionBlock(groups=4)
    plain.build(x.shape)
    assert np.abs(ops.convert_to_numpy(plain.attention._output_dense.kernel)).max() > 0


@pytest.mark.parametrize("zero_init", [1, "yes", None])
def test_zero_init_must_be_a_bool(zero_init):
    with pytest.raises(ValueError, match="`zero_init` must be one of False, True"):
        kd.layers.AttentionBlock(zero_init=zero_init)
