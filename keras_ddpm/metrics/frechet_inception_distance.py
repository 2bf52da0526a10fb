import keras
import numpy as np

from keras_ddpm.metrics.feature_distance import FeatureDistance
from keras_ddpm.metrics.feature_statistics import FeatureStatistics


def _symmetric_sqrt(matrix):
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mean1, covariance1, mean2, covariance2):
    """The Fréchet distance between N(mean1, covariance1) and N(mean2, covariance2).

    d² = |μ1 − μ2|² + tr(Σ1) + tr(Σ2) − 2·tr((Σ1 Σ2)^½), in float64. The trace
    of the square root is taken as Σ sqrt(λ_i) over the eigenvalues of the
    symmetric positive semi-definite Σ1^½ Σ2 Σ1^½ (similar to Σ1 Σ2), so it
    needs only symmetric eigen-decompositions: no complex round-off, no failure
    on singular covariances (fewer samples than features). Identical
    statistics give exactly 0.

    Args:
        mean1: array `(d,)`.
        covariance1: symmetric positive semi-definite array `(d, d)`.
        mean2: array `(d,)`.
        covariance2: symmetric positive semi-definite array `(d, d)`.

    Returns:
        A float ≥ 0.

    Raises:
        ValueError: for mismatched shapes or non-finite values.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    kd.metrics.frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))  # 2 + 2·(2−1)² = 4.0
    ```

    References:
        - [Heusel et al., 2017. GANs Trained by a Two Time-Scale Update Rule
          Converge to a Local Nash Equilibrium](https://arxiv.org/abs/1706.08500)
        - [Dowson & Landau, 1982. The Fréchet distance between multivariate
          normal distributions](https://doi.org/10.1016/0047-259X(82)90077-X)
    """
    mean1, mean2 = (np.asarray(m, np.float64) for m in (mean1, mean2))
    covariance1, covariance2 = (
        np.asarray(c, np.float64) for c in (covariance1, covariance2)
    )
    d = mean1.shape[0] if mean1.ndim == 1 else None
    if (
        d is None
        or mean2.shape != (d,)
        or covariance1.shape != (d, d)
        or covariance2.shape != (d, d)
    ):
        raise ValueError(
            "Expected means (d,) and covariances (d, d) of one size d, got shapes "
            f"{mean1.shape}, {covariance1.shape}, {mean2.shape}, {covariance2.shape}."
        )
    if not all(
        np.all(np.isfinite(a)) for a in (mean1, mean2, covariance1, covariance2)
    ):
        raise ValueError("Means and covariances must be finite.")
    if np.array_equal(mean1, mean2) and np.array_equal(covariance1, covariance2):
        return 0.0
    root1 = _symmetric_sqrt((covariance1 + covariance1.T) / 2)
    product = root1 @ covariance2 @ root1
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mean1 - mean2
    distance = (
        diff @ diff + np.trace(covariance1) + np.trace(covariance2) - 2 * trace_sqrt
    )
    return float(max(distance, 0.0))


