"""The one-kernel Adam route on TensorFlow against Keras' own update and Adam's formula."""

import contextlib

import keras
import numpy as np
import pytest

from tests.helpers import count_calls, tiny_compiled_model
from tests.models.trainers import adam_reference
from tests.models.trainers.adam_reference import SHAPES

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="a TensorFlow-backend update route"
)


@pytest.fixture
def route():
    from keras_ddpm.models.trainers import tensorflow_fused_adam

    return tensorflow_fused_adam


@pytest.fixture
def kernel_calls(monkeypatch):
    """Calls of `tf.raw_ops.ResourceApplyAdam` (in a compiled step: traces)."""
    import tensorflow as tf

    return count_calls(monkeypatch, tf.raw_ops, "ResourceApplyAdam")


def _run(apply, optimizer, steps=5, dtype="float32", compiled=None, strategy=None):
    """`steps` updates, eagerly (None) or in a `tf.function` (its `jit_compile`);
    with a `tf.distribute` strategy, in its replica context."""
    import tensorflow as tf

    with strategy.scope() if strategy else contextlib.nullcontext():
        weights = adam_reference.weights(dtype)
        optimizer.build(weights)

    def update(gradients):
        apply(optimizer, list(gradients), weights)

    if compiled is not None:
        update = tf.function(update, jit_compile=compiled)
    for step in range(steps):
        gradients = [tf.constant(g) for g in adam_reference.gradients(step, dtype)]
        if strategy:
            strategy.run(update, args=(gradients,))
        else:
            update(gradients)
    return weights


# The kernel takes 1 − β in float32, Keras in double before its product: βs
# whose 1 − β float32 holds exactly make the two updates agree to rounding
# (`test_default_betas_round_alike` prices the difference at Keras' βs).
EXACT_BETA_1, EXACT_BETA_2 = 1 - 2**-3, 1 - 2**-10
CONFIGS = {
    "adamw, schedule": lambda: keras.optimizers.AdamW(
        keras.optimizers.schedules.CosineDecay(
            1e-3, 20, warmup_target=3e-3, warmup_steps=2
        ),
        weight_decay=0.01,
        beta_1=1 - 2**-2,
        beta_2=1 - 2**-7,
        epsilon=1e-4,
    ),
    "adam": lambda: keras.optimizers.Adam(
        1e-2, beta_1=EXACT_BETA_1, beta_2=EXACT_BETA_2, epsilon=1e-4
    ),
    "adam, beta_2 near 1": lambda: keras.optimizers.Adam(
        1e-2, beta_1=EXACT_BETA_1, beta_2=1 - 2**-14, epsilon=1e-4
    ),
    "accumulation, clipping": lambda: keras.optimizers.AdamW(
        1e-2,
        beta_1=EXACT_BETA_1,
        beta_2=EXACT_BETA_2,
        epsilon=1e-4,
        gradient_accumulation_steps=2,
        global_clipnorm=1e-3,
    ),
}


@pytest.mark.parametrize("compiled", [None, False, True], ids=["eager", "graph", "xla"])
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_keras_update(route, kernel_calls, config, compiled):
    reference = CONFIGS[config]()
    expected = _run(adam_reference.keras_apply, reference, compiled=compiled)
    optimizer = CONFIGS[config]()
    before = kernel_calls[0]
    weights = _run(route.apply, optimizer, compiled=compiled)
    # Eagerly, one call per weight and update (accumulation: every second
    # step); compiled, the trace calls it once per weight.
    updates = 1 if compiled is not None else (2 if "accumulation" in config else 5)
    assert kernel_calls[0] - before == updates * len(SHAPES)
    assert int(optimizer.iterations) == int(reference.iterations) > 1
    adam_reference.assert_states_close(
        adam_reference.state(optimizer, weights),
        adam_reference.state(reference, expected),
    )


def test_default_betas_round_alike(route):
    """At Keras' βs (0.9, 0.999) the kernel's 1 − β are float32's: the second
    moments differ by about 1.3e-5 of themselves, the weights' steps by half
    that, and nothing else differs."""
    reference, optimizer = keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2)
    expected = _run(adam_reference.keras_apply, reference)
    got = adam_reference.state(optimizer, _run(route.apply, optimizer))
    want = adam_reference.state(reference, expected)
    start = np.concatenate(
        [keras.ops.convert_to_numpy(w).ravel() for w in adam_reference.weights()]
    )
    ulps = 2 * np.finfo(np.float32).eps * np.abs(start).max()
    np.testing.assert_allclose(got[0] - start, want[0] - start, rtol=1e-5, atol=ulps)
    np.testing.assert_allclose(
        got[1], want[1], rtol=2e-6, atol=2e-6 * np.abs(want[1]).max()
    )
    gap = np.abs(got[2] / want[2] - 1)
    assert 5e-6 < np.median(gap) < 3e-5 and gap.max() < 3e-5


