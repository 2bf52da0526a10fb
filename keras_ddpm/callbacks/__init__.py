"""Training callbacks: sample grids, resumable checkpoints, a history file, a NaN stop."""

from keras_ddpm.callbacks.checkpoint import Checkpoint, HistoryFile, list_checkpoints
from keras_ddpm.callbacks.sample_grid import SampleGrid
from keras_ddpm.callbacks.terminate_on_non_finite import TerminateOnNonFinite

__all__ = [
    "SampleGrid",
    "Checkpoint",
    "HistoryFile",
    "TerminateOnNonFinite",
    "list_checkpoints",
]
