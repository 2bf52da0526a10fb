import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd


def _same_padding_taps(size, kernel=3):
    # Output position o of a stride-1 "same" convolution reads input o - 1 .. o + 1:
    # the two border positions each lose one tap.
    assert kernel == 3
    return 3 * size - 2


def test_convolutions_and_dense_match_closed_forms():
    images = keras.Input((8, 6, 2))
    vector = keras.Input((5,))
    valid = keras.layers.Conv2D(4, 3, padding="valid")(images)
    same = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)(images)
    strided = keras.layers.Conv2D(2, 3, strides=2, padding="same")(images)
    dense = keras.layers.Dense(7)(vector)
    net = keras.Model([images, vector], [valid, same, strided, dense])

    flops = kd.models.count_flops(net)

    valid_flops = 2 * (6 * 4) * 4 * 9 * 2 + 6 * 4 * 4
    same_flops = 2 * _same_padding_taps(8) * _same_padding_taps(6) * 2 * 3
    # Stride 2, "same": 4 × 3 outputs; rows read inputs 2o-0..2o+2 with the last
    # tap of the last row (input 8) on padding, so 4·3 − 1 = 11 taps per axis
    # along the height and 3·3 − 1 = 8 along the width.
    strided_flops = 2 * 11 * 8 * 2 * 2 + 4 * 3 * 2
    assert flops["conv"] == valid_flops + same_flops + strided_flops
    assert flops["dense"] == 2 * 5 * 7 + 7
    assert flops["total"] == flops["conv"] + flops["dense"]


def test_attention_and_group_norm_match_closed_forms():
    sequence = keras.Input((10, 8))
    attended = keras.layers.MultiHeadAttention(2, key_dim=3)(sequence, sequence)
    normed = keras.layers.GroupNormalization(4)(keras.Input((4, 4, 8)))
    net = keras.Model(sequence, attended)

    flops = kd.models.count_flops(net)

    projections = 3 * (2 * 10 * 8 * 2 * 3 + 2 * 3) + (2 * 10 * 8 * 2 * 3 + 8)
    scores = 2 * 10 * 10
    core = 2 * scores * 3 + 2 * 10 * 3 + 3 * scores + 2 * scores * 3
    assert flops["dense"] == projections
    assert flops["attention"] == core
    norm_net = keras.Model(normed._keras_history[0].input, normed)
    assert kd.models.count_flops(norm_net)["norm"] == 8 * 4 * 4 * 8


def test_counting_leaves_the_network_unchanged():
    images = keras.Input((4, 4, 8))
    embedding = keras.Input((6,))
    block = kd.layers.ResidualBlock(8, groups=4)
    net = keras.Model([images, embedding], block([images, embedding]))
    rng = np.random.default_rng(0)
    inputs = [
        rng.standard_normal((2, 4, 4, 8)).astype("float32"),
        rng.standard_normal((2, 6)).astype("float32"),
    ]
    before = ops.convert_to_numpy(net(inputs))
    kd.models.count_flops(net)
    assert not any("call" in vars(layer) for layer in net._flatten_layers())
    np.testing.assert_array_equal(ops.convert_to_numpy(net(inputs)), before)


def test_rejects_batched_inputs_and_unknown_shapes():
    images = keras.Input((4, 4, 2))
    net = keras.Model(images, keras.layers.Conv2D(2, 3)(images))
    with pytest.raises(ValueError, match="batch size 1"):
        kd.models.count_flops(net, np.zeros((2, 4, 4, 2), "float32"))
    with pytest.raises(ValueError, match="known input shapes"):
        kd.models.count_flops(keras.layers.Dense(3))


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="XLA's cost analysis is read through JAX"
)
def test_unet_count_agrees_with_xla_cost_analysis():
    import jax

    net = kd.models.build_unet(16, widths=(8, 16), block_depth=1, attention_levels=(1,))
    weights = [v.value for v in net.trainable_variables]
    non_trainable = [v.value for v in net.non_trainable_variables]

    def forward(x, t):
        return net.stateless_call(weights, non_trainable, [x, t])[0]

    compiled = (
        jax.jit(forward)
        .lower(np.zeros((1, 16, 16, 3), "float32"), np.zeros((1,), "float32"))
        .compile()
    )
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    counted = kd.models.count_flops(net)
    # Uncounted element-wise work (swish, residual adds) is ~1–2 % of the total.
    assert counted["total"] == pytest.approx(analysis["flops"], rel=0.03)
    assert counted["attention"] > 0 and counted["norm"] > 0
