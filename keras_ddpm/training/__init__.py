"""The training recipe of `keras-ddpm train`, callable from Python: `train(...)`."""

from keras_ddpm.training.recipe import DEFAULTS, train
from keras_ddpm.training.training_result import TrainingResult

__all__ = ["train", "TrainingResult", "DEFAULTS"]
