"""The blocks' `Conv2D` against `keras.layers.Conv2D`: values, gradients, saving."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from keras_ddpm.layers.conv import Conv2D
from tests.helpers import count_calls, same_random_weights

CASES = [
    {"filters": 8, "kernel_size": 3, "padding": "same"},
    {"filters": 5, "kernel_size": 1},
    {"filters": 4, "kernel_size": 3, "padding": "valid"},
    {"filters": 6, "kernel_size": 3, "padding": "same", "dilation_rate": 2},
    {"filters": 4, "kernel_size": 3, "padding": "same", "strides": 2},
    {"filters": 4, "kernel_size": 2, "padding": "same"},
    {"filters": 4, "kernel_size": 3, "padding": "valid", "strides": 2},
    {"filters": 4, "kernel_size": 3, "padding": "same", "strides": (2, 1)},
    {"filters": 4, "kernel_size": 4, "padding": "same", "strides": 3},
    {"filters": 6, "kernel_size": 3, "padding": "same", "groups": 3},
    {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False},
    {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "silu"},
]
# Even and odd sizes: a strided "same" window pads unevenly on even ones.
SHAPES = [(2, 8, 6, 3), (2, 7, 5, 3)]


def _pair(kwargs, shape, seed=0):
    return same_random_weights(
        Conv2D(**kwargs), keras.layers.Conv2D(**kwargs), shape, seed
    )


def _value_and_gradients(layer, x):
    """The output and d(sum(output²))/d(input, kernel), on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
            loss = tf.reduce_sum(y * y)
        grads = tape.gradient(loss, [xt] + layer.trainable_weights)
        return [y.numpy()] + [g.numpy() for g in grads]
    if backend == "jax":
        import jax

        def loss(x, weights):
            y, _ = layer.stateless_call(weights, [], x)
            return (y * y).sum(), y

        weights = [w.value for w in layer.trainable_weights]
        (_, y), (dx, dw) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            x, weights
        )
        return [np.asarray(y), np.asarray(dx)] + [np.asarray(g) for g in dw]
    import torch

    xt = torch.tensor(x, requires_grad=True)
    y = layer(xt)
    weights = [w.value for w in layer.trainable_weights]
    grads = torch.autograd.grad((y * y).sum(), [xt] + weights)
    return [y.detach().numpy()] + [g.detach().numpy() for g in grads]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[1:3])))
@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: "-".join(map(str, k.values())))
def test_values_and_gradients_equal_keras(kwargs, shape):
    """Output, and the gradients of the input, the kernel and the bias."""
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    ours, reference = _pair(kwargs, x.shape)
    expected = _value_and_gradients(reference, x)
    got = _value_and_gradients(ours, x)
    assert len(got) == len(expected) == 2 + len(ours.trainable_weights)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a PyTorch path")
def test_torch_takes_the_channels_last_path_and_answers_contiguously():
    layer, _ = _pair(CASES[0], (2, 8, 6, 3))
    assert layer._fast()
    y = layer(np.zeros((2, 8, 6, 3), "float32"))
    assert tuple(y.shape) == (2, 8, 6, 8) and y.is_contiguous()
    strided, _ = _pair(CASES[4], (2, 8, 6, 3))
    assert strided._fast()
    y = strided(np.zeros((2, 8, 6, 3), "float32"))
    assert tuple(y.shape) == (2, 4, 3, 4) and y.is_contiguous()
    channels_first = Conv2D(4, 3, padding="same", data_format="channels_first")
    assert not channels_first._fast()


def test_unet_uses_it_and_saves(tmp_path):
    network = kd.models.build_unet(8, widths=(8, 16), block_depth=1, groups=4)

    def convs(model):
        return [
            layer
            for layer in model._flatten_layers()
            if isinstance(layer, keras.layers.Conv2D)
        ]

    # Every convolution, the strided downsampler's included.
    assert any(c.strides == (2, 2) for c in convs(network))
    assert len(convs(network)) > 4 and all(type(c) is Conv2D for c in convs(network))
    path = str(tmp_path / "unet.keras")
    network.save(path)
    loaded = keras.saving.load_model(path)
    assert all(type(c) is Conv2D for c in convs(loaded))
    x = [np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")]
    x.append(np.array([3.0, 500.0], "float32"))
    for variable in network.trainable_variables:
        variable.assign(np.random.default_rng(1).standard_normal(variable.shape) * 0.1)
    for a, b in zip(loaded.trainable_variables, network.trainable_variables):
        a.assign(b.value)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(network(x)), atol=1e-5
    )


