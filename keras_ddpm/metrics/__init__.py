"""Sample quality: KID and FID over a pluggable image encoder (InceptionV3 by default).

`flowers_encoder` is a small encoder trained on `synthetic_flowers`, shipped
with its weights: an offline feature space for those images.
"""

from keras_ddpm.metrics.classes import class_accuracy, flower_colours
from keras_ddpm.metrics.feature_extractor import FeatureExtractor, build_inception
from keras_ddpm.metrics.feature_statistics import FeatureStatistics
from keras_ddpm.metrics.flowers import (
    flowers_encoder,
    flowers_encoder_targets,
)
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
    "flowers_encoder",
    "flower_colours",
    "class_accuracy",
    "flowers_encoder_targets",
    "frechet_distance",
    "kernel_distance",
    "polynomial_mmd2",
]
