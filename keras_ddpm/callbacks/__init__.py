"""Training callbacks: sample grids, resumable checkpoints, a history file,
validation KID, a stop on a non-finite loss, a wall-clock budget, a
learning-rate decay along it and a guide snapshot for autoguidance."""

from keras_ddpm.callbacks.budget_cosine_decay import BudgetCosineDecay
from keras_ddpm.callbacks.checkpoint import Checkpoint, HistoryFile, list_checkpoints
from keras_ddpm.callbacks.guide_snapshot import GuideSnapshot
from keras_ddpm.callbacks.sample_grid import SampleGrid
from keras_ddpm.callbacks.terminate_on_non_finite import TerminateOnNonFinite
from keras_ddpm.callbacks.time_limit import TimeLimit
from keras_ddpm.callbacks.validation_kid import ValidationKID

__all__ = [
    "BudgetCosineDecay",
    "SampleGrid",
    "Checkpoint",
    "HistoryFile",
    "GuideSnapshot",
    "TerminateOnNonFinite",
    "TimeLimit",
    "ValidationKID",
    "list_checkpoints",
]
