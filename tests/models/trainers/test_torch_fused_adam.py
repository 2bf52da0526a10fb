"""The fused Adam route on PyTorch against Keras' own update and Adam's formula."""

import keras
import numpy as np
import pytest

from tests.helpers import count_calls, tiny_compiled_model

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="a PyTorch-backend update route"
)

SHAPES = [(3, 3, 4, 8), (8,), (5, 7), (1,)]


@pytest.fixture
def fused():
    from keras_ddpm.models.trainers import torch_fused_adam

    if not torch_fused_adam._has_kernel():
        pytest.skip("this PyTorch has no fused Adam kernel for CPUs (before 2.4)")
    return torch_fused_adam


def _weights(dtype="float32"):
    rng = np.random.default_rng(0)
    return [
        keras.Variable(rng.normal(size=shape), dtype=dtype, name=f"w{i}")
        for i, shape in enumerate(SHAPES)
    ]


def _gradients(step, dtype="float32"):
    """Gradients of about 1e-3: with epsilon 1e-4, where epsilon goes matters."""
    import torch

    rng = np.random.default_rng(100 + step)
    return [
        torch.as_tensor(1e-3 * rng.normal(size=shape), dtype=getattr(torch, dtype))
        for shape in SHAPES
    ]


def _run(apply, optimizer, steps=5, dtype="float32"):
    weights = _weights(dtype)
    for step in range(steps):
        apply(optimizer, _gradients(step, dtype), weights)
    return weights


def _keras_apply(optimizer, gradients, weights):
    optimizer.apply(gradients, weights)


def _state(optimizer, weights):
    values = [weights, optimizer._momentums, optimizer._velocities]
    return [keras.ops.convert_to_numpy(v) for group in values for v in group]


CONFIGS = {
    "adamw, schedule": lambda: keras.optimizers.AdamW(
        keras.optimizers.schedules.CosineDecay(
            1e-3, 20, warmup_target=3e-3, warmup_steps=2
        ),
        weight_decay=0.01,
        beta_1=0.8,
        beta_2=0.99,
        epsilon=1e-4,
    ),
    "adam": lambda: keras.optimizers.Adam(1e-2, epsilon=1e-4),
    "accumulation, clipping": lambda: keras.optimizers.AdamW(
        1e-2, epsilon=1e-4, gradient_accumulation_steps=2, global_clipnorm=1e-3
    ),
}


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_keras_update(fused, monkeypatch, config):
    import torch

    reference = CONFIGS[config]()
    expected = _run(_keras_apply, reference)
    optimizer = CONFIGS[config]()
    calls = count_calls(monkeypatch, torch, "_fused_adam_")
    weights = _run(fused.apply, optimizer)
    assert calls[0] == (2 if "accumulation" in config else 5)
    assert int(optimizer.iterations) == int(reference.iterations) > 1
    np.testing.assert_allclose(
        np.concatenate([s.ravel() for s in _state(optimizer, weights)]),
        np.concatenate([s.ravel() for s in _state(reference, expected)]),
        rtol=1e-5,
        atol=1e-7,
    )


def test_matches_adam_formula(fused):
    """AdamW: w ← w·(1 − lr·λ), then Kingma & Ba's step with Keras' epsilon."""
    lr, decay, beta_1, beta_2, epsilon = 1e-2, 0.05, 0.9, 0.999, 1e-4
    optimizer = keras.optimizers.AdamW(
        lr, weight_decay=decay, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon
    )
    weights = _run(fused.apply, optimizer, steps=4)
    w = [keras.ops.convert_to_numpy(weight).astype(np.float64) for weight in _weights()]
    m = [np.zeros(shape) for shape in SHAPES]
    v = [np.zeros(shape) for shape in SHAPES]
    for step in range(4):
        t = step + 1
        for i, g in enumerate(_gradients(step)):
            g = g.numpy().astype(np.float64)
            w[i] = w[i] * (1 - lr * decay)
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            w[i] = w[i] - alpha * m[i] / (np.sqrt(v[i]) + epsilon)
    for got, want in zip(weights, w):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-7
        )


@pytest.mark.parametrize(
    "case",
    ["amsgrad", "float64", "subclass", "sgd"],
)
def test_falls_back_to_keras(fused, monkeypatch, case):
    import torch

    dtype = "float64" if case == "float64" else "float32"

    class Subclass(keras.optimizers.Adam):
        pass

    def make():
        if case == "amsgrad":
            return keras.optimizers.Adam(1e-2, amsgrad=True)
        if case == "subclass":
            return Subclass(1e-2)
        if case == "sgd":
            return keras.optimizers.SGD(1e-2, momentum=0.9)
        return keras.optimizers.Adam(1e-2)

    expected = _run(_keras_apply, make(), steps=3, dtype=dtype)
    calls = count_calls(monkeypatch, torch, "_fused_adam_")
    weights = _run(fused.apply, make(), steps=3, dtype=dtype)
    assert calls[0] == 0
    for got, want in zip(weights, expected):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
        )


def test_leaves_the_optimizer_as_it_was(fused):
    optimizer = keras.optimizers.AdamW(1e-3)
    weights = _weights()
    fused.apply(optimizer, _gradients(0), weights)
    assert "_parallel_update_step" not in vars(optimizer)
    with pytest.raises(ValueError):
        fused.apply(optimizer, _gradients(0)[:2], weights[:2] + [keras.Variable(1.0)])
    assert "_parallel_update_step" not in vars(optimizer)


def test_fit_takes_the_fused_route(fused, monkeypatch):
    import torch

    model = tiny_compiled_model()
    images = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 3)).astype("float32")
    model.fit(images, batch_size=4, epochs=1, verbose=0)  # builds the optimizer
    calls = count_calls(monkeypatch, torch, "_fused_adam_")
    before = [w.numpy().copy() for w in model.network.trainable_weights]
    model.fit(images, batch_size=4, epochs=1, verbose=0)
    assert calls[0] == 2
    after = [w.numpy() for w in model.network.trainable_weights]
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))
