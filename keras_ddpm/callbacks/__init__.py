"""Training callbacks: sample grids, resumable checkpoints, a history file, validation KID."""

from keras_ddpm.callbacks.checkpoint import Checkpoint, HistoryFile, list_checkpoints
from keras_ddpm.callbacks.sample_grid import SampleGrid
from keras_ddpm.callbacks.validation_kid import ValidationKID

__all__ = [
    "SampleGrid",
    "Checkpoint",
    "HistoryFile",
    "list_checkpoints",
    "ValidationKID",
]
