"""Class-conditional models and classifier-free guidance, against a closed form.

Data: a mixture of two classes, x0 | k ~ N(μ_k, s²) per pixel, each class with
probability 1/2. With α = sqrt(ᾱ), σ = sqrt(1 − ᾱ) and v = α²s² + σ², the ideal
conditional noise predictor is E[ε | x_t, k] = σ(x_t − αμ_k)/v, and the ideal
unconditional one the posterior-weighted mixture Σ_k w_k(x_t)·E[ε | x_t, k] with
w_k ∝ exp(−|x_t − αμ_k|²/2v) (the classes share v). Given these as the network
(label 2 = the null label), `generate(labels=k)` must propagate exactly as a
sampler on class k's Gaussian, and guidance must be null + s·(label − null).
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.gaussian import S, assert_moments, exact_moments, rate_tables
from tests.helpers import count_calls

BACKEND = keras.backend.backend()
MEANS = (-0.4, 0.3)
IMAGE = (8, 8, 1)  # 64 independent pixels per image


def exact_eps(x, ab, label):
    """numpy E[ε | x_t] for images `x`, ᾱ scalar, one label per image (2: null)."""
    alpha, sigma = np.sqrt(ab), np.sqrt(1 - ab)
    v = ab * S**2 + 1 - ab
    per_class = [sigma * (x - alpha * m) / v for m in MEANS]
    flat = x.reshape(len(x), -1)
    logits = np.stack(
        [-((flat - alpha * m) ** 2).sum(1) / (2 * v) for m in MEANS], axis=1
    )
    w = np.exp(logits - logits.max(1, keepdims=True))
    w = (w / w.sum(1, keepdims=True)).reshape((len(x), 2) + (1,) * (x.ndim - 1))
    mixture = w[:, 0] * per_class[0] + w[:, 1] * per_class[1]
    label = label.reshape((-1,) + (1,) * (x.ndim - 1))
    return np.where(
        label == 0, per_class[0], np.where(label == 1, per_class[1], mixture)
    )


class MixtureOracle(keras.layers.Layer):
    """The exact E[ε | x_t, label] of the two-class mixture, label 2 = unconditional."""

    def __init__(self, schedule, **kwargs):
        super().__init__(**kwargs)
        self.tables = rate_tables(schedule)

    def call(self, inputs):
        x, t, labels = inputs
        alpha, sigma = kd.ops.rates_at(t, *self.tables)
        alpha = ops.reshape(alpha, (-1, 1, 1, 1))
        sigma = ops.reshape(sigma, (-1, 1, 1, 1))
        v = alpha**2 * S**2 + sigma**2
        per_class = [sigma * (x - alpha * m) / v for m in MEANS]
        logits = ops.stack(
            [
                -ops.sum((x - alpha * m) ** 2, axis=(1, 2, 3)) / (2 * v[:, 0, 0, 0])
                for m in MEANS
            ],
            axis=1,
        )
        w = ops.reshape(ops.softmax(logits, axis=1), (-1, 2, 1, 1, 1))
        mixture = w[:, 0] * per_class[0] + w[:, 1] * per_class[1]
        labels = ops.reshape(labels, (-1, 1, 1, 1))
        return ops.where(
            labels == 0, per_class[0], ops.where(labels == 1, per_class[1], mixture)
        )


def oracle(schedule):
    images = keras.Input(IMAGE)
    timesteps = keras.Input(())
    labels = keras.Input((), dtype="int32")
    outputs = MixtureOracle(schedule)([images, timesteps, labels])
    network = keras.Model([images, timesteps, labels], outputs)
    return kd.DiffusionModel(network, schedule=schedule, num_classes=2)


@pytest.fixture(scope="module")
def model():
    return oracle(kd.schedules.LinearSchedule())


@pytest.mark.parametrize("kind,kwargs", [("ddim", {"eta": 0.0}), ("ddpm", {})])
@pytest.mark.parametrize("label", [0, 1])
def test_a_label_samples_its_class_exactly(model, kind, kwargs, label):
    sampler = kd.samplers.get({"name": kind, "clip": False, **kwargs})
    timesteps = sampler.timesteps(model.schedule, 50)
    mean, std = exact_moments(
        kind, model.schedule, timesteps, mu=MEANS[label], **kwargs
    )
    out = model.generate(
        512, sampler=sampler, steps=50, seed=3, labels=label, batch_size=512
    )
    assert_moments(out, mean, std)


def test_guidance_is_null_plus_scale_times_the_difference(model):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6,) + IMAGE).astype("float32")
    labels = np.array([0, 1, 0, 1, 1, 0], "int32")
    weights = model.sampling_weights()
    t = 400
    ab = model.schedule.alphas_cumprod[t]
    conditional = exact_eps(x.astype(np.float64), ab, labels)
    null = exact_eps(x.astype(np.float64), ab, np.full(6, 2))
    for scale in (1.0, 3.0, 0.0):
        _, eps = model.denoise(
            weights,
            [],
            ops.convert_to_tensor(x),
            t,
            {"labels": ops.convert_to_tensor(labels), "guidance_scale": scale},
        )
        expected = null + scale * (conditional - null)
        np.testing.assert_allclose(ops.convert_to_numpy(eps), expected, atol=2e-5)
    # Without labels a conditional model predicts with the null label.
    _, eps = model.denoise(weights, [], ops.convert_to_tensor(x), t)
    np.testing.assert_allclose(ops.convert_to_numpy(eps), null, atol=2e-5)


def test_guided_generation_runs_the_formula_in_the_sampler(model):
    # The sampler fed the guided formula directly (numpy-built labels, the
    # oracle's own predictions) must give generate's images.
    sampler = kd.samplers.DDIMSampler(eta=0.0, clip=False)
    noise = np.random.default_rng(1).standard_normal((4,) + IMAGE).astype("float32")
    labels = np.array([0, 1, 1, 0], "int32")
    oracle_layer = model.network.layers[-1]
    tables = rate_tables(model.schedule)

    def denoise(x, t):
        steps = ops.broadcast_to(ops.cast(t, "float32"), (4,))
        label = oracle_layer([x, steps, ops.convert_to_tensor(labels)])
        null = oracle_layer([x, steps, ops.full((4,), 2, "int32")])
        eps = null + 2.5 * (label - null)
        alpha, sigma = kd.ops.rates_at(t, *tables)
        return (x - sigma * eps) / alpha, eps

    expected = sampler.sample(denoise, noise, model.schedule, steps=10, seed=0)
    out = model.generate(
        None,
        sampler=sampler,
        steps=10,
        initial_noise=noise,
        labels=labels,
        guidance_scale=2.5,
    )
    np.testing.assert_allclose(out, ops.convert_to_numpy(expected), atol=1e-4)


def test_unconditional_sampling_of_a_conditional_model_is_the_mixture(model):
    sampler = {"name": "ddim", "eta": 0.0, "clip": False}
    out = model.generate(2000, sampler=sampler, steps=50, seed=0, batch_size=2000)
    means = out.reshape(2000, -1).mean(1)
    # Every image is one class's (its 64 pixels share a mean near μ_k), and
    # both classes come out about equally often.
    near = np.minimum(np.abs(means - MEANS[0]), np.abs(means - MEANS[1]))
    assert np.quantile(near, 0.99) < 0.1
    share = (np.abs(means - MEANS[1]) < np.abs(means - MEANS[0])).mean()
    assert 0.45 < share < 0.55, share


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(labels=2), r"Class labels must lie in \[0, 2\), got values in \[2, 2\]"),
        (dict(labels=-1), r"must lie in \[0, 2\)"),
        (dict(labels=[0, 1]), r"array of 3 labels \(one per image\), got shape \(2,\)"),
        (dict(labels=np.array([0.0, 1.0, 1.0])), "must be an int or integers"),
        (dict(labels=0, guidance_scale=float("nan")), "guidance_scale"),
    ],
)
def test_bad_labels_get_one_line_errors(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.generate(3, steps=2, seed=0, **kwargs)


def test_unconditional_models_refuse_labels():
    net = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, attention_levels=()
    )
    plain = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    with pytest.raises(ValueError, match="unconditional .* no `labels`"):
        plain.generate(2, steps=2, labels=0)
    with pytest.raises(ValueError, match="needs a network that takes labels"):
        kd.DiffusionModel(net, num_classes=3)
    conditional = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, attention_levels=(), num_classes=3
    )
    with pytest.raises(ValueError, match="give the model `num_classes`"):
        kd.DiffusionModel(conditional)
    with pytest.raises(ValueError, match="label_dropout"):
        kd.DiffusionModel(conditional, num_classes=3, label_dropout=1.0)
    with pytest.raises(ValueError, match="3 names"):
        kd.DiffusionModel(conditional, num_classes=3, class_names=["a", "b"])


@pytest.mark.skipif(BACKEND == "torch", reason="Keras runs torch eagerly: no trace")
def test_new_labels_and_scales_reuse_the_program(model, monkeypatch):
    kwargs = dict(sampler="ddim", steps=3, seed=0)
    model.generate(4, labels=0, guidance_scale=2.0, **kwargs)
    traces = count_calls(monkeypatch, model, "denoise")
    model.generate(4, labels=[1, 0, 1, 1], guidance_scale=4.0, **kwargs)
    model.generate(4, labels=1, guidance_scale=1.5, **kwargs)
    assert traces[0] == 0


def two_class_data(n=64, seed=0):
    """Dark images (label 0) and light ones (label 1), with a little noise."""
    labels = (np.arange(n) % 2).astype("int32")
    level = np.where(labels == 0, -0.5, 0.5)[:, None, None, None]
    noise = 0.05 * np.random.default_rng(seed).standard_normal((n, 8, 8, 3))
    return (level + noise).astype("float32"), labels


@pytest.mark.skipif(
    BACKEND != "jax",
    reason="400 training steps, run once, under JAX: the conditional loss is the "
    "same keras.ops code on every backend (the label dropout and the label checks "
    "are tested on all three)",
)
def test_a_tiny_conditional_model_learns_to_draw_the_asked_class(tmp_path):
    keras.utils.set_random_seed(0)
    net = kd.models.build_unet(
        image_size=8,
        widths=(8,),
        block_depth=1,
        groups=4,
        attention_levels=(),
        num_classes=2,
    )
    model = kd.DiffusionModel(
        net,
        schedule={"name": "cosine", "timesteps": 100},
        prediction="v",
        ema_momentum=None,
        num_classes=2,
        label_dropout=0.3,
        class_names=["dark", "light"],
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    images, labels = two_class_data()
    model.fit(images, labels, batch_size=16, epochs=100, verbose=0)
    kwargs = dict(sampler="ddim", steps=10, seed=0)
    dark = model.generate(8, labels=0, **kwargs)
    light = model.generate(8, labels=1, **kwargs)
    assert dark.mean() < -0.3 and light.mean() > 0.3, (dark.mean(), light.mean())
    # Trained with the null label 30 % of the time, it also samples both
    # classes unconditionally.
    free = model.generate(16, **kwargs).reshape(16, -1).mean(1)
    assert (free < -0.3).any() and (free > 0.3).any(), free

    path = tmp_path / "conditional.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert (loaded.num_classes, loaded.label_dropout) == (2, 0.3)
    assert loaded.class_names == ["dark", "light"]
    mixed = [0, 1, 1, 0]
    np.testing.assert_allclose(
        loaded.generate(4, labels=mixed, guidance_scale=2.0, **kwargs),
        model.generate(4, labels=mixed, guidance_scale=2.0, **kwargs),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "labels,message",
    [
        (None, r"train it on \(images, labels\) batches"),
        (np.zeros(16, "float32"), r"Expected integer class labels in \[0, 2\)"),
        (np.full(16, 2, "int32"), r"Class labels must lie in \[0, 2\)"),
    ],
)
def test_fit_checks_the_labels_first(model, labels, message):
    model.compile(optimizer="adam")
    images = np.zeros((16,) + IMAGE, "float32")
    with pytest.raises(ValueError, match=message):
        model.fit(images, labels, batch_size=8, epochs=1, verbose=0)


def test_fit_takes_a_dataset_of_pairs():
    tf = pytest.importorskip("tensorflow")
    net = kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, attention_levels=(), num_classes=2
    )
    model = kd.DiffusionModel(net, num_classes=2)
    model.compile(optimizer="adam")
    images = np.zeros((8, 8, 8, 3), "float32")
    pairs = tf.data.Dataset.from_tensor_slices((images, np.arange(8) % 2)).batch(4)
    history = model.fit(pairs, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    floats = tf.data.Dataset.from_tensor_slices((images, np.zeros(8, "float32")))
    with pytest.raises(ValueError, match="Expected integer class labels"):
        model.fit(floats.batch(4), epochs=1, verbose=0)


def test_label_dropout_nulls_the_asked_fraction_and_keeps_the_rest():
    from keras_ddpm.models.conditioning import drop_labels

    n, p = 20_000, 0.1
    labels = (np.arange(n) % 3).astype("int32")
    dropped = ops.convert_to_numpy(
        drop_labels(ops.convert_to_tensor(labels), 3, p, keras.random.SeedGenerator(0))
    )
    nulled = dropped == 3
    # Binomial(n, p): 5 standard deviations either side.
    assert abs(nulled.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(dropped[~nulled], labels[~nulled])
    assert drop_labels(labels, 3, 0.0, keras.random.SeedGenerator(0)) is labels

    # Each of two replicas keeps its own half of one global draw.
    halves = [
        ops.convert_to_numpy(
            drop_labels(
                ops.convert_to_tensor(labels[:8]),
                3,
                0.5,
                keras.random.SeedGenerator(1),
                replica=(2, index),
            )
        )
        for index in (0, 1)
    ]
    whole = ops.convert_to_numpy(
        drop_labels(
            ops.convert_to_tensor(np.concatenate([labels[:8]] * 2)),
            3,
            0.5,
            keras.random.SeedGenerator(1),
        )
    )
    np.testing.assert_array_equal(np.concatenate(halves), whole)
