"""The shipped flowers encoder: loads everywhere, knows flowers, separates real from fake."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_ddpm as kd

fe = importlib.import_module("keras_ddpm.metrics.flowers")
ROOT = Path(__file__).resolve().parents[2]

# Held out: the encoder was trained on seed 1 (and checked on seed 12345).
HELD_OUT_SEED = 2024
# Summaries of the shipped encoder's outputs on synthetic_flowers(4, 32, seed=777):
# per-image feature sums, and the predicted petal counts (the true ones too).
PINNED_FEATURE_SUMS = [72.80287, 84.3156, 74.62257, 85.779015]
PINNED_PETALS = [7, 5, 6, 7]


def flowers(num_images, seed, image_size=32):
    images, attributes = kd.datasets.synthetic_flowers(
        num_images, image_size, seed=seed, return_attributes=True
    )
    return images * 2 - 1, attributes


def held_out_scores(model, images, attributes):
    targets = kd.metrics.flowers_encoder_targets(attributes)
    outputs = model.predict(images, batch_size=128, verbose=0)
    accuracy = np.mean(np.argmax(outputs["petals"], axis=1) == targets["petals"])
    truth = targets["attributes"]
    residual = ((outputs["attributes"] - truth) ** 2).sum(axis=0)
    r2 = 1 - residual / ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    return accuracy, dict(zip(fe.TARGET_NAMES, r2))


@pytest.fixture(scope="module")
def held_out():
    return flowers(400, HELD_OUT_SEED)


def test_the_weights_ship_small_and_are_package_data():
    assert os.path.getsize(fe.WEIGHTS_PATH) < 600_000
    assert '"weights/*.weights.h5"' in (ROOT / "pyproject.toml").read_text()


def test_features_are_finite_and_of_the_documented_size():
    images, _ = flowers(8, seed=3)
    encoder = kd.metrics.flowers_encoder(32)
    assert encoder.name == "flowers_encoder"
    assert encoder.output_shape == (None, fe.FEATURES)
    features = keras.ops.convert_to_numpy(encoder(images))
    assert features.shape == (8, 128) and np.all(np.isfinite(features))
    assert features.std(axis=0).max() > 0


def test_other_sizes_are_resized_to_the_trained_size():
    large, _ = flowers(4, seed=3, image_size=64)
    small = keras.ops.image.resize(large, (32, 32), antialias=True)
    encoder = kd.metrics.flowers_encoder(64)
    assert encoder.input_shape == (None, 64, 64, 3)
    assert encoder.output_shape == (None, 128)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(large)),
        keras.ops.convert_to_numpy(kd.metrics.flowers_encoder(32)(small)),
        rtol=1e-4,
        atol=1e-4,
    )


def test_it_saves_and_loads_safely(tmp_path):
    images, _ = flowers(4, seed=3, image_size=48)
    encoder = kd.metrics.flowers_encoder(48)
    encoder.save(tmp_path / "flowers_encoder.keras")
    loaded = keras.saving.load_model(tmp_path / "flowers_encoder.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(images)),
        keras.ops.convert_to_numpy(encoder(images)),
        atol=1e-5,
    )


def test_shipped_weights_give_the_pinned_outputs():
    images, _ = flowers(4, seed=777)
    model = kd.metrics.flowers_encoder(include_top=True)
    outputs = model.predict(images, verbose=0)
    assert outputs["petals"].shape == (4, 9) and outputs["attributes"].shape == (4, 26)
    assert list(np.argmax(outputs["petals"], axis=1) + 4) == PINNED_PETALS
    features = kd.metrics.flowers_encoder()(images)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(features).sum(axis=1),
        PINNED_FEATURE_SUMS,
        rtol=1e-3,
    )


def test_it_predicts_held_out_attributes(held_out):
    accuracy, r2 = held_out_scores(
        kd.metrics.flowers_encoder(include_top=True), *held_out
    )
    # Measured on 2,000 images of this seed: accuracy 0.86, mean R² 0.64.
    assert accuracy > 0.7  # chance: 1/9
    assert np.mean(list(r2.values())) > 0.5
    for name in ("size", "position_x", "petal_red", "tip_green", "top_red"):
        assert r2[name] > 0.7, (name, r2[name])


def test_an_untrained_encoder_fails_those_thresholds(held_out):
    keras.utils.set_random_seed(0)
    untrained = kd.metrics.flowers_encoder(include_top=True, weights=None)
    accuracy, r2 = held_out_scores(untrained, *held_out)
    assert accuracy < 0.3 and np.mean(list(r2.values())) < 0.1


def gaussian_fit(images, num_images, seed):
    """Samples of the full-covariance Gaussian of `images`' pixels, clipped to [-1, 1]."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    z = np.random.default_rng(seed).standard_normal((num_images, len(images)))
    samples = mean + z @ (flat - mean) / np.sqrt(len(images) - 1)
    return np.clip(samples, -1, 1).reshape((num_images,) + images.shape[1:])


