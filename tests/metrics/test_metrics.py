"""KID and FID as Keras metrics, with a tiny encoder (no download), on every backend."""

import keras
import numpy as np
import pytest

import keras_ddpm as kd
from tests.metrics.encoders import smooth_images, tiny_encoder


@pytest.fixture(scope="module")
def encoder():
    return tiny_encoder()


@pytest.fixture(scope="module")
def images():
    return smooth_images(256, seed=0), smooth_images(256, seed=1)


def kid_metric(encoder, **kwargs):
    return kd.metrics.KernelInceptionDistance(
        feature_extractor=encoder, subset_size=128, num_subsets=20, **kwargs
    )


def fid_metric(encoder, **kwargs):
    return kd.metrics.FrechetInceptionDistance(feature_extractor=encoder, **kwargs)


def score(metric, real, generated):
    metric.reset_state()
    metric.update_state(real=real, generated=generated)
    return metric.result()


def test_self_is_zero_noise_is_far_and_scores_fall_as_noise_shrinks(encoder, images):
    real, other = images
    noise = np.random.default_rng(2).uniform(-1, 1, real.shape).astype("float32")
    for metric in (kid_metric(encoder), fid_metric(encoder)):
        against_noise = score(metric, real, noise)
        assert against_noise > 0
        itself = score(metric, real, real)
        if isinstance(metric, kd.metrics.FrechetInceptionDistance):
            assert itself == 0.0
        else:  # the unbiased estimator dips slightly below 0 for a set against itself
            assert abs(itself) < 0.05 * against_noise
        same_distribution = score(metric, real, other)
        assert abs(same_distribution) < 0.1 * against_noise
        # Generated images approaching the real ones: real + shrinking noise.
        levels = [1.0, 0.5, 0.25, 0.1, 0.03]
        scores = [score(metric, real, np.clip(real + s * noise, -1, 1)) for s in levels]
        assert all(a > b for a, b in zip(scores, scores[1:])), (metric.name, scores)
        assert scores[-1] > itself


def test_streaming_over_batches_equals_one_batch_and_reset_state(encoder, images):
    real, generated = images[0], np.clip(images[1] + 0.3, -1, 1)
    for make in (kid_metric, fid_metric):
        whole = make(encoder)
        whole.update_state(real=real, generated=generated)
        streamed = make(encoder, batch_size=16)
        for begin, end in ((0, 10), (10, 100), (100, 256)):
            streamed.update_state(real=real[begin:end])
            streamed.update_state(generated=generated[begin:end])
        assert streamed.result() == pytest.approx(whole.result(), rel=1e-5)
        streamed.reset_state()
        with pytest.raises(ValueError, match="at least 2 real and 2 generated"):
            streamed.result()
        streamed.update_state(real, generated)
        assert streamed.result() == pytest.approx(whole.result(), rel=1e-5)
    whole_kid = kid_metric(encoder)
    whole_kid.update_state(real=real, generated=generated)
    mean, std = whole_kid.result_and_std()
    assert mean == whole_kid.result() and std > 0


def test_reference_statistics_replace_the_real_images(encoder, images, tmp_path):
    real, other = images
    generated = np.clip(other + 0.2, -1, 1)
    extractor = kd.metrics.FeatureExtractor(encoder, batch_size=32)
    stats = extractor.statistics(list(real.reshape(16, 16, 16, 16, 3)), max_images=200)
    assert stats.count == 200
    path = stats.save(tmp_path / "reference.npz")
    for make in (kid_metric, fid_metric):
        direct = make(encoder)
        direct.update_state(real=real[:200], generated=generated)
        reused = make(encoder, reference=str(path))
        reused.update_state(generated=generated)
        assert reused.result() == pytest.approx(direct.result(), rel=1e-5)
        reused.reset_state()  # keeps the reference
        reused.update_state(generated=generated)
        assert reused.result() == pytest.approx(direct.result(), rel=1e-5)
        with pytest.raises(ValueError, match="reference statistics"):
            reused.update_state(real=real)
    other_encoder = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D()], name="pool"
    )
    with pytest.raises(ValueError, match="come from extractor"):
        fid_metric(other_encoder, reference=path)


