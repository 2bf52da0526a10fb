import os

import keras

from keras_ddpm.metrics.feature_extractor import FeatureExtractor
from keras_ddpm.metrics.feature_statistics import FeatureStatistics


class FeatureDistance(keras.metrics.Metric):
    """Base of metrics that compare real and generated images in a feature space.

    Features are accumulated on the host in float64 numpy, not in Keras
    variables: JAX keeps float64 variables only with `jax_enable_x64`, and
    FID's covariance needs float64 to be exact. So these metrics are updated
    eagerly (`update_state` between `fit` epochs, in a callback or a script),
    not inside a compiled train step.
    """

    keep_features = False

    def __init__(
        self,
        image_size,
        feature_extractor=None,
        weights="imagenet",
        reference=None,
        batch_size=64,
        name=None,
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.image_size = image_size
        self.weights = (
            os.fspath(weights) if isinstance(weights, os.PathLike) else weights
        )
        self.batch_size = batch_size
        self.extractor = FeatureExtractor(
            feature_extractor,
            image_size=image_size,
            weights=weights,
            batch_size=batch_size,
        )
        self.reference = None
        self._real = self._new_statistics()
        self._generated = self._new_statistics()
        if reference is not None:
            self.set_reference(reference)

    def _new_statistics(self):
        return FeatureStatistics(
            keep_features=self.keep_features, extractor=self.extractor.description
        )

    def set_reference(self, reference):
        """Use fixed statistics of the real images (a `FeatureStatistics` or a `.npz` path).

        `reset_state()` keeps them; `update_state(real=...)` is then refused.
        None removes them.
        """
        if reference is None:
            self.reference = None
            return
        if isinstance(reference, (str, os.PathLike)):
            reference = FeatureStatistics.load(reference)
        if not isinstance(reference, FeatureStatistics):
            raise ValueError(
                "`reference` must be a FeatureStatistics or the path of a saved .npz, "
                f"got {type(reference).__name__}."
            )
        if self.keep_features and reference.features is None:
            raise ValueError(
                f"{type(self).__name__} needs reference statistics saved with their "
                "features (keep_features=True)."
            )
        if reference.extractor and reference.extractor != self.extractor.description:
            raise ValueError(
                f"The reference statistics come from extractor {reference.extractor!r}, "
                f"but this metric uses {self.extractor.description!r}."
            )
        if reference.count < 2:
            raise ValueError(
                f"Reference statistics need at least 2 images, got {reference.count}."
            )
        self.reference = reference

    def update_state(self, real=None, generated=None):
        """Add a batch of real and/or generated images `(B, H, W, C)` in [-1, 1].

        Args:
            real: images of the data, or None.
            generated: images of the model, or None.
        """
        if real is not None:
            if self.reference is not None:
                raise ValueError(
                    "This metric has reference statistics for the real images; pass only "
                    "`generated=` images, or reset it with set_reference(None)."
                )
            self._real.update(self.extractor(real))
        if generated is not None:
            self._generated.update(self.extractor(generated))

    def update_features(self, real=None, generated=None):
        """Like `update_state`, with features `(B, d)` already extracted."""
        if real is not None:
            self._real.update(real)
        if generated is not None:
            self._generated.update(generated)

    def reset_state(self):
        """Forget all images seen (reference statistics are kept)."""
        self._real.reset()
        self._generated.reset()

    @property
    def real_statistics(self):
        """Statistics of the real side: the reference, or the real images seen."""
        return self.reference if self.reference is not None else self._real

    @property
    def generated_statistics(self):
        """Statistics of the generated images seen."""
        return self._generated

    def _check_counts(self, minimum=2):
        real, generated = self.real_statistics, self.generated_statistics
        if real.count < minimum or generated.count < minimum:
            raise ValueError(
                f"{type(self).__name__} needs at least {minimum} real and {minimum} "
                f"generated images, got {real.count} and {generated.count}."
            )
        if real.num_features != generated.num_features:
            raise ValueError(
                f"Real and generated features differ in size: {real.num_features} vs "
                f"{generated.num_features}."
            )
        return real, generated

    def get_config(self):
        return {
            "name": self.name,
            "image_size": self.image_size,
            "weights": self.weights,
            "batch_size": self.batch_size,
        }
