import os
import zipfile

import numpy as np

from keras_ddpm.utils import atomic_path


def check_features(features, num_features=None, what="features"):
    """`features` as a finite float64 matrix `(N, d)`; one-line errors otherwise."""
    array = np.asarray(features)
    if array.ndim != 2:
        raise ValueError(
            f"Expected {what} of shape (N, num_features), got shape {array.shape}."
        )
    if not (
        np.issubdtype(array.dtype, np.floating)
        or np.issubdtype(array.dtype, np.integer)
    ):
        raise ValueError(f"Expected numeric {what}, got dtype {array.dtype}.")
    if num_features is not None and array.shape[1] != num_features:
        raise ValueError(
            f"Expected {what} with {num_features} columns (the feature size so far), "
            f"got shape {array.shape}."
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what.capitalize()} contain NaN or Inf values.")
    return array


class FeatureStatistics:
    """Running mean and covariance of image features, kept in float64.

    Batches are merged with the pairwise update of Chan et al. (1979), so the
    result equals the two-pass statistics of all features at once, whatever the
    batch sizes, without the cancellation of a raw sum of squares. With
    `keep_features=True` the features themselves are kept too (KID needs them).

    Statistics of a reference dataset are computed once (e.g. with
    `FeatureExtractor.statistics`), saved with `save()` as a `.npz` file and
    reused with `FeatureStatistics.load()` or the metrics' `reference=` argument.

    Args:
        keep_features: bool, also keep the features, as float32. Defaults to True.
        extractor: str, a description of the encoder that made the features
            (stored in the file, checked when the statistics are reused).
            Defaults to `""` (unknown).

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    stats = kd.metrics.FeatureStatistics()
    features = np.random.default_rng(0).normal(size=(100, 8))
    stats.update(features[:30])
    stats.update(features[30:])
    np.allclose(stats.covariance, np.cov(features, rowvar=False))  # True
    stats.save("reference.npz")
    kd.metrics.FeatureStatistics.load("reference.npz").count  # 100
    ```

    References:
        - [Chan, Golub & LeVeque, 1979. Updating formulae and a pairwise algorithm
          for computing sample variances](https://doi.org/10.1007/978-3-642-51461-6_3)
    """

    def __init__(self, keep_features=True, extractor=""):
        self.keep_features = bool(keep_features)
        self.extractor = str(extractor)
        self.reset()

    def reset(self):
        """Forget every feature seen."""
        self.count = 0
        self.mean = None
        self._m2 = None  # Σ (x − mean)(x − mean)ᵀ
        self._features = []

    @property
    def num_features(self):
        """The feature size d, or None before the first update."""
        return None if self.mean is None else self.mean.shape[0]

    def update(self, features):
        """Add a batch of features `(N, d)`.

        Args:
            features: array-like `(N, d)` of finite numbers.

        Raises:
            ValueError: for a wrong rank, a different d than before, or NaN/Inf.
        """
        batch = check_features(features, self.num_features)
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        batch_m2 = centred.T @ centred
        if self.count == 0:
            self.mean, self._m2 = batch_mean, batch_m2
        else:
            total = self.count + n
            delta = batch_mean - self.mean
            self._m2 = (
                self._m2 + batch_m2 + np.outer(delta, delta) * (self.count * n / total)
            )
            self.mean = self.mean + delta * (n / total)
        self.count += n
        if self.keep_features:
            self._features.append(batch.astype(np.float32))

    @property
    def covariance(self):
        """The unbiased sample covariance `(d, d)`, float64 (needs two features)."""
        if self.count < 2:
            raise ValueError(
                f"A covariance needs at least 2 feature vectors, got {self.count}."
            )
        return self._m2 / (self.count - 1)

    @property
    def features(self):
        """All features seen, `(N, d)` float32, or None with `keep_features=False`."""
        if not self.keep_features:
            return None
        if not self._features:
            return np.zeros((0, self.num_features or 0), np.float32)
        if len(self._features) > 1:
            self._features = [np.concatenate(self._features)]
        return self._features[0]

    @classmethod
    def from_features(cls, features, extractor=""):
        """Statistics of one feature matrix `(N, d)` (the features are kept).

        Args:
            features: array `(N, d)` of finite numbers.
            extractor: str, a description of the encoder that made them.

        Returns:
            A `FeatureStatistics`.

        Raises:
            ValueError: if `features` is not a finite 2-D numeric array.
        """
        stats = cls(keep_features=True, extractor=extractor)
        stats.update(features)
        return stats

    def save(self, path):
        """Write the statistics to a `.npz` file, atomically.

        Args:
            path: file path; `.npz` is appended by numpy if missing, so give it.

        Returns:
            The path written.

        Raises:
            ValueError: with fewer than 2 feature vectors, or a path that does
                not end in `.npz`.
        """
        if self.count < 2:
            raise ValueError(
                f"Refusing to save statistics of {self.count} feature vectors; need at least 2."
            )
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise ValueError(f"Reference statistics are saved as .npz, got {path!r}.")
        arrays = {
            "count": np.int64(self.count),
            "mean": self.mean,
            "covariance": self.covariance,
            "extractor": np.str_(self.extractor),
        }
        if self.keep_features:
            arrays["features"] = self.features
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as file:
                np.savez(file, **arrays)
        return path

    @classmethod
    def load(cls, path):
        """Read statistics written by `save()`.

        Args:
            path: a `.npz` file from `FeatureStatistics.save`.

        Returns:
            A `FeatureStatistics` (with features if they were saved).

        Raises:
            FileNotFoundError: if the file is missing.
            ValueError: if it is not a statistics file.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Reference statistics file not found: {path}")
        if not zipfile.is_zipfile(path):  # np.load would take it for a pickle
            raise ValueError(
                f"Could not read reference statistics {path}: expected a .npz "
                "file written by FeatureStatistics.save (keras-ddpm evaluate "
                "--save-reference)."
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as error:
            raise ValueError(
                f"Could not read reference statistics {path}: {error}"
            ) from None
        missing = {"count", "mean", "covariance"} - set(arrays)
        if missing:
            raise ValueError(
                f"{path} is not a keras-ddpm statistics file (missing {sorted(missing)})."
            )
        stats = cls(
            keep_features="features" in arrays,
            extractor=str(arrays.get("extractor", "")),
        )
        stats.count = int(arrays["count"])
        stats.mean = arrays["mean"].astype(np.float64)
        stats._m2 = arrays["covariance"].astype(np.float64) * (stats.count - 1)
        if "features" in arrays:
            stats._features = [arrays["features"].astype(np.float32)]
        return stats

    def __repr__(self):
        return (
            f"FeatureStatistics(count={self.count}, num_features={self.num_features}, "
            f"extractor={self.extractor!r}, features={'kept' if self.keep_features else 'not kept'})"
        )
