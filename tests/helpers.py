"""Shared test helper for layers, in the spirit of keras-hub's `run_layer_test`."""

import os
import tempfile

import keras
import numpy as np
from keras import ops

import keras_ddpm as kd


def _is_shape(value):
    return isinstance(value, tuple) and all(
        v is None or isinstance(v, int) for v in value
    )


def flatten_shapes(structure):
    if _is_shape(structure):
        return [structure]
    return [shape for item in structure for shape in flatten_shapes(item)]


def to_numpy(structure):
    return [np.asarray(ops.convert_to_numpy(t)) for t in keras.tree.flatten(structure)]


def run_layer_test(
    layer_cls, init_kwargs, input_data, expected_output_shape, atol=1e-5
):
    """Check a layer the way users will use it.

    - `get_config` / `from_config` round trip gives the same config;
    - an eager call gives outputs of `expected_output_shape` (nested allowed),
      agreeing with `compute_output_shape` and with a symbolic call;
    - under `mixed_bfloat16` / `mixed_float16` it computes in that dtype with
      float32 weights, and stays finite;
    - one `fit` step of a functional model around the layer runs and changes weights;
    - `.keras` save → `load_model(safe_mode=True)` gives identical outputs.

    Returns the eager outputs (flattened, as numpy) for the caller's numeric check.
    """
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config

    outputs = layer(input_data)
    expected = flatten_shapes(expected_output_shape)
    eager = to_numpy(outputs)
    assert [o.shape for o in eager] == expected

    input_shapes = keras.tree.map_structure(lambda a: tuple(np.shape(a)), input_data)
    assert flatten_shapes(layer.compute_output_shape(input_shapes)) == expected

    symbolic_inputs = keras.tree.map_structure(
        lambda a: keras.Input(np.shape(a)[1:], dtype=str(np.asarray(a).dtype)),
        input_data,
    )
    symbolic_layer = layer_cls(**init_kwargs)
    symbolic_outputs = keras.tree.flatten(symbolic_layer(symbolic_inputs))
    assert [tuple(o.shape)[1:] for o in symbolic_outputs] == [s[1:] for s in expected]

    for policy, compute in (
        ("mixed_bfloat16", "bfloat16"),
        ("mixed_float16", "float16"),
    ):
        mixed = layer_cls(**init_kwargs, dtype=policy)
        mixed_outputs = keras.tree.flatten(mixed(input_data))
        assert all(
            keras.backend.standardize_dtype(o.dtype) == compute for o in mixed_outputs
        )
        assert all(v.dtype == "float32" for v in mixed.weights)
        assert all(
            np.isfinite(o.astype("float32")).all() for o in to_numpy(mixed_outputs)
        )

    model = keras.Model(keras.tree.flatten(symbolic_inputs), symbolic_outputs)
    flat_inputs = keras.tree.flatten(input_data)
    if symbolic_layer.trainable_weights:
        before = [
            np.copy(ops.convert_to_numpy(w)) for w in symbolic_layer.trainable_weights
        ]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        targets = [np.ones(s, "float32") for s in expected]
        model.fit(
            flat_inputs, targets, batch_size=len(flat_inputs[0]), epochs=1, verbose=0
        )
        after = [ops.convert_to_numpy(w) for w in symbolic_layer.trainable_weights]
        assert any(not np.array_equal(b, a) for b, a in zip(before, after))

    reference = to_numpy(model(flat_inputs))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "layer.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    for ref, out in zip(reference, to_numpy(loaded(flat_inputs))):
        np.testing.assert_allclose(out, ref, atol=atol)
    return eager


def same_random_weights(ours, reference, shape, seed=0):
    """Build two layers of the same weight shapes on `shape` with equal random weights.

    Returns `(ours, reference)`, for tests that compare a layer with the one
    it stands in for.
    """
    ours.build(shape)
    reference.build(shape)
    rng = np.random.default_rng(seed)
    for a, b in zip(ours.weights, reference.weights):
        value = rng.standard_normal(a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    return ours, reference


def count_calls(monkeypatch, obj, name):
    """Wrap `obj.name` to count its calls; inside a compiled step, a call is a trace."""
    calls = [0]
    original = getattr(obj, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


class FakeClock:
    """Stands in for the `time` module: `monotonic()` returns `now`."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now


def tiny_compiled_model():
    """The smallest trainable `DiffusionModel`: 8×8 images, one level, AdamW."""
    net = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, groups=4, attention_levels=()
    )
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    return model
