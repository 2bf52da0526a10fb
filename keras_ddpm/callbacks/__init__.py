"""Training callbacks: sample grids, resumable checkpoints, a history file."""

from keras_ddpm.callbacks.checkpoint import Checkpoint, HistoryFile, list_checkpoints
from keras_ddpm.callbacks.sample_grid import SampleGrid

__all__ = ["SampleGrid", "Checkpoint", "HistoryFile", "list_checkpoints"]
