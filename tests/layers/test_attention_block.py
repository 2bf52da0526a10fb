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