@pytest.fixture
def layout_copies(monkeypatch):
    """Counts the kernel copies into PyTorch's layout."""
    from keras_ddpm.layers import conv

    return count_calls(monkeypatch, conv, "_torch_layout")


def _reference_output(layer, x, kernel, bias):
    """`keras.layers.Conv2D`'s answer with `kernel` and `bias`."""
    reference = keras.layers.Conv2D(**{**layer.get_config(), "name": "reference"})
    reference.build(x.shape)
    reference.set_weights([kernel, bias])
    return ops.convert_to_numpy(reference(x))


def _assert_answers_as_keras(layer, y, x, kernel, bias):
    np.testing.assert_allclose(
        ops.convert_to_numpy(y),
        _reference_output(layer, x, kernel, bias),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a PyTorch path")
def test_torch_kernel_copy_is_kept_outside_autograd_until_the_kernel_changes(
    layout_copies,
):
    import torch

    x = np.random.default_rng(2).standard_normal((2, 8, 6, 3)).astype("float32")
    layer, _ = _pair(CASES[0], x.shape)
    with torch.no_grad():
        layer(x)
        layer(x)
        assert layout_copies[0] == 1  # the second call reused the copy
        # An assign, as loading weights does, changes the tensor in place.
        kernel = np.random.default_rng(3).standard_normal(layer.kernel.shape)
        layer.kernel.assign(kernel.astype("float32"))
        bias = ops.convert_to_numpy(layer.bias)
        _assert_answers_as_keras(layer, layer(x), x, kernel, bias)
        # An in-place update, as the optimizers and the EMA make.
        torch._foreach_mul_([layer.kernel.value], 0.5)
        _assert_answers_as_keras(layer, layer(x), x, 0.5 * kernel, bias)
        assert layout_copies[0] == 3
        assert len(layer._kept_kernels) == 1  # renewed, not added
    with torch.enable_grad():  # a training step copies every time
        layer(x)
        layer(x)
    assert layout_copies[0] == 5


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a PyTorch path")
def test_torch_kernel_copies_follow_stateless_calls(layout_copies):
    """Two weight sets in turn (EMA and training weights) are each copied once."""
    import torch

    x = np.random.default_rng(4).standard_normal((2, 7, 5, 3)).astype("float32")
    layer, _ = _pair(CASES[4], x.shape)
    rng = np.random.default_rng(5)
    weight_sets = [
        [
            torch.tensor(rng.standard_normal(w.shape).astype("float32"))
            for w in layer.trainable_weights
        ]
        for _ in range(3)
    ]

    def call(weights):
        y, _ = layer.stateless_call(weights, [], x)
        _assert_answers_as_keras(layer, y, x, *[w.numpy() for w in weights])

    with torch.no_grad():
        for _ in range(3):
            for weights in weight_sets[:2]:
                call(weights)
        assert layout_copies[0] == 2
        call(weight_sets[2])  # a third set pushes out the first
        call(weight_sets[1])
        assert layout_copies[0] == 3
        call(weight_sets[0])
        assert layout_copies[0] == 4
        with torch.inference_mode():  # tensors made here keep no version count
            inference_weights = [w.clone() for w in weight_sets[0]]
        call(inference_weights)
        assert layout_copies[0] == 5


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a PyTorch path")
def test_torch_kernel_copy_is_not_kept_under_mixed_precision(layout_copies):
    import torch

    x = np.random.default_rng(6).standard_normal((2, 8, 6, 3)).astype("float32")
    layer = Conv2D(4, 3, padding="same", dtype="mixed_bfloat16")
    with torch.no_grad():
        first = layer(x)
        second = layer(x)
    assert layout_copies[0] == 2 and "_kept_kernels" not in layer.__dict__
    assert first.dtype == second.dtype == torch.bfloat16
