import gc
import warnings
import weakref

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.gaussian import SHAPE, assert_moments, exact_moments, oracle_model
from tests.helpers import count_calls

BACKEND = keras.backend.backend()
compiled_backends_only = pytest.mark.skipif(
    BACKEND == "torch", reason="Keras runs torch eagerly: there is no trace to count"
)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_every_prediction_type_samples_the_exact_gaussian(prediction):
    schedule = kd.schedules.LinearSchedule()
    model = oracle_model(prediction, schedule)
    noise = np.random.default_rng(0).standard_normal(SHAPE).astype("float32")
    for sampler in [
        kd.samplers.DDIMSampler(clip=False),
        kd.samplers.DDPMSampler(clip=False),
    ]:
        mean, std = exact_moments(
            "ddim" if isinstance(sampler, kd.samplers.DDIMSampler) else "ddpm",
            schedule,
            sampler.timesteps(schedule, 50),
        )
        out = model.generate(
            None, sampler=sampler, steps=50, initial_noise=noise, seed=1
        )
        assert_moments(out, mean, std)


def tiny_unet(image_size=8):
    return kd.models.build_unet(
        image_size=image_size, widths=(8, 16), block_depth=1, groups=4
    )


def minimal_unet():
    """One level, no attention: for tests of the training plumbing, cheap to trace."""
    return kd.models.build_unet(
        image_size=8, widths=(8,), block_depth=1, groups=4, attention_levels=()
    )