def test_images_are_resized_and_grey_images_repeated(encoder):
    extractor = kd.metrics.FeatureExtractor(encoder)
    grey = smooth_images(5, size=40, channels=1)
    features = extractor(grey)
    assert features.shape == (5, 32) and features.dtype == np.float64
    direct = keras.ops.convert_to_numpy(
        encoder(
            keras.ops.image.resize(
                np.repeat(grey, 3, axis=-1), (16, 16), antialias=True
            )
        )
    )
    np.testing.assert_allclose(features, direct, atol=1e-5)


@pytest.mark.parametrize(
    "images,message",
    [
        (np.zeros((4, 16, 16)), "shape (B, H, W, C)"),
        (np.zeros((4, 16, 16, 3), np.uint8), "x / 127.5 - 1"),
        (np.full((4, 16, 16, 3), 255.0, np.float32), "in [-1, 1]"),
        (np.full((4, 16, 16, 3), np.nan, np.float32), "NaN or Inf"),
        (np.zeros((4, 16, 16, 2), np.float32), "3-channel images"),
    ],
)
def test_bad_images_raise_one_line_errors(encoder, images, message):
    metric = fid_metric(encoder)
    with pytest.raises(ValueError) as info:
        metric.update_state(real=images)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_arguments(encoder):
    with pytest.raises(ValueError, match="keras.Model"):
        kd.metrics.FrechetInceptionDistance(feature_extractor="inception")
    with pytest.raises(ValueError, match="`subset_size` must be a positive int"):
        kid_metric(
            encoder, subset_size=0
        ) if False else kd.metrics.KernelInceptionDistance(
            feature_extractor=encoder, subset_size=0
        )
    with pytest.raises(ValueError, match="features of shape \\(B, d\\)"):
        unpooled = keras.Sequential(
            [keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3)]
        )
        kd.metrics.FeatureExtractor(unpooled)(np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        kd.metrics.KernelInceptionDistance(weights="missing_inception.h5")
    with pytest.raises(ValueError, match="`weights` must be"):
        kd.metrics.KernelInceptionDistance(weights=3)
    with pytest.raises(ValueError, match="`image_size` must be an int >= 75, got 32"):
        kd.metrics.build_inception(image_size=32, weights=None)
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        kd.metrics.FeatureExtractor(encoder, batch_size=True)
    with pytest.raises(ValueError, match="`num_subsets` must be a positive int"):
        kd.metrics.KernelInceptionDistance(feature_extractor=encoder, num_subsets=0)


def test_an_extractor_takes_images_alone():
    net = kd.models.build_unet(8, widths=(8,), block_depth=1, groups=4)
    with pytest.raises(ValueError, match="got a model of 2 inputs"):
        kd.metrics.FeatureExtractor(net)
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    with pytest.raises(ValueError, match="got a DiffusionModel"):
        kd.metrics.KernelInceptionDistance(feature_extractor=model)


def test_failed_download_says_how_to_pass_a_local_file(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(OSError) as info:
        kd.metrics.FrechetInceptionDistance()
    message = str(info.value)
    assert "Could not download the InceptionV3 ImageNet weights" in message
    assert (
        "weights='/path/to/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5'"
        in message
    )
    assert "feature_extractor=" in message and "\n" not in message


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the weights file path is backend-independent: checked once, under PyTorch",
)
def test_inception_from_a_local_weights_file(tmp_path):
    saved = kd.metrics.build_inception(image_size=75, weights=None)
    path = str(tmp_path / "inception.weights.h5")
    saved.save_weights(path)
    kid = kd.metrics.KernelInceptionDistance(weights=path, subset_size=4, batch_size=4)
    assert kid.extractor.description == "inception_v3:file:75"
    images = smooth_images(6, size=32)
    features = kid.extractor(images)
    x = keras.ops.image.resize(images, (75, 75), antialias=True)
    expected = keras.ops.convert_to_numpy(
        saved(keras.applications.inception_v3.preprocess_input((x + 1.0) * 127.5))
    )
    assert features.shape == (6, 2048)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    kid.update_state(real=images[:3], generated=images[3:])
    assert np.isfinite(kid.result())


@pytest.mark.slow
def test_an_unreadable_weights_file_is_refused(tmp_path):
    (tmp_path / "broken.h5").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="Could not load InceptionV3 weights"):
        kd.metrics.build_inception(image_size=75, weights=str(tmp_path / "broken.h5"))