def test_float64_weights_take_the_kernel_and_match_keras(route, kernel_calls):
    def adam():
        return keras.optimizers.Adam(1e-2, epsilon=1e-4)  # Keras' own βs

    reference, optimizer = adam(), adam()
    expected = _run(adam_reference.keras_apply, reference, dtype="float64")
    weights = _run(route.apply, optimizer, dtype="float64")
    assert kernel_calls[0] == 5 * len(SHAPES)
    adam_reference.assert_states_close(
        adam_reference.state(optimizer, weights),
        adam_reference.state(reference, expected),
    )


def test_a_sparse_gradient_keeps_keras_update_for_its_weight(route, kernel_calls):
    import tensorflow as tf

    def sparse_first(step):
        grads = [tf.constant(g) for g in adam_reference.gradients(step)]
        rows = tf.range(SHAPES[0][0])
        grads[0] = tf.IndexedSlices(grads[0], rows, tf.constant(SHAPES[0]))
        return grads

    def adam():
        return keras.optimizers.Adam(1e-2, beta_1=EXACT_BETA_1, beta_2=EXACT_BETA_2)

    reference, optimizer = adam(), adam()
    expected, got = adam_reference.weights(), adam_reference.weights()
    optimizer.build(got)  # else its first call takes Keras' path, which builds
    for step in range(3):
        reference.apply(sparse_first(step), expected)
        route.apply(optimizer, sparse_first(step), got)
    assert kernel_calls[0] == 3 * (len(SHAPES) - 1)
    adam_reference.assert_states_close(
        adam_reference.state(optimizer, got), adam_reference.state(reference, expected)
    )


def test_matches_adam_formula(route):
    """AdamW: w ← w·(1 − lr·λ), then Kingma & Ba's step with Keras' epsilon."""
    adam_reference.check_adamw_formula(
        lambda optimizer, steps: _run(route.apply, optimizer, steps=steps)
    )


FALLBACKS = {
    "amsgrad": lambda: keras.optimizers.Adam(1e-2, amsgrad=True),
    "public subclass": lambda: type("Sub", (keras.optimizers.Adam,), {})(1e-2),
    "sgd": lambda: keras.optimizers.SGD(1e-2, momentum=0.9),
    "float16 weights": lambda: keras.optimizers.Adam(1e-2),
    "strategy": lambda: keras.optimizers.Adam(1e-2),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_falls_back_to_keras(route, kernel_calls, case):
    """Keras' own path, bit for bit, and no kernel call."""
    import tensorflow as tf

    dtype = "float16" if case == "float16 weights" else "float32"
    strategy = None
    if case == "strategy":
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    runs = []
    for apply in (adam_reference.keras_apply, route.apply):
        with strategy.scope() if strategy else contextlib.nullcontext():
            optimizer = FALLBACKS[case]()
        runs.append(_run(apply, optimizer, steps=3, dtype=dtype, strategy=strategy))
    expected, weights = runs
    assert kernel_calls[0] == 0
    for got, want in zip(weights, expected):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
        )


def test_a_missing_gradient_is_skipped_as_keras_skips_it(route):
    adam_reference.check_missing_gradient_skipped(
        route.apply,
        lambda: keras.optimizers.AdamW(1e-2, beta_1=EXACT_BETA_1, beta_2=EXACT_BETA_2),
        adam_reference.gradients,
    )


def test_leaves_the_optimizer_as_it_was(route):
    optimizer = keras.optimizers.Adam(1e-2)
    _run(route.apply, optimizer, steps=1)
    assert "update_step" not in vars(optimizer)


def test_the_training_step_takes_the_kernel_for_every_weight(kernel_calls):
    """`DiffusionModel.fit` on TensorFlow traces one kernel call per weight."""
    model = tiny_compiled_model()
    images = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    model.fit(images, batch_size=2, epochs=1, verbose=0)
    assert kernel_calls[0] == len(model.trainable_variables)
    assert int(model.optimizer.iterations) == 2