def images(n=8, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return np.tanh(rng.standard_normal((n, size, size, 3))).astype("float32")


def weights_of(variables):
    return [np.array(ops.convert_to_numpy(v.value)) for v in variables]


def test_ema_follows_its_formula_and_training_weights_stay_raw():
    model = kd.DiffusionModel(minimal_unet(), ema_momentum=0.9, ema_warmup=True, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = images()
    recorded = [weights_of(model.network.trainable_variables)]

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            recorded.append(weights_of(self.model.network.trainable_variables))

    model.fit(data, batch_size=8, epochs=4, verbose=0, callbacks=[Record()])
    ema = recorded[0]
    for k, weights in enumerate(recorded[1:]):
        m = min(0.9, (1 + k) / (10 + k))
        ema = [m * e + (1 - m) * w for e, w in zip(ema, weights)]
    for expected, actual in zip(ema, weights_of(model.ema_weights)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    for raw, final in zip(weights_of(model.network.trainable_variables), recorded[-1]):
        np.testing.assert_array_equal(raw, final)
    assert any(not np.allclose(e, w) for e, w in zip(ema, recorded[-1]))
    assert int(ops.convert_to_numpy(model.ema_updates.value)) == 4


def test_power_warmup_formula():
    model = kd.DiffusionModel(
        tiny_unet(),
        ema_momentum=0.999,
        ema_warmup="power",
        ema_inv_gamma=2.0,
        ema_power=0.75,
    )
    for step in [0, 3, 1000]:
        model.ema_updates.assign(step)
        expected = min(0.999, 1 - (1 + step / 2.0) ** -0.75)
        assert float(ops.convert_to_numpy(model._ema_momentum_now())) == pytest.approx(
            expected, rel=1e-5
        )


@pytest.mark.skipif(
    BACKEND != "jax",
    reason="120 optimizer steps: checked under JAX, where they take seconds; every "
    "backend's train step learns in test_validation_uses_ema",
)
def test_small_unet_overfits_a_batch():
    model = kd.DiffusionModel(tiny_unet(), ema_momentum=0.5, seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-2, weight_decay=0.0))
    low_resolution = np.random.default_rng(0).uniform(-1, 1, (8, 2, 2, 3))
    batch = np.repeat(np.repeat(low_resolution, 4, axis=1), 4, axis=2).astype("float32")
    initial = model.evaluate(
        batch, batch_size=8, verbose=0
    )  # ≈ 1: the output starts at 0
    # Each 'epoch' is 10 steps on the same 8 images: 120 steps in all (the loss
    # falls below a fifth of its start after about 80).
    history = model.fit(
        np.tile(batch, (10, 1, 1, 1)), batch_size=8, epochs=12, shuffle=False, verbose=0
    )
    final = np.mean(history.history["loss"][-3:])
    assert initial > 0.8
    assert final < initial / 5, (initial, history.history["loss"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = kd.DiffusionModel(
        minimal_unet(),
        schedule="cosine",
        ema_momentum=0.9,
        sampler={"name": "ddim", "eta": 0.5},
        seed=3,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(images(16), batch_size=8, epochs=1, verbose=0)
    return model


def test_generate_is_deterministic_and_returns_trajectory(trained):
    a = trained.generate(3, sampler="ddim", steps=5, seed=7)
    b = trained.generate(3, sampler="ddim", steps=5, seed=7)
    assert a.shape == (3, 8, 8, 3) and a.dtype == np.float32
    assert a.min() >= -1 and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, trained.generate(3, sampler="ddim", steps=5, seed=8))
    stochastic = [
        trained.generate(2, sampler="ddpm", steps=4, seed=1) for _ in range(2)
    ]
    np.testing.assert_array_equal(*stochastic)
    final, trajectory = trained.generate(2, steps=6, seed=1, return_trajectory=True)
    assert trajectory.shape == (7, 2, 8, 8, 3)
    np.testing.assert_array_equal(trajectory[-1], final)
    batched = trained.generate(5, sampler="ddim", steps=5, seed=7, batch_size=2)
    np.testing.assert_allclose(batched[:3], a, atol=1e-5)


def test_generate_uses_ema_unless_told(trained):
    # Part-way reconstruction stays inside [-1, 1], so clipping cannot hide the difference.
    data = images(2)
    ema = trained.reconstruct(data, 20, sampler="ddim", steps=2, seed=0)
    raw = trained.reconstruct(data, 20, sampler="ddim", steps=2, seed=0, use_ema=False)
    assert np.abs(ema - raw).max() > 1e-4


@compiled_backends_only
def test_first_fit_traces_the_train_step_once(monkeypatch):
    # The optimizer's variables exist before the first trace: a step that
    # created them would be traced twice by tf.function.
    model = kd.DiffusionModel(minimal_unet(), seed=0)
    model.compile(optimizer="adam")
    traces = count_calls(monkeypatch, model, "compute_training_loss")
    model.fit(images(16), batch_size=8, epochs=2, verbose=0)
    assert traces[0] == 1
    assert model.optimizer.iterations.numpy() == 4


@compiled_backends_only
def test_train_step_and_sampling_loop_compile_once(trained, monkeypatch):
    traces = count_calls(monkeypatch, trained, "compute_training_loss")
    trained.fit(images(16), batch_size=8, epochs=2, verbose=0)
    assert traces[0] == 0
    trained.make_train_function(force=True)  # a new trace is counted
    trained.fit(images(16), batch_size=8, epochs=1, verbose=0)
    assert traces[0] == 1
    sampling = count_calls(monkeypatch, trained, "denoise")
    trained.generate(4, sampler="ddim", steps=3, seed=0)
    assert sampling[0] == 1
    trained.generate(4, sampler="ddim", steps=3, seed=1)
    trained.generate(
        7, sampler="ddim", steps=3, seed=2, batch_size=4
    )  # padded last batch
    assert sampling[0] == 1


def test_a_model_and_its_guide_are_freed_after_sampling():
    # The compiled sampling programs call the model: kept outside it, they
    # would keep every model that ever sampled (and its guide) alive.
    model = kd.DiffusionModel(minimal_unet(), seed=0)
    guide = kd.DiffusionModel(minimal_unet(), seed=1)
    model.generate(2, sampler="ddim", steps=2, seed=0)
    model.generate(2, sampler="ddim", steps=2, seed=0, guide=guide)
    model.reconstruct(images(2), strength=0.5, steps=2)
    references = [weakref.ref(model), weakref.ref(guide)]
    del model, guide
    gc.collect()
    assert [reference() for reference in references] == [None, None]


def test_save_and_load_restore_everything(trained, tmp_path):
    path = tmp_path / "model.keras"
    trained.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in [
        (trained.ema_weights, loaded.ema_weights),
        (trained.network.weights, loaded.network.weights),
        (trained.optimizer.variables, loaded.optimizer.variables),
    ]:
        for x, y in zip(weights_of(a), weights_of(b)):
            np.testing.assert_array_equal(x, y)
    assert loaded.schedule == trained.schedule and loaded.sampler == trained.sampler
    np.testing.assert_allclose(
        loaded.generate(2, steps=4, seed=5),
        trained.generate(2, steps=4, seed=5),
        atol=1e-6,
    )
    step = int(ops.convert_to_numpy(loaded.optimizer.iterations.value))
    loaded.fit(images(8), batch_size=8, epochs=1, verbose=0)
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations.value)) == step + 1

    weights_path = tmp_path / "model.weights.h5"
    trained.save_weights(weights_path)
    fresh = kd.DiffusionModel(minimal_unet(), schedule="cosine", ema_momentum=0.9)
    fresh.load_weights(weights_path)
    for x, y in zip(weights_of(trained.ema_weights), weights_of(fresh.ema_weights)):
        np.testing.assert_array_equal(x, y)


def test_reconstruct(trained):
    data = images(2)
    almost = trained.reconstruct(data, 2, sampler="ddim", seed=0)
    assert almost.shape == data.shape
    assert np.abs(almost - data).mean() < 0.15  # barely noised: stays close
    _, trajectory = trained.reconstruct(
        data, 49, sampler="ddim", steps=5, seed=0, return_trajectory=True
    )
    assert trajectory.shape == (6, 2, 8, 8, 3)
    with pytest.raises(ValueError, match=r"`t` must be an int in \[0, 999\]"):
        trained.reconstruct(data, 1000)
    with pytest.raises(ValueError, match="must be float"):
        trained.reconstruct(data.astype("uint8"), 5)


def test_reconstruct_strength_is_sdedit_start_timestep(trained):
    data = images(2)
    # strength s starts at t = round(s · (T − 1)): 0.25 · 999 = 249.75 → 250.
    by_strength = trained.reconstruct(
        data, strength=0.25, sampler="ddim", steps=4, seed=1
    )
    by_t = trained.reconstruct(data, 250, sampler="ddim", steps=4, seed=1)
    np.testing.assert_array_equal(by_strength, by_t)
    full = trained.reconstruct(data, strength=1.0, sampler="ddim", steps=4, seed=1)
    np.testing.assert_array_equal(
        full, trained.reconstruct(data, 999, sampler="ddim", steps=4, seed=1)
    )
    with pytest.raises(ValueError, match=r"`strength` must lie in \(0, 1\]"):
        trained.reconstruct(data, strength=0.0)
    with pytest.raises(ValueError, match=r"`strength` must lie in \(0, 1\]"):
        trained.reconstruct(data, strength=1.5)
    with pytest.raises(ValueError, match="not both"):
        trained.reconstruct(data, 100, strength=0.5)
    with pytest.raises(ValueError, match="got neither"):
        trained.reconstruct(data)


@pytest.mark.parametrize(
    "data,message",
    [
        (np.zeros((8, 8, 8, 3), "uint8"), "got dtype uint8"),
        (
            np.zeros((8, 16, 16, 3), "float32"),
            r"Expected images of shape \(B, 8, 8, 3\)",
        ),
        (np.zeros((8, 8, 8), "float32"), "rank 4"),
    ],
)
def test_bad_training_data_is_a_clear_error(data, message):
    model = kd.DiffusionModel(minimal_unet())
    model.compile(optimizer="adam")
    before = weights_of(model.network.trainable_variables)
    with pytest.raises(ValueError, match=message):
        model.fit(data, batch_size=8, epochs=1, verbose=0)
    for x, y in zip(before, weights_of(model.network.trainable_variables)):
        np.testing.assert_array_equal(x, y)


def test_validation_uses_ema():
    # An EMA that barely moves stays the initial network, whose output is exactly 0,
    # so its ε-loss is E[ε²] ≈ 1 while the training weights have learned.
    model = kd.DiffusionModel(minimal_unet(), ema_momentum=0.999999, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = np.tile(images(8), (10, 1, 1, 1))
    history = model.fit(
        data, batch_size=8, epochs=3, verbose=0, validation_data=(data,)
    )
    assert set(history.history) == {"loss", "val_loss"}
    assert history.history["loss"][-1] < 0.7
    assert history.history["val_loss"][-1] == pytest.approx(1.0, abs=0.05)


def _pairs_dataset(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)


def _labelled_batches():
    while True:
        yield images(4), np.zeros(4, "int32")


class _LabelledBatches(keras.utils.PyDataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return images(4, seed=index), np.zeros(4, "int32")


@pytest.mark.parametrize(
    "call",
    [
        lambda model, x, y: model.fit(x, y, batch_size=4, verbose=0),
        lambda model, x, y: model.fit((x, y), batch_size=4, verbose=0),
        lambda model, x, y: model.fit(_pairs_dataset(x, y), verbose=0),
        lambda model, x, y: model.fit(
            x, batch_size=4, verbose=0, validation_data=(x, y)
        ),
        lambda model, x, y: model.fit(
            _labelled_batches(), steps_per_epoch=1, verbose=0
        ),
        lambda model, x, y: model.fit(_LabelledBatches(), verbose=0),
        lambda model, x, y: model.evaluate(x, y, batch_size=4, verbose=0),
    ],
    ids=[
        "arrays",
        "tuple",
        "tf.data",
        "validation",
        "generator",
        "pydataset",
        "evaluate",
    ],
)
def test_unconditional_model_refuses_labels(call):
    model = kd.DiffusionModel(minimal_unet(), seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = images(8), np.zeros(8, "int32")
    before = weights_of(model.network.trainable_variables)
    with pytest.raises(
        ValueError, match="This model is unconditional and takes images only"
    ):
        call(model, x, y)
    # Refused before training started: the weights are still there, unchanged.
    for a, b in zip(before, weights_of(model.network.trainable_variables)):
        np.testing.assert_array_equal(a, b)


def test_generator_batches_all_reach_training_after_the_check():
    # fit looks at a generator's first batch before training: it must not be lost.
    seen = []

    def batches():
        for index in range(3):
            seen.append(index)
            yield (images(4, seed=index),)

    model = kd.DiffusionModel(minimal_unet(), seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # With exactly as many batches as steps: a lost batch would end training
    # a step early, with Keras' "ran out of data" warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(batches(), epochs=1, steps_per_epoch=3, shuffle=False, verbose=0)
    assert seen == [0, 1, 2]
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == 3


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"prediction": "score"}, "`prediction` must be one of"),
        ({"loss": "huber"}, "`loss` must be one of"),
        ({"ema_momentum": 1.0}, r"`ema_momentum` must be a float in \[0, 1\)"),
        ({"ema_warmup": "cosine"}, "`ema_warmup` must be"),
        ({"min_snr_gamma": 0}, "`min_snr_gamma` must be"),
        ({"schedule": "quadratic"}, "Unknown schedule"),
        ({"sampler": "lms"}, "Unknown sampler"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kd.DiffusionModel(tiny_unet(), **kwargs)


def test_bad_generate_arguments(trained):
    with pytest.raises(ValueError, match=r"`steps` must lie in \[1, 1000\]"):
        trained.generate(2, steps=1001)
    with pytest.raises(ValueError, match="`steps` must be a positive int"):
        trained.generate(2, steps=0)
    with pytest.raises(ValueError, match="`num_images` must be a positive int"):
        trained.generate(0)
    with pytest.raises(ValueError, match="`eta` must be >= 0"):
        trained.generate(2, sampler={"name": "ddim", "eta": -1.0})
    with pytest.raises(ValueError, match=r"`initial_noise` must have shape"):
        trained.generate(2, initial_noise=np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="compute"):
        trained.compile(optimizer="adam", loss="mse")


def test_min_snr_and_other_losses_train():
    for kwargs in [
        {"prediction": "v", "min_snr_gamma": 5.0},
        {"prediction": "x0", "loss": "mae", "min_snr_gamma": 5.0},
    ]:
        model = kd.DiffusionModel(minimal_unet(), seed=0, **kwargs)
        model.compile(optimizer="adam")
        history = model.fit(images(8), batch_size=8, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])


def test_jit_compile_on_and_off_train_alike():
    if BACKEND == "torch":
        pytest.skip(
            "torch.compile takes minutes on 2 cores; the default (eager) is covered everywhere"
        )
    losses = []
    for jit_compile in (True, False):
        model = kd.DiffusionModel(minimal_unet(), seed=0)
        model.compile(optimizer="adam", jit_compile=jit_compile)
        assert model.jit_compile == jit_compile
        # One epoch of two steps: the second step's loss follows the first update.
        losses.append(
            model.fit(
                images(16), batch_size=8, epochs=1, shuffle=False, verbose=0
            ).history["loss"]
        )
    np.testing.assert_allclose(
        losses[0], losses[1], rtol=1e-2
    )  # fused vs op-by-op float32