@keras.saving.register_keras_serializable(package="keras_ddpm")
class FrechetInceptionDistance(FeatureDistance):
    """Fréchet Inception Distance (FID) between real and generated images.

    Fits a Gaussian to the features of each set and returns the Fréchet
    distance between the two (`frechet_distance`). Streaming: call
    `update_state(real=..., generated=...)` on as many batches as you like;
    running means and covariances are merged exactly in float64, so the result
    does not depend on how the images were batched. Lower is better; identical
    sets score exactly 0. FID is biased upwards at small sample sizes: compare
    scores computed on the same number of images (50,000 is the usual count).

    `result_and_std()` also gives a bootstrap standard deviation over the
    generated images; it needs their features, kept (float32, on the host: 8 KB
    per image with InceptionV3) when `keep_generated_features=True`.

    Scores are comparable across runs of this library with the same extractor
    and image size. Published FIDs use the 2015 TensorFlow Inception graph and
    their own resizing, so scores from Keras' InceptionV3 are close to them but
    not identical.

    Args:
        image_size: int, the InceptionV3 input size. Defaults to 299.
        feature_extractor: a `keras.Model` mapping images to `(B, d)` to use
            instead of InceptionV3 (see `FeatureExtractor`). Defaults to None.
        weights: InceptionV3 weights: `"imagenet"`, a local file path or None.
            Defaults to `"imagenet"`.
        reference: `FeatureStatistics` or `.npz` path of the real images,
            computed once and reused. Defaults to None.
        batch_size: int, images per encoder call. Defaults to 64.
        keep_generated_features: bool, keep the features of the generated
            images, for `result_and_std()`. Defaults to False.
        name: str. Defaults to `"fid"`.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    encoder = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3), keras.layers.GlobalAveragePooling2D()]
    )
    fid = kd.metrics.FrechetInceptionDistance(feature_extractor=encoder)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (64, 16, 16, 3)).astype("float32")
    fid.update_state(real=real, generated=real)
    fid.result()  # 0.0

    fid = kd.metrics.FrechetInceptionDistance(feature_extractor=encoder, keep_generated_features=True)
    fid.update_state(real=real, generated=np.clip(real + 0.5, -1, 1))
    value, std = fid.result_and_std(num_bootstrap=10, seed=0)
    ```

    References:
        - [Heusel et al., 2017. GANs Trained by a Two Time-Scale Update Rule
          Converge to a Local Nash Equilibrium](https://arxiv.org/abs/1706.08500)
    """

    keep_features = False

    def __init__(
        self,
        image_size=299,
        feature_extractor=None,
        weights="imagenet",
        reference=None,
        batch_size=64,
        keep_generated_features=False,
        name="fid",
        **kwargs,
    ):
        super().__init__(
            image_size,
            feature_extractor=feature_extractor,
            weights=weights,
            reference=reference,
            batch_size=batch_size,
            name=name,
            **kwargs,
        )
        self.keep_generated_features = bool(keep_generated_features)
        if self.keep_generated_features:
            # Only this side: the real one is usually a reference without features.
            self._generated = FeatureStatistics(
                keep_features=True, extractor=self.extractor.description
            )

    def result(self):
        """The FID of the images seen so far.

        Returns:
            A float, the Fréchet distance of the two feature Gaussians.

        Raises:
            ValueError: with fewer than 2 real or 2 generated images.
        """
        real, generated = self._check_counts()
        return frechet_distance(
            real.mean, real.covariance, generated.mean, generated.covariance
        )

    def result_and_std(self, num_bootstrap=10, seed=0):
        """The FID and its bootstrap standard deviation over the generated images.

        Each of `num_bootstrap` rounds draws as many generated features as were
        seen, with replacement, and scores their Gaussian against the real
        statistics, which stay fixed (they are usually a saved reference). The
        spread says how much the score moves with another draw of as many
        generated images; it does not include FID's bias at small sample sizes.

        Args:
            num_bootstrap: int >= 2, the number of resamples. Defaults to 10.
            seed: int, seed of the resampling. Defaults to 0.

        Returns:
            `(fid, std)`: floats, `result()` and the standard deviation of the
            resampled FIDs.

        Raises:
            ValueError: with fewer than 2 real or 2 generated images, a
                `num_bootstrap` below 2, or when the metric was built without
                `keep_generated_features=True`.
        """
        if (
            isinstance(num_bootstrap, bool)
            or not isinstance(num_bootstrap, (int, np.integer))
            or num_bootstrap < 2
        ):
            raise ValueError(
                f"`num_bootstrap` must be an int >= 2, got {num_bootstrap!r}."
            )
        if not self.keep_generated_features:
            raise ValueError(
                "The bootstrap resamples the generated features: build the metric "
                "with keep_generated_features=True."
            )
        real, generated = self._check_counts()
        features = generated.features
        rng = np.random.default_rng(seed)
        resampled = []
        for _ in range(num_bootstrap):
            sample = FeatureStatistics(keep_features=False)
            sample.update(features[rng.integers(0, len(features), len(features))])
            resampled.append(
                frechet_distance(
                    real.mean, real.covariance, sample.mean, sample.covariance
                )
            )
        return self.result(), float(np.std(resampled))

    def get_config(self):
        return {
            **super().get_config(),
            "keep_generated_features": self.keep_generated_features,
        }
