"""Training curves with matplotlib (an optional dependency)."""

import json
import os

from keras_ddpm.utils import atomic_path


def plot_history(history, path):
    """Plot the loss curves and any KID/FID curves of a training run to an image.

    Args:
        history: a `keras.callbacks.History`, its `.history` dict, or the path
            of a JSON file holding that dict.
        path: output image (PNG).

    Returns:
        The list of metric names that were plotted.

    Raises:
        ImportError: matplotlib is missing (`pip install "keras-ddpm[viz]"`).
        ValueError: nothing to plot.

    Example:

    ```python
    import keras_ddpm as kd

    kd.viz.plot_history({"loss": [0.3, 0.2, 0.15], "val_loss": [0.31, 0.22, 0.2]}, "loss.png")
    ```
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            'plot_history needs matplotlib: pip install "keras-ddpm[viz]"'
        ) from error
    if isinstance(history, (str, os.PathLike)):
        with open(history) as file:
            history = json.load(file)
    history = getattr(history, "history", history)
    if not isinstance(history, dict) or not any(history.values()):
        raise ValueError("`history` holds no metric values to plot.")
    groups = [("loss", [k for k in history if k.endswith("loss")])]
    quality = [k for k in history if k.endswith(("kid", "fid"))]
    if quality:
        groups.append(("sample quality", quality))
    figure, axes = plt.subplots(
        1, len(groups), figsize=(6 * len(groups), 4), squeeze=False
    )
    for axis, (title, keys) in zip(axes[0], groups):
        for key in keys:
            values = history[key]
            axis.plot(
                range(1, len(values) + 1),
                values,
                marker="o" if len(values) < 30 else None,
                label=key,
            )
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    return [k for _, keys in groups for k in keys]
