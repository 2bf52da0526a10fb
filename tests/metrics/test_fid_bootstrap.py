"""FID's bootstrap standard deviation over the generated images."""

import numpy as np
import pytest

import keras_ddpm as kd
from tests.metrics.encoders import smooth_images, tiny_encoder


@pytest.fixture(scope="module")
def encoder():
    return tiny_encoder()


def fid(encoder, **kwargs):
    return kd.metrics.FrechetInceptionDistance(
        feature_extractor=encoder, keep_generated_features=True, **kwargs
    )


def test_std_is_the_spread_of_fids_of_resampled_generated_features(encoder):
    real, generated = smooth_images(48, seed=1), smooth_images(40, seed=2)
    metric = fid(encoder)
    metric.update_state(real=real, generated=generated)
    value, std = metric.result_and_std(num_bootstrap=7, seed=3)
    assert value == metric.result() and std > 0

    # The same resampling, written out.
    features = metric.extractor(generated).astype(np.float32)
    reference = metric.real_statistics
    rng = np.random.default_rng(3)
    fids = []
    for _ in range(7):
        sample = features[rng.integers(0, len(features), len(features))]
        fids.append(
            kd.metrics.frechet_distance(
                reference.mean,
                reference.covariance,
                sample.mean(axis=0),
                np.cov(sample, rowvar=False),
            )
        )
    np.testing.assert_allclose(std, np.std(fids), rtol=1e-4)

    assert metric.result_and_std(num_bootstrap=7, seed=3) == (value, std)
    assert metric.result_and_std(num_bootstrap=7, seed=4)[1] != std


def test_features_are_kept_only_when_asked_and_survive_the_config(encoder):
    metric = fid(encoder)
    assert metric.get_config()["keep_generated_features"] is True
    assert metric.generated_statistics.keep_features
    assert not metric.real_statistics.keep_features
    metric.update_state(generated=smooth_images(4))
    metric.reset_state()
    assert metric.generated_statistics.features.shape[0] == 0

    plain = kd.metrics.FrechetInceptionDistance(feature_extractor=encoder)
    plain.update_state(real=smooth_images(8, seed=1), generated=smooth_images(8))
    with pytest.raises(ValueError, match="keep_generated_features=True"):
        plain.result_and_std()


@pytest.mark.parametrize("num_bootstrap", [1, 0, 2.5, True, "10"])
def test_bad_num_bootstrap(encoder, num_bootstrap):
    metric = fid(encoder)
    metric.update_state(real=smooth_images(8, seed=1), generated=smooth_images(8))
    with pytest.raises(ValueError, match="`num_bootstrap` must be an int >= 2"):
        metric.result_and_std(num_bootstrap=num_bootstrap)


def test_too_few_images(encoder):
    metric = fid(encoder)
    metric.update_state(real=smooth_images(8, seed=1), generated=smooth_images(1))
    with pytest.raises(ValueError, match="at least 2"):
        metric.result_and_std()
