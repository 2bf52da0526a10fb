import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.helpers import run_layer_test


def group_norm(x, groups, eps=1e-5):
    b, h, w, c = x.shape
    g = x.reshape(b, h, w, groups, c // groups)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = g.var(axis=(1, 2, 4), keepdims=True)
    return ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)


def swish(x):
    return x / (1 + np.exp(-x))


def identity_kernel(channels):
    kernel = np.zeros((3, 3, channels, channels), "float32")
    kernel[1, 1] = np.eye(channels)
    return kernel


def test_layer_contract_with_channel_change():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 8)).astype("float32")
    embedding = rng.standard_normal((2, 12)).astype("float32")
    run_layer_test(
        kd.layers.ResidualBlock,
        {"filters": 16, "groups": 4},
        [x, embedding],
        (2, 8, 8, 16),
    )


def test_identity_convs_and_zero_embedding_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 8)).astype("float32")
    embedding = np.zeros((2, 5), "float32")
    block = kd.layers.ResidualBlock(8, groups=4)
    block([x, embedding])
    for conv in (block.conv1, block.conv2):
        conv.kernel.assign(identity_kernel(8))
        conv.bias.assign(np.zeros(8, "float32"))
    assert block.skip_projection is None  # same channel count: identity skip
    h = swish(group_norm(x.astype(np.float64), 4))
    expected = x + swish(group_norm(h, 4))
    out = ops.convert_to_numpy(block([x, embedding]))
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_embedding_is_added_per_channel():
    block = kd.layers.ResidualBlock(4, groups=1, activation="linear")
    x = np.zeros((1, 3, 3, 4), "float32")
    embedding = np.ones((1, 2), "float32")
    block([x, embedding])
    block.conv2.kernel.assign(identity_kernel(4))
    block.conv2.bias.assign(np.zeros(4, "float32"))
    block.conv1.bias.assign(np.zeros(4, "float32"))
    block.embedding_projection.kernel.assign(
        np.array([[1, 2, 3, 4], [0, 0, 0, 0]], "float32")
    )
    block.embedding_projection.bias.assign(np.zeros(4, "float32"))
    # conv1(0) = 0, plus the projected embedding [1, 2, 3, 4] at every pixel; the
    # second GroupNorm (one group) normalises that constant-per-channel map.
    values = np.array([1, 2, 3, 4], np.float64)
    normalised = (values - values.mean()) / np.sqrt(values.var() + 1e-5)
    out = ops.convert_to_numpy(block([x, embedding]))
    np.testing.assert_allclose(out[0, 1, 1], normalised, atol=1e-4)


def test_bad_groups_are_clear_errors():
    with pytest.raises(
        ValueError, match=r"`filters` \(10\) must be divisible by `groups` \(4\)"
    ):
        kd.layers.ResidualBlock(10, groups=4)
    block = kd.layers.ResidualBlock(8, groups=4)
    with pytest.raises(ValueError, match=r"input channels` \(6\) must be divisible"):
        block([np.zeros((1, 4, 4, 6), "float32"), np.zeros((1, 3), "float32")])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(filters=True), "`filters` must be a positive int, got True"),
        (dict(filters=0), "`filters` must be a positive int, got 0"),
        (dict(groups=2.0), "`groups` must be a positive int, got 2.0"),
        (dict(dropout=1.0), r"`dropout` must lie in \[0, 1\), got 1.0"),
        (dict(dropout=float("nan")), "`dropout` must be finite"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kd.layers.ResidualBlock(**{"filters": 8, "groups": 4, **kwargs})


def test_numpy_ints_become_python_ints_in_the_config():
    config = kd.layers.ResidualBlock(np.int64(8), groups=np.int32(4)).get_config()
    assert type(config["filters"]) is int and type(config["groups"]) is int


def test_dropout_only_in_training():
    block = kd.layers.ResidualBlock(8, groups=2, dropout=0.5)
    x = np.random.default_rng(2).standard_normal((2, 4, 4, 8)).astype("float32")
    e = np.ones((2, 3), "float32")
    a = ops.convert_to_numpy(block([x, e], training=False))
    b = ops.convert_to_numpy(block([x, e], training=False))
    np.testing.assert_array_equal(a, b)
    c = ops.convert_to_numpy(block([x, e], training=True))
    assert not np.allclose(a, c)
    assert (
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(block)
        ).dropout
        == 0.5
    )


@pytest.mark.parametrize("channels", [8, 4])  # the identity skip, then a 1×1 one
def test_zero_init_block_starts_as_its_skip_path(channels):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 5, channels)).astype("float32")
    embedding = rng.standard_normal((2, 6)).astype("float32")
    block = kd.layers.ResidualBlock(8, groups=4, zero_init=True)
    out = ops.convert_to_numpy(block([x, embedding]))
    skip = x if block.skip_projection is None else block.skip_projection(x)
    np.testing.assert_allclose(out, ops.convert_to_numpy(skip), atol=1e-6)
    # The first convolution keeps Keras' default, so the branch learns at once.
    assert np.abs(ops.convert_to_numpy(block.conv1.kernel)).max() > 0
    plain = kd.layers.ResidualBlock(8, groups=4)
    plain([x, embedding])
    assert np.abs(ops.convert_to_numpy(plain.conv2.kernel)).max() > 0
    config = block.get_config()
    assert config["zero_init"] is True
    assert kd.layers.ResidualBlock.from_config(config).zero_init is True


def test_zero_init_must_be_a_bool():
    with pytest.raises(ValueError, match="`zero_init` must be one of False, True"):
        kd.layers.ResidualBlock(8, groups=4, zero_init="yes")


def test_scale_shift_matches_numpy_adaptive_group_norm():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 6, 8)).astype("float32")
    embedding = rng.standard_normal((2, 5)).astype("float32")
    block = kd.layers.ResidualBlock(8, groups=4, scale_shift=True)
    block([x, embedding])
    for conv in (block.conv1, block.conv2):
        conv.kernel.assign(identity_kernel(8))
        conv.bias.assign(np.zeros(8, "float32"))
    kernel = rng.standard_normal((5, 16)).astype("float32")
    bias = rng.standard_normal(16).astype("float32")
    block.embedding_projection.kernel.assign(kernel)
    block.embedding_projection.bias.assign(bias)
    # Dhariwal & Nichol's AdaGN: norm(h) * (1 + scale) + shift, one pair per
    # channel from the activated embedding, the scales first.
    projected = swish(embedding.astype(np.float64)) @ kernel + bias
    scale, shift = projected[:, None, None, :8], projected[:, None, None, 8:]
    h = swish(group_norm(x.astype(np.float64), 4))
    expected = x + swish(group_norm(h, 4) * (1 + scale) + shift)
    out = ops.convert_to_numpy(block([x, embedding]))
    np.testing.assert_allclose(out, expected, atol=1e-4)
    assert block.get_config()["scale_shift"] is True
    with pytest.raises(ValueError, match="`scale_shift` must be one of False, True"):
        kd.layers.ResidualBlock(8, groups=4, scale_shift=None)
