"""`kd.layers.GroupNormalization` against Keras' own layer and the defining formula."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.helpers import same_random_weights


def _pair(groups, shape, seed=0, **kwargs):
    """Ours and Keras' layer built on `shape` with the same random gamma and beta."""
    ours = kd.layers.GroupNormalization(groups, epsilon=1e-5, **kwargs)
    reference = keras.layers.GroupNormalization(groups, epsilon=1e-5, **kwargs)
    return same_random_weights(ours, reference, shape, seed)


def _inputs(shape, seed=1):
    rng = np.random.default_rng(seed)
    # Per-channel offsets well away from 0 test the two-pass variance.
    return (rng.standard_normal(shape) * 2.0 + rng.uniform(-20, 20, shape[-1])).astype(
        "float32"
    )


def test_matches_the_definition():
    """(x - group mean) / sqrt(group variance + eps) · gamma + beta, in numpy."""
    shape = (3, 5, 4, 12)
    layer, _ = _pair(4, shape)
    x = _inputs(shape)
    grouped = x.reshape(3, 5 * 4, 4, 3).astype("float64")
    mean = grouped.mean(axis=(1, 3), keepdims=True)
    variance = grouped.var(axis=(1, 3), keepdims=True)
    normalized = ((grouped - mean) / np.sqrt(variance + 1e-5)).reshape(shape)
    gamma, beta = (ops.convert_to_numpy(w) for w in layer.weights)
    expected = normalized * gamma + beta
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x)), expected, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 6, 6, 16), {}),
        ((2, 10, 8), {}),
        ((3, 16), {}),
        ((2, 4, 4, 16), {"center": False}),
        ((2, 4, 4, 16), {"scale": False}),
    ],
)
def test_values_and_gradients_equal_keras(shape, kwargs):
    ours, reference = _pair(4, shape, **kwargs)
    x = _inputs(shape)
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x)),
        ops.convert_to_numpy(reference(x)),
        rtol=1e-4,
        atol=1e-4,
    )
    upstream = np.random.default_rng(2).standard_normal(shape).astype("float32")
    grads = [_gradients(layer, x, upstream) for layer in (ours, reference)]
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


def test_trains_on_a_models_input():
    # The first layer of a model: its input needs no gradient, its weights
    # do (PyTorch's channels-last kernel crashed in that case).
    x = _inputs((4, 4, 4, 16))
    inputs = keras.Input((4, 4, 16))
    model = keras.Model(inputs, kd.layers.GroupNormalization(4)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = [np.copy(ops.convert_to_numpy(w)) for w in model.trainable_weights]
    target = np.full(x.shape, 0.5, "float32")
    model.fit(x, target, batch_size=4, epochs=1, verbose=0)
    after = [ops.convert_to_numpy(w) for w in model.trainable_weights]
    # Before the step the output has mean 0 over each group, so the MSE's
    # gradient on the shifts averages -2 · 0.5 / 16 over the 16 channels: one
    # SGD step moves their mean up by 0.5 · 1/16.
    np.testing.assert_allclose(np.mean(after[1] - before[1]), 0.5 / 16, rtol=1e-4)
    assert not np.allclose(after[0], before[0])


def _gradients(layer, x, upstream):
    """d(sum(layer(x) · upstream)) / d(x, weights), as numpy arrays."""
    backend = keras.backend.backend()
    weights = [v.value for v in layer.trainable_variables]

    def loss(weights, x):
        y, _ = layer.stateless_call(weights, [], x)
        return ops.sum(y * upstream)

    if backend == "jax":
        import jax

        grad_w, grad_x = jax.grad(loss, argnums=(0, 1))(weights, x)
        return [np.asarray(grad_x)] + [np.asarray(g) for g in grad_w]
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            value = layer(xt) * upstream
            value = tf.reduce_sum(value)
        grads = tape.gradient(value, [xt] + layer.trainable_variables)
        return [g.numpy() for g in grads]
    import torch

    xt = torch.tensor(x, requires_grad=True)
    value = torch.sum(layer(xt) * torch.tensor(upstream))
    grads = torch.autograd.grad(
        value, [xt] + [v.value for v in layer.trainable_variables]
    )
    return [g.detach().numpy() for g in grads]


def test_mixed_precision_output_dtype_and_accuracy():
    shape = (2, 8, 8, 16)
    x = _inputs(shape)
    ours = kd.layers.GroupNormalization(4, epsilon=1e-5, dtype="mixed_bfloat16")
    reference = keras.layers.GroupNormalization(4, epsilon=1e-5)
    y = ours(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    np.testing.assert_allclose(
        ops.convert_to_numpy(ops.cast(y, "float32")),
        ops.convert_to_numpy(reference(x)),
        atol=0.05,
    )


def test_other_axis_falls_back_to_keras():
    shape = (2, 8, 3, 3)
    ours, reference = _pair(4, shape, axis=1)
    x = _inputs(shape)
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x)), ops.convert_to_numpy(reference(x)), atol=1e-5
    )


def test_bad_groups_are_refused():
    with pytest.raises(ValueError, match="divisible|groups"):
        kd.layers.GroupNormalization(5).build((2, 4, 4, 16))


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="which layers build_unet uses does not depend on the backend",
)
def test_unet_uses_it():
    network = kd.models.build_unet(8, widths=(8, 16), block_depth=1, groups=4)
    norms = [
        layer
        for layer in network._flatten_layers()
        if isinstance(layer, keras.layers.GroupNormalization)
    ]
    assert len(norms) > 2
    assert all(isinstance(n, kd.layers.GroupNormalization) for n in norms)


def test_save_and_load(tmp_path):
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, kd.layers.GroupNormalization(2, epsilon=1e-5)(inputs))
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.standard_normal(variable.shape))
    path = str(tmp_path / "norm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1]) is kd.layers.GroupNormalization
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    x = _inputs((2, 4, 4, 8))
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)), atol=1e-6
    )
