class TrainingResult:
    """What `train` returns: the model, its history, and how the run ended.

    Args:
        model: the trained `DiffusionModel` (its EMA weights are used by
            `generate`).
        history: dict of per-epoch logs (`"loss"`, `"val_loss"`, ...), over all
            runs of this output folder (a resumed run extends it).
        output_dir: str, the run folder.
        status: `"completed"` (every file written), `"interrupted"` (Ctrl-C:
            a checkpoint was saved; `train(..., resume=True)` continues) or
            `"non_finite"` (the loss became NaN or infinite; training stopped
            and no newer checkpoint was written). Defaults to `"completed"`.
        message: str, why a run that did not complete stopped, else None.
            Defaults to None.
        checkpoint: str, the newest checkpoint this run wrote, or None.
            Defaults to None.
        files: list of str, the paths written into `output_dir` at the end of
            a completed run (model, pictures, history). Defaults to none.

    Example:

    ```python
    import keras_ddpm as kd

    result = kd.training.TrainingResult(None, {"loss": [0.2, 0.1]}, "runs/flowers")
    result.completed  # True
    ```
    """

    def __init__(
        self,
        model,
        history,
        output_dir,
        status="completed",
        message=None,
        checkpoint=None,
        files=(),
    ):
        self.model = model
        self.history = history
        self.output_dir = output_dir
        self.status = status
        self.message = message
        self.checkpoint = checkpoint
        self.files = list(files)

    @property
    def completed(self):
        """Whether the run trained every epoch and wrote its files."""
        return self.status == "completed"

    def __repr__(self):
        epochs = len(self.history.get("loss", []))
        return (
            f"TrainingResult(status={self.status!r}, epochs={epochs}, "
            f"output_dir={self.output_dir!r})"
        )
