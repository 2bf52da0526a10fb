"""Sample quality: KID and FID over a pluggable image encoder (InceptionV3 by default)."""

from keras_ddpm.metrics.feature_extractor import FeatureExtractor, build_inception
from keras_ddpm.metrics.feature_statistics import FeatureStatistics
from keras_ddpm.metrics.frechet_inception_distance import (
    FrechetInceptionDistance,
    frechet_distance,
)
from keras_ddpm.metrics.kernel_inception_distance import (
    KernelInceptionDistance,
    kernel_distance,
    polynomial_mmd2,
)

__all__ = [
    "KernelInceptionDistance",
    "FrechetInceptionDistance",
    "FeatureExtractor",
    "FeatureStatistics",
    "build_inception",
    "frechet_distance",
    "kernel_distance",
    "polynomial_mmd2",
]
