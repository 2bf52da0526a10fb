import keras
import numpy as np
import pytest

import keras_ddpm as kd
from tests.metrics.encoders import smooth_images, tiny_encoder


def tiny_network(size=8, width=8):
    """A two-convolution denoiser with a time embedding.

    The callback needs a model that trains and samples, not a good one; a U-Net
    costs seconds more to compile (the U-Net itself is tested in tests/models).
    """
    images = keras.Input((size, size, 3))
    timesteps = keras.Input(())
    embedding = kd.layers.SinusoidalEmbedding(width)(timesteps)
    shift = keras.layers.Reshape((1, 1, width))(keras.layers.Dense(width)(embedding))
    hidden = keras.layers.Conv2D(width, 3, padding="same")(images)
    hidden = keras.layers.Activation("swish")(keras.layers.Add()([hidden, shift]))
    outputs = keras.layers.Conv2D(3, 3, padding="same")(hidden)
    return keras.Model([images, timesteps], outputs)


def tiny_model():
    net = tiny_network()
    model = kd.DiffusionModel(
        net, schedule={"name": "linear", "timesteps": 50}, ema_momentum=0.5, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def kid_callback(**kwargs):
    metric = kd.metrics.KernelInceptionDistance(
        feature_extractor=tiny_encoder(size=8), subset_size=16, num_subsets=5
    )
    return kd.callbacks.ValidationKID(
        smooth_images(16, seed=1, size=8),
        metric=metric,
        num_images=16,
        steps=2,
        **kwargs,
    )


def test_val_kid_is_in_history_and_drives_model_checkpoint(tmp_path):
    model = tiny_model()
    validation_kid = kid_callback()
    path = str(tmp_path / "best.keras")
    checkpoint = keras.callbacks.ModelCheckpoint(
        path, monitor="val_kid", mode="min", save_best_only=True
    )
    history = model.fit(
        smooth_images(16, seed=0, size=8),
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[validation_kid, checkpoint],
    )
    values = history.history["val_kid"]
    assert len(values) == 2 and all(np.isfinite(values))
    assert len(history.history["val_kid_std"]) == 2
    assert [v for _, v in validation_kid.history] == values
    # ModelCheckpoint saw val_kid: its best is the smallest score, and it saved.
    assert checkpoint.best == pytest.approx(min(values))
    assert (tmp_path / "best.keras").is_file()
    # The score is reproducible: same weights, same seed, same images.
    assert validation_kid.evaluate()[0] == pytest.approx(values[-1], rel=1e-6)


def test_every_n_epochs_and_reference_computed_once():
    model = tiny_model()
    callback = kid_callback(every_n_epochs=2)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs == {}
    callback.on_epoch_end(1, logs)
    assert set(logs) == {"val_kid", "val_kid_std"}
    reference = callback.metric.reference
    assert reference.count == 16
    callback.on_epoch_end(3, logs)
    assert callback.metric.reference is reference
    assert [epoch for epoch, _ in callback.history] == [1, 3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="`every_n_epochs` must be a positive int"):
        kd.callbacks.ValidationKID(
            np.zeros((4, 8, 8, 3)), metric=None, every_n_epochs=0
        )
    with pytest.raises(ValueError, match="`metric` must be"):
        kd.callbacks.ValidationKID(np.zeros((4, 8, 8, 3)), metric="kid")
