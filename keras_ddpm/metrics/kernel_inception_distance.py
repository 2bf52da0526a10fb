import keras
import numpy as np

from keras_ddpm.metrics.feature_distance import FeatureDistance
from keras_ddpm.metrics.feature_statistics import check_features
from keras_ddpm.utils import check_int


def polynomial_mmd2(x, y):
    """Unbiased MMD² of two feature samples with the kernel k(a, b) = (a·b/d + 1)³.

    Args:
        x: array `(m, d)`, m ≥ 2.
        y: array `(n, d)`, n ≥ 2.

    Returns:
        A float (it can be slightly negative: the estimator is unbiased).

    Raises:
        ValueError: if either side has fewer than 2 rows, the feature
            dimensions differ, or a feature is not finite.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    x = np.random.default_rng(0).normal(size=(50, 4))
    kd.metrics.polynomial_mmd2(x, x + 3.0) > 0  # True
    ```

    References:
        - [Bińkowski et al., 2018. Demystifying MMD GANs](https://arxiv.org/abs/1801.01401)
    """
    x, y = check_features(x), check_features(y, x.shape[1])
    m, n, d = x.shape[0], y.shape[0], x.shape[1]
    if m < 2 or n < 2:
        raise ValueError(
            f"MMD² needs at least 2 samples on each side, got {m} and {n}."
        )
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    # U-statistics: the diagonal k(x_i, x_i) is left out of the within-set means.
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_distance(real, generated, subset_size=1000, num_subsets=100, seed=0):
    """KID: the polynomial-kernel MMD² averaged over random subsets, with its spread.

    Each of `num_subsets` rounds draws `min(subset_size, N_real, N_generated)`
    features from each side without replacement and computes `polynomial_mmd2`.

    Args:
        real: array `(N_real, d)`.
        generated: array `(N_generated, d)`.
        subset_size: int, features per subset. Defaults to 1000.
        num_subsets: int, number of subsets. Defaults to 100.
        seed: int, seed of the subset draws. Defaults to 0.

    Returns:
        `(mean, std)`: floats, the mean and standard deviation over subsets.

    Raises:
        ValueError: for a non-positive `subset_size` or `num_subsets`, fewer
            than 2 features on a side, or features that are not finite.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    rng = np.random.default_rng(0)
    kid, spread = kd.metrics.kernel_distance(rng.normal(size=(40, 4)), rng.normal(size=(40, 4)) + 1, subset_size=20, num_subsets=10)
    ```

    References:
        - [Bińkowski et al., 2018. Demystifying MMD GANs](https://arxiv.org/abs/1801.01401)
    """
    real = check_features(real, what="real features")
    generated = check_features(generated, real.shape[1], what="generated features")
    subset_size = check_int("subset_size", subset_size, low=1)
    num_subsets = check_int("num_subsets", num_subsets, low=1)
    size = min(subset_size, len(real), len(generated))
    if size < 2:
        raise ValueError(
            f"KID needs at least 2 real and 2 generated images, got {len(real)} and {len(generated)}."
        )
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            polynomial_mmd2(
                real[rng.choice(len(real), size, replace=False)],
                generated[rng.choice(len(generated), size, replace=False)],
            )
            for _ in range(num_subsets)
        ]
    )
    return float(values.mean()), float(values.std())


@keras.saving.register_keras_serializable(package="keras_ddpm")
class KernelInceptionDistance(FeatureDistance):
    """Kernel Inception Distance (KID) between real and generated images.

    The unbiased estimator of the squared maximum mean discrepancy between the
    two feature distributions, with the cubic polynomial kernel
    k(a, b) = (a·b/d + 1)³, averaged over random subsets (`kernel_distance`).
    Unlike FID it is unbiased at any sample size, so it suits the few hundred
    images a validation pass can afford. Lower is better; a set against itself
    scores ≈ 0 (the estimator can dip slightly below 0).

    Streaming: `update_state(real=..., generated=...)` over many batches keeps
    the features (float32, on the host); `result()` returns the mean over
    subsets and `result_and_std()` also its standard deviation.

    Args:
        image_size: int, the InceptionV3 input size. Defaults to 75 (the
            smallest InceptionV3 accepts; cheap enough for validation).
        feature_extractor: a `keras.Model` mapping images to `(B, d)` to use
            instead of InceptionV3 (see `FeatureExtractor`). Defaults to None.
        weights: InceptionV3 weights: `"imagenet"`, a local file path or None.
            Defaults to `"imagenet"`.
        subset_size: int, features per subset. Defaults to 1000.
        num_subsets: int, number of subsets. Defaults to 100.
        seed: int, seed of the subset draws. Defaults to 0.
        reference: `FeatureStatistics` (with features) or `.npz` path of the
            real images, computed once and reused. Defaults to None.
        batch_size: int, images per encoder call. Defaults to 64.
        name: str. Defaults to `"kid"`.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    encoder = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3), keras.layers.GlobalAveragePooling2D()]
    )
    kid = kd.metrics.KernelInceptionDistance(feature_extractor=encoder, subset_size=32)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (64, 16, 16, 3)).astype("float32")
    kid.update_state(real=real, generated=np.clip(real + 0.5, -1, 1))
    mean, std = kid.result_and_std()
    ```

    References:
        - [Bińkowski et al., 2018. Demystifying MMD GANs](https://arxiv.org/abs/1801.01401)
    """

    keep_features = True

    def __init__(
        self,
        image_size=75,
        feature_extractor=None,
        weights="imagenet",
        subset_size=1000,
        num_subsets=100,
        seed=0,
        reference=None,
        batch_size=64,
        name="kid",
        **kwargs,
    ):
        self.subset_size = check_int("subset_size", subset_size, low=1)
        self.num_subsets = check_int("num_subsets", num_subsets, low=1)
        self.seed = seed
        super().__init__(
            image_size,
            feature_extractor=feature_extractor,
            weights=weights,
            reference=reference,
            batch_size=batch_size,
            name=name,
            **kwargs,
        )

    def result_and_std(self):
        """`(mean, std)` of the MMD² over subsets, as floats.

        Returns:
            `(mean, std)`: the KID and its standard deviation over subsets.

        Raises:
            ValueError: with fewer than 2 real or 2 generated images.
        """
        real, generated = self._check_counts()
        return kernel_distance(
            real.features,
            generated.features,
            subset_size=self.subset_size,
            num_subsets=self.num_subsets,
            seed=self.seed,
        )

    def result(self):
        """The KID (mean over subsets) of the images seen so far.

        Returns:
            A float, the mean MMD² over subsets.

        Raises:
            ValueError: with fewer than 2 real or 2 generated images.
        """
        return self.result_and_std()[0]

    def get_config(self):
        return {
            **super().get_config(),
            "subset_size": self.subset_size,
            "num_subsets": self.num_subsets,
            "seed": self.seed,
        }
