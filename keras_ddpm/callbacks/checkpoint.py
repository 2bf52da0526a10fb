import json
import os
import re

import keras
import numpy as np

from keras_ddpm.callbacks.step_counter import optimizer_steps
from keras_ddpm.utils import atomic_path, check_int

_NAME = re.compile(r"^ckpt-epoch(\d+)-step(\d+)\.keras$")
_TEMPORARY = re.compile(r"^\.ckpt-epoch\d+-step\d+\..*\.tmp\.keras$")


def list_checkpoints(directory):
    """Checkpoints in `directory` as `(path, epochs_completed, step)`, newest first.

    Args:
        directory: the folder a `Checkpoint` callback writes to.

    Returns:
        A list of tuples, empty when the folder is missing or holds none.

    Example:

    ```python
    import keras_ddpm as kd

    kd.callbacks.list_checkpoints("runs/flowers/checkpoints")  # [] before training
    ```
    """
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            found.append(
                (
                    os.path.join(directory, name),
                    int(match.group(1)),
                    int(match.group(2)),
                )
            )
    return sorted(found, key=lambda item: (item[2], item[1]), reverse=True)


@keras.saving.register_keras_serializable(package="keras_ddpm")
class Checkpoint(keras.callbacks.Callback):
    """Save the whole training state so that training resumes exactly.

    Each checkpoint is a full `.keras` file (network, EMA weights, optimizer
    state, schedule, sampler) named after the epochs completed and the optimizer
    step, written to a temporary file and renamed into place: a crash or a
    SIGKILL never leaves a corrupt checkpoint, only an older complete one. The
    newest `keep` checkpoints are kept. Call `request_stop()` (e.g. from a
    SIGINT handler) to end training after the current batch with a checkpoint.

    Resume with `Checkpoint.restore(directory)`, which returns the model and the
    epoch to pass as `fit(initial_epoch=...)`.

    Args:
        directory: folder for `ckpt-epochNNNNN-stepNNNNNNNNN.keras` files.
        every_n_epochs: int, epochs between checkpoints. Defaults to 1.
        keep: int, checkpoints kept. Defaults to 2.

    Raises:
        ValueError: if `every_n_epochs` or `keep` is not a positive int.

    Example:

    ```python
    import keras_ddpm as kd

    checkpoint = kd.callbacks.Checkpoint("runs/flowers/checkpoints")
    restored = kd.callbacks.Checkpoint.restore("runs/flowers/checkpoints")
    # model, initial_epoch = restored if restored else (new_model, 0)
    # model.fit(ds, epochs=50, initial_epoch=initial_epoch, callbacks=[checkpoint])
    ```
    """

    def __init__(self, directory, every_n_epochs=1, keep=2):
        super().__init__()
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, low=1)
        self.keep = check_int("keep", keep, low=1)
        self.directory = os.fspath(directory)
        self.stop_requested = False
        self.last_path = None

    def request_stop(self):
        """End training after the current batch, saving a checkpoint first."""
        self.stop_requested = True
        if self.model is not None:
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.stop_requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stop_requested:
            self.save(epochs_completed=epoch)  # the interrupted epoch does not count
        elif (epoch + 1) % self.every_n_epochs == 0:
            self.save(epochs_completed=epoch + 1)

    def save(self, epochs_completed):
        """Write a checkpoint now (atomically) and delete the ones beyond `keep`.

        Weights that hold a NaN or an infinity are never written (the older
        checkpoints stay): the method then prints why and returns None.

        Args:
            epochs_completed: int, the number of finished epochs, recorded in the
                file name and returned by `restore`.

        Returns:
            The path of the new checkpoint, or None when the weights are not finite.
        """
        if not all(
            np.isfinite(keras.ops.convert_to_numpy(v)).all()
            for v in self.model.trainable_variables
        ):
            print(
                f"Not saving a checkpoint after epoch {epochs_completed}: the weights "
                "are not finite.",
                flush=True,
            )
            return None
        step = optimizer_steps(self.model)
        path = os.path.join(
            self.directory, f"ckpt-epoch{epochs_completed:05d}-step{step:09d}.keras"
        )
        with atomic_path(path) as temporary:
            self.model.save(temporary)
        self.last_path = path
        for old, _, _ in list_checkpoints(self.directory)[self.keep :]:
            os.remove(old)
        for name in os.listdir(self.directory):
            if _TEMPORARY.match(name):  # left by a run killed while saving
                os.remove(os.path.join(self.directory, name))
        return path

    @staticmethod
    def restore(directory):
        """Load the newest checkpoint in `directory`.

        Args:
            directory: the folder the callback writes to.

        Returns:
            `(model, epochs_completed)`, or None when there is no checkpoint.
        """
        for path, epochs, _ in list_checkpoints(directory):
            return keras.saving.load_model(path), epochs
        return None

    def get_config(self):
        return {
            "directory": self.directory,
            "every_n_epochs": self.every_n_epochs,
            "keep": self.keep,
        }


@keras.saving.register_keras_serializable(package="keras_ddpm")
class HistoryFile(keras.callbacks.Callback):
    """Keep a JSON file of per-epoch logs, appended across resumed runs.

    Args:
        path: the JSON file; existing entries are kept and extended.

    Example:

    ```python
    import keras_ddpm as kd

    callback = kd.callbacks.HistoryFile("runs/flowers/history.json")
    ```
    """

    def __init__(self, path):
        super().__init__()
        self.path = os.fspath(path)
        self.history = {}
        if os.path.exists(self.path):
            with open(self.path) as file:
                self.history = json.load(file)

    def truncate(self, epochs):
        """Forget entries past `epochs` (they belong to work lost before a resume).

        Args:
            epochs: int, the number of epochs to keep.
        """
        self.history = {k: v[:epochs] for k, v in self.history.items()}

    def on_epoch_end(self, epoch, logs=None):
        self.truncate(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        with atomic_path(self.path) as temporary, open(temporary, "w") as file:
            json.dump(self.history, file, indent=1)

    def get_config(self):
        return {"path": self.path}
