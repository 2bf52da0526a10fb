"""The fused Adam route on PyTorch against Keras' own update and Adam's formula."""

import keras
import numpy as np
import pytest

from tests.helpers import count_calls, tiny_compiled_model
from tests.models.trainers import adam_reference

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="a PyTorch-backend update route"
)


@pytest.fixture
def route():
    """The module, on any PyTorch: for what must hold with or without a kernel."""
    from keras_ddpm.models.trainers import torch_fused_adam

    torch_fused_adam._has_kernel()  # its one probe, before any call is counted
    return torch_fused_adam


@pytest.fixture
def fused(route):
    """The module, where this PyTorch has the kernel for CPUs."""
    if not route._has_kernel():
        pytest.skip("this PyTorch has no fused Adam kernel for CPUs (before 2.4)")
    return route


def _gradients(step, dtype="float32"):
    import torch

    return [
        torch.as_tensor(g, dtype=getattr(torch, dtype))
        for g in adam_reference.gradients(step, dtype)
    ]


def _run(apply, optimizer, steps=5, dtype="float32"):
    weights = adam_reference.weights(dtype)
    for step in range(steps):
        apply(optimizer, _gradients(step, dtype), weights)
    return weights


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
    "adam, beta_2 0.9999": lambda: keras.optimizers.Adam(
        1e-2, beta_2=0.9999, epsilon=1e-4
    ),
    "accumulation, clipping": lambda: keras.optimizers.AdamW(
        1e-2, epsilon=1e-4, gradient_accumulation_steps=2, global_clipnorm=1e-3
    ),
}


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_keras_update(fused, monkeypatch, config):
    import torch

    reference = CONFIGS[config]()
    expected = _run(adam_reference.keras_apply, reference)
    optimizer = CONFIGS[config]()
    calls = count_calls(monkeypatch, torch, "_fused_adam_")
    weights = _run(fused.apply, optimizer)
    assert calls[0] == (2 if "accumulation" in config else 5)
    assert int(optimizer.iterations) == int(reference.iterations) > 1
    adam_reference.assert_states_close(
        adam_reference.state(optimizer, weights),
        adam_reference.state(reference, expected),
    )


def test_matches_adam_formula(fused):
    """AdamW: w ← w·(1 − lr·λ), then Kingma & Ba's step with Keras' epsilon."""
    adam_reference.check_adamw_formula(
        lambda optimizer, steps: _run(fused.apply, optimizer, steps=steps)
    )


def _keras_subclass(route):
    """A subclass of Keras' PyTorch Adam that replaces the update (a no-op)."""

    class Replaced(route.torch_adam.Adam):
        def _parallel_update_step(self, grads, variables, learning_rate):
            pass

    return Replaced(1e-2)


FALLBACKS = {
    "amsgrad": lambda route: keras.optimizers.Adam(1e-2, amsgrad=True),
    "public subclass": lambda route: type("Sub", (keras.optimizers.Adam,), {})(1e-2),
    "replaced update": _keras_subclass,
    "sgd": lambda route: keras.optimizers.SGD(1e-2, momentum=0.9),
    "float64": lambda route: keras.optimizers.Adam(1e-2),
    "no kernel": lambda route: keras.optimizers.Adam(1e-2),
    "compiling": lambda route: keras.optimizers.Adam(1e-2),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_falls_back_to_keras(route, monkeypatch, case):
    """Keras' own path, bit for bit, and no kernel call (also before PyTorch 2.4)."""
    import torch

    dtype = "float64" if case == "float64" else "float32"
    expected = _run(
        adam_reference.keras_apply, FALLBACKS[case](route), steps=3, dtype=dtype
    )
    if case == "no kernel":
        monkeypatch.setattr(route, "_has_kernel", lambda: False)
    if case == "compiling":
        monkeypatch.setattr(route, "torch_compiling", lambda: True)
    calls = count_calls(monkeypatch, torch, "_fused_adam_")
    weights = _run(route.apply, FALLBACKS[case](route), steps=3, dtype=dtype)
    assert calls[0] == 0
    for got, want in zip(weights, expected):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
        )


def test_non_contiguous_weight_takes_keras_path(fused, monkeypatch):
    """The kernel walks memory in order: a transposed weight must not reach it."""
    import torch

    rng = np.random.default_rng(1)

    def weights():
        return [
            keras.Variable(rng.normal(size=(4, 3)).T, dtype="float32"),
            keras.Variable(np.ones(3), dtype="float32"),
        ]

    grads = [torch.full((3, 4), 1e-3), torch.full((3,), 1e-3)]
    reference, optimizer = keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2)
    expected = weights()
    rng = np.random.default_rng(1)
    got = weights()
    if got[0].value.is_contiguous():
        pytest.skip("this Keras stores a transposed value contiguously")
    calls = count_calls(monkeypatch, torch, "_fused_adam_")
    for _ in range(3):
        reference.apply([g.clone() for g in grads], expected)
        fused.apply(optimizer, [g.clone() for g in grads], got)
    assert calls[0] == 0
    for g, w in zip(
        adam_reference.state(optimizer, got), adam_reference.state(reference, expected)
    ):
        np.testing.assert_array_equal(g, w)


def test_a_missing_gradient_is_skipped_as_keras_skips_it(fused):
    adam_reference.check_missing_gradient_skipped(
        fused.apply, lambda: keras.optimizers.AdamW(1e-2), _gradients
    )


def test_written_tensors_count_as_changed(fused):
    """Their version counters rise, so `Conv2D` renews its kept kernel copy."""
    import torch

    from keras_ddpm.layers.conv import Conv2D

    layer = Conv2D(4, 3, padding="same")
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 3)).astype("float32")
    layer(x)
    optimizer = keras.optimizers.Adam(1e-1)  # no decay: only the kernel writes
    versions = [w.value._version for w in layer.trainable_weights]
    with torch.no_grad():
        layer(x)  # keeps the kernel's copy
        grads = [torch.ones_like(w.value) for w in layer.trainable_weights]
        fused.apply(optimizer, grads, layer.trainable_weights)
        got = keras.ops.convert_to_numpy(layer(x))
    assert all(w.value._version > v for w, v in zip(layer.trainable_weights, versions))
    reference = keras.layers.Conv2D(4, 3, padding="same")
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        got, keras.ops.convert_to_numpy(reference(x)), rtol=1e-5, atol=1e-6
    )


def test_leaves_the_optimizer_as_it_was(fused, monkeypatch):
    import torch

    optimizer = keras.optimizers.AdamW(1e-3)
    weights = adam_reference.weights()
    fused.apply(optimizer, _gradients(0), weights)
    assert "_parallel_update_step" not in vars(optimizer)

    def broken(*args, **kwargs):
        raise RuntimeError("kernel failed")

    monkeypatch.setattr(torch, "_fused_adam_", broken)
    with pytest.raises(RuntimeError, match="kernel failed"):
        fused.apply(optimizer, _gradients(1), weights)
    assert "_parallel_update_step" not in vars(optimizer)


def test_an_instance_hook_is_kept_and_used(fused, monkeypatch):
    import torch

    optimizer = keras.optimizers.Adam(1e-3)
    weights = adam_reference.weights()
    optimizer.build(weights)
    hooked = []
    optimizer.__dict__["_parallel_update_step"] = lambda *args: hooked.append(1)
    calls = count_calls(monkeypatch, torch, "_fused_adam_")
    fused.apply(optimizer, _gradients(0), weights)
    assert hooked == [1] and calls[0] == 0
    assert "_parallel_update_step" in vars(optimizer)


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
