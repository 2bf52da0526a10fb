"""FID and KID maths against float64 numpy/scipy references and closed forms.

Pure numpy: these checks do not depend on the Keras backend, so they run once.
"""

import keras
import numpy as np
import pytest
import scipy.linalg

import keras_ddpm as kd

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="pure numpy maths: runs once, under the TensorFlow backend",
)


def random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def scipy_fid(x, y):
    """The classic computation (Heusel et al.'s reference code): sqrtm of Σ1Σ2."""
    m1, m2 = x.mean(0), y.mean(0)
    c1, c2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(c1 @ c2)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * np.real(root)))


def direct_mmd2(x, y):
    """Unbiased MMD² written pair by pair from Bińkowski et al. (2018), eq. 2."""
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def test_fid_matches_scipy_reference_on_random_features():
    rng = np.random.default_rng(0)
    d = 32
    x = rng.multivariate_normal(rng.normal(size=d), random_covariance(rng, d), 400)
    y = rng.multivariate_normal(rng.normal(size=d), random_covariance(rng, d), 300)
    ours = kd.metrics.frechet_distance(
        x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    )
    assert ours == pytest.approx(scipy_fid(x, y), rel=1e-6)

    stats_x, stats_y = kd.metrics.FeatureStatistics(), kd.metrics.FeatureStatistics()
    for part in np.array_split(x, 7):  # streaming, uneven batches
        stats_x.update(part)
    stats_y.update(y)
    np.testing.assert_allclose(stats_x.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats_x.covariance, np.cov(x, rowvar=False), atol=1e-12)
    streamed = kd.metrics.frechet_distance(
        stats_x.mean, stats_x.covariance, stats_y.mean, stats_y.covariance
    )
    assert streamed == pytest.approx(scipy_fid(x, y), rel=1e-6)


def test_fid_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(1)
    # Commuting (diagonal) covariances: |Δμ|² + Σ (√a − √b)².
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.5, 3, 5), rng.uniform(0.5, 3, 5)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = kd.metrics.frechet_distance(m1, np.diag(a), m2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12)
    # Non-commuting 2×2: tr √(Σ1Σ2) = sqrt(tr(Σ1Σ2) + 2·sqrt(det(Σ1Σ2))).
    c1, c2 = random_covariance(rng, 2), random_covariance(rng, 2)
    m1, m2 = rng.normal(size=2), rng.normal(size=2)
    p = c1 @ c2
    trace_root = np.sqrt(np.trace(p) + 2 * np.sqrt(np.linalg.det(p)))
    expected = ((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * trace_root
    assert kd.metrics.frechet_distance(m1, c1, m2, c2) == pytest.approx(
        expected, rel=1e-10
    )
    # Estimated from samples, it converges to the closed form.
    x = rng.multivariate_normal(m1, c1, 200_000)
    y = rng.multivariate_normal(m2, c2, 200_000)
    sampled = kd.metrics.frechet_distance(
        x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    )
    assert sampled == pytest.approx(expected, rel=0.02)


def test_fid_is_exactly_zero_for_identical_sets_and_handles_singular_covariances():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 40))  # fewer samples than features: rank-deficient
    c = np.cov(x, rowvar=False)
    assert kd.metrics.frechet_distance(x.mean(0), c, x.mean(0), c) == 0.0
    y = rng.normal(size=(10, 40)) + 1
    value = kd.metrics.frechet_distance(
        x.mean(0), c, y.mean(0), np.cov(y, rowvar=False)
    )
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(scipy_fid(x, y), rel=1e-6)


def test_kid_matches_a_direct_unbiased_estimator():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 6)).astype(np.float32)
    y = (rng.normal(size=(25, 6)) * 1.3 + 0.4).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    assert kd.metrics.polynomial_mmd2(x, y) == pytest.approx(
        direct_mmd2(x64, y64), rel=1e-6
    )
    # Subsets as large as the sets: each is a permutation, so no spread.
    mean, std = kd.metrics.kernel_distance(x, x[::-1].copy(), subset_size=30)
    assert mean == pytest.approx(direct_mmd2(x64, x64[::-1]), rel=1e-6, abs=1e-12)
    assert std < 1e-9
    # Subsets: the mean and spread of the direct estimator over the same draws.
    mean, std = kd.metrics.kernel_distance(x, y, subset_size=12, num_subsets=5, seed=7)
    draws = np.random.default_rng(7)
    values = []
    for _ in range(5):
        i = draws.choice(30, 12, replace=False)
        j = draws.choice(25, 12, replace=False)
        values.append(direct_mmd2(x64[i], y64[j]))
    assert mean == pytest.approx(np.mean(values), rel=1e-6)
    assert std == pytest.approx(np.std(values), rel=1e-6)


def test_statistics_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    features = rng.normal(size=(50, 8)).astype(np.float32)
    stats = kd.metrics.FeatureStatistics.from_features(features, extractor="enc:16")
    path = stats.save(tmp_path / "ref.npz")
    loaded = kd.metrics.FeatureStatistics.load(path)
    assert loaded.count == 50 and loaded.extractor == "enc:16"
    np.testing.assert_array_equal(loaded.features, features)
    np.testing.assert_allclose(loaded.covariance, stats.covariance, rtol=1e-15)
    assert [p.name for p in tmp_path.iterdir()] == ["ref.npz"]  # no temporary left
    lean = kd.metrics.FeatureStatistics(keep_features=False)
    lean.update(features)
    assert (
        kd.metrics.FeatureStatistics.load(lean.save(tmp_path / "lean.npz")).features
        is None
    )
    # Text is not taken for a pickle (which np.load would ask to allow).
    (tmp_path / "notes.txt").write_text("some notes")
    with pytest.raises(ValueError, match=r"notes.txt: expected a .npz file written"):
        kd.metrics.FeatureStatistics.load(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda: kd.metrics.frechet_distance(
                np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)
            ),
            ValueError,
            "one size d",
        ),
        (
            lambda: kd.metrics.frechet_distance(
                np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2)
            ),
            ValueError,
            "finite",
        ),
        (
            lambda: kd.metrics.polynomial_mmd2(np.zeros((1, 3)), np.zeros((5, 3))),
            ValueError,
            "at least 2",
        ),
        (
            lambda: kd.metrics.polynomial_mmd2(np.zeros((4, 3)), np.zeros((5, 2))),
            ValueError,
            "3 columns",
        ),
        (
            lambda: kd.metrics.kernel_distance(
                np.zeros((4, 3)), np.zeros((5, 3)), subset_size=0
            ),
            ValueError,
            "subset_size",
        ),
        (
            lambda: kd.metrics.kernel_distance(np.zeros(4), np.zeros((5, 3))),
            ValueError,
            "shape (N, num_features)",
        ),
        (
            lambda: kd.metrics.FeatureStatistics().update(np.array([[np.inf, 1.0]])),
            ValueError,
            "NaN or Inf",
        ),
        (lambda: kd.metrics.FeatureStatistics().covariance, ValueError, "at least 2"),
        (
            lambda: kd.metrics.FeatureStatistics.load("missing.npz"),
            FileNotFoundError,
            "not found",
        ),
        (
            lambda: kd.metrics.FeatureStatistics.from_features(np.ones((3, 2))).save(
                "stats.txt"
            ),
            ValueError,
            ".npz",
        ),
    ],
)
def test_bad_inputs_raise_one_line_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_file_that_is_not_statistics_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a keras-ddpm statistics file"):
        kd.metrics.FeatureStatistics.load(path)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="Could not read"):
        kd.metrics.FeatureStatistics.load(tmp_path / "junk.npz")