def test_fid_floor_is_far_below_gaussian_fit_and_noise():
    real, _ = flowers(256, seed=10)
    other, _ = flowers(256, seed=11)
    fit, _ = flowers(512, seed=12)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype("float32")
    encoder = kd.metrics.flowers_encoder(32)
    fid = kd.metrics.FrechetInceptionDistance(feature_extractor=encoder)
    fid.update_state(real=real)
    scores = {}
    for name, generated in [
        ("floor", other),
        ("gaussian", gaussian_fit(fit, 256, seed=0)),
        ("noise", noise),
    ]:
        fid.update_state(generated=generated)
        scores[name] = float(fid.result())
        fid.reset_state()
        fid.update_state(real=real)
    assert scores["floor"] * 5 < scores["gaussian"] < scores["noise"], scores


def test_kid_and_validation_kid_accept_it():
    real, _ = flowers(64, seed=10)
    other, _ = flowers(64, seed=11)
    kid = kd.metrics.KernelInceptionDistance(
        feature_extractor=kd.metrics.flowers_encoder(32), subset_size=32
    )
    kid.update_state(real=real, generated=other)
    assert np.isfinite(float(kid.result()))
    callback = kd.callbacks.ValidationKID(real, metric=kid, num_images=64)
    assert callback.metric is kid


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        kd.metrics.flowers_encoder(4)
    with pytest.raises(ValueError, match="image_size"):
        kd.metrics.flowers_encoder(32.0)
    with pytest.raises(FileNotFoundError, match="not found"):
        kd.metrics.flowers_encoder(weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="weights"):
        kd.metrics.flowers_encoder(weights=3)
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not a weights file")
    with pytest.raises(ValueError, match="Could not load"):
        kd.metrics.flowers_encoder(weights=str(broken))
    with pytest.raises(ValueError, match="lack"):
        kd.metrics.flowers_encoder_targets({"petals": np.array([4])})


@pytest.mark.slow
def test_the_script_retrains_the_shipped_weights(tmp_path):
    """Retrain (3–5 minutes on 2 cores) and compare with the shipped weights."""
    output = tmp_path / "retrained.weights.h5"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=str(ROOT))
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_flowers_encoder.py")]
        + ["--output", str(output)],
        check=True,
        env=env,
    )
    images, attributes = flowers(400, HELD_OUT_SEED)
    shipped = kd.metrics.flowers_encoder(include_top=True)
    retrained = kd.metrics.flowers_encoder(include_top=True, weights=str(output))
    a, b = (m.predict(images, verbose=0) for m in (shipped, retrained))
    agree = np.mean(np.argmax(a["petals"], 1) == np.argmax(b["petals"], 1))
    assert agree > 0.9
    assert np.abs(a["attributes"] - b["attributes"]).mean() < 0.05
    accuracy_a, r2_a = held_out_scores(shipped, images, attributes)
    accuracy_b, r2_b = held_out_scores(retrained, images, attributes)
    assert abs(accuracy_a - accuracy_b) < 0.05
    assert abs(np.mean(list(r2_a.values())) - np.mean(list(r2_b.values()))) < 0.05
