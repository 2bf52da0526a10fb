"""What the fused Adam routes' tests share: weights, gradients, states and Adam's formula."""

import keras
import numpy as np

SHAPES = [(3, 3, 4, 8), (8,), (5, 7), (1,)]


def weights(dtype="float32"):
    """Weights of about 0.1: small enough that float32 steps of them are finer
    than the differences the tests look for."""
    rng = np.random.default_rng(0)
    return [
        keras.Variable(0.1 * rng.normal(size=shape), dtype=dtype, name=f"w{i}")
        for i, shape in enumerate(SHAPES)
    ]


def gradients(step, dtype="float32"):
    """Numpy gradients of about 1e-3: with epsilon 1e-4, where epsilon goes matters."""
    rng = np.random.default_rng(100 + step)
    return [(1e-3 * rng.normal(size=shape)).astype(dtype) for shape in SHAPES]


def keras_apply(optimizer, gradients, weights):
    optimizer.apply(gradients, weights)


def state(optimizer, weights):
    """Weights, first moments, second moments: one flat array each."""
    groups = [weights, optimizer._momentums, optimizer._velocities]
    return [
        np.concatenate([keras.ops.convert_to_numpy(v).ravel() for v in group])
        for group in groups
    ]


def assert_states_close(got, want):
    """Each group to a tolerance of its own scale.

    The weights (about 0.1) are compared by how far they moved from
    `weights()` (about 1e-2), give or take two float32 steps of their own
    size; the second moments are about 1e-6.
    """
    start = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in weights()])
    ulps = 2 * np.finfo(np.float32).eps * np.abs(start).max()
    pairs = {
        "weight changes": (got[0] - start, want[0] - start, 1e-5, ulps),
        "first moments": (got[1], want[1], 2e-6, 0.0),
        "second moments": (got[2], want[2], 2e-6, 0.0),
    }
    for name, (g, w, rtol, floor) in pairs.items():
        atol = max(rtol * np.abs(w).max(), floor)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=name)


def adamw_by_formula(steps, lr, decay, beta_1, beta_2, epsilon):
    """`weights()` after `steps` AdamW steps on `gradients(step)`, in float64:
    w ← w·(1 − lr·λ), then Kingma & Ba's step with Keras' epsilon."""
    w = [keras.ops.convert_to_numpy(weight).astype(np.float64) for weight in weights()]
    m = [np.zeros(shape) for shape in SHAPES]
    v = [np.zeros(shape) for shape in SHAPES]
    for step in range(steps):
        t = step + 1
        for i, g in enumerate(gradients(step)):
            g = g.astype(np.float64)
            w[i] = w[i] * (1 - lr * decay)
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            w[i] = w[i] - alpha * m[i] / (np.sqrt(v[i]) + epsilon)
    return w


def check_missing_gradient_skipped(apply, make_optimizer, gradients_of):
    """`apply` leaves a weight without a gradient as Keras' `apply` leaves it.

    `gradients_of(step)`: the step's gradients as the backend takes them;
    the second weight gets None instead.
    """
    reference, optimizer = make_optimizer(), make_optimizer()
    expected, got = weights(), weights()
    for step in range(3):
        grads = list(gradients_of(step))
        grads[1] = None
        reference.apply(list(grads), expected)
        apply(optimizer, list(grads), got)
    assert_states_close(state(optimizer, got), state(reference, expected))
    untouched = keras.ops.convert_to_numpy(weights()[1])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got[1]), untouched)


def check_adamw_formula(run):
    """`run(optimizer, steps)` (the weights after `steps` updates by the route)
    follows `adamw_by_formula` with decay and Keras' default βs."""
    settings = dict(lr=1e-2, decay=0.05, beta_1=0.9, beta_2=0.999, epsilon=1e-4)
    optimizer = keras.optimizers.AdamW(
        settings["lr"],
        weight_decay=settings["decay"],
        beta_1=settings["beta_1"],
        beta_2=settings["beta_2"],
        epsilon=settings["epsilon"],
    )
    got = run(optimizer, 4)
    for weight, want in zip(got, adamw_by_formula(4, **settings)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(weight), want, rtol=1e-5, atol=1e-7
        )
