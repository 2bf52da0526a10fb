import json
import os

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

import keras_ddpm as kd

# Keras callbacks over `fit`: the same Python on every backend, with the
# backend's saving and restoring underneath. Checked under JAX and PyTorch;
# TensorFlow writes checkpoints in tests/distribute, and its `fit` is
# tested throughout tests/models, where each new graph costs it tens of seconds.
NOT_TF = pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="callbacks over fit: checked under JAX and PyTorch",
)


def small_model():
    net = kd.models.build_unet(
        8, widths=(8,), block_depth=1, groups=4, attention_levels=()
    )
    model = kd.DiffusionModel(net, ema_momentum=0.9, seed=0, sampler="ddim")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def data():
    return np.tanh(np.random.default_rng(0).standard_normal((16, 8, 8, 3))).astype(
        "float32"
    )


@NOT_TF
def test_sample_grid_and_history_file(tmp_path):
    model = small_model()
    grid = kd.callbacks.SampleGrid(
        tmp_path / "samples", every_n_epochs=2, rows=2, cols=2, steps=3, seed=5
    )
    history = kd.callbacks.HistoryFile(tmp_path / "history.json")
    model.fit(data(), batch_size=8, epochs=4, verbose=0, callbacks=[grid, history])
    assert sorted(os.listdir(tmp_path / "samples")) == [
        "epoch_0002.png",
        "epoch_0004.png",
    ]
    with Image.open(tmp_path / "samples" / "epoch_0004.png") as image:
        written = np.asarray(image)
    expected = kd.viz.image_grid(
        model.generate(4, sampler="ddim", steps=3, seed=5), 2, 2
    )
    np.testing.assert_array_equal(written, expected)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert len(saved["loss"]) == 4
    resumed = kd.callbacks.HistoryFile(tmp_path / "history.json")
    model.fit(
        data(), batch_size=8, epochs=4, initial_epoch=3, verbose=0, callbacks=[resumed]
    )
    again = json.loads((tmp_path / "history.json").read_text())
    assert len(again["loss"]) == 4 and again["loss"][:3] == saved["loss"][:3]


@NOT_TF
def test_checkpoint_keeps_newest_and_restores_state(tmp_path):
    model = small_model()
    checkpoint = kd.callbacks.Checkpoint(tmp_path, keep=2)
    model.fit(data(), batch_size=8, epochs=3, verbose=0, callbacks=[checkpoint])
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "ckpt-epoch00002-step000000004.keras",
        "ckpt-epoch00003-step000000006.keras",
    ]
    restored, epochs = kd.callbacks.Checkpoint.restore(tmp_path)
    assert epochs == 3
    for a, b in [
        (model.ema_weights, restored.ema_weights),
        (model.optimizer.variables, restored.optimizer.variables),
    ]:
        for x, y in zip(a, b):
            np.testing.assert_array_equal(
                ops.convert_to_numpy(x.value), ops.convert_to_numpy(y.value)
            )
    assert kd.callbacks.Checkpoint.restore(tmp_path / "empty") is None


@NOT_TF
def test_request_stop_saves_the_interrupted_epoch_as_incomplete(tmp_path):
    model = small_model()
    checkpoint = kd.callbacks.Checkpoint(tmp_path)

    class StopAfterFirstBatchOfSecondEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(ops.convert_to_numpy(self.model.optimizer.iterations.value)) == 3:
                checkpoint.request_stop()

    model.fit(
        data(),
        batch_size=8,
        epochs=5,
        verbose=0,
        callbacks=[StopAfterFirstBatchOfSecondEpoch(), checkpoint],
    )
    assert sorted(os.listdir(tmp_path))[-1] == "ckpt-epoch00001-step000000003.keras"


@NOT_TF
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    model = small_model()
    checkpoint = kd.callbacks.Checkpoint(tmp_path, keep=2)
    model.fit(data(), batch_size=8, epochs=1, verbose=0, callbacks=[checkpoint])
    (good,) = os.listdir(tmp_path)
    good_bytes = (tmp_path / good).read_bytes()

    # Steps of 1e30 overflow the activations within a batch or two.
    model.optimizer.learning_rate.assign(1e30)
    stop = kd.callbacks.TerminateOnNonFinite()
    model.fit(
        data(),
        batch_size=8,
        epochs=5,
        initial_epoch=1,
        verbose=0,
        callbacks=[stop, checkpoint],
    )
    assert stop.step is not None and 2 < stop.step <= 4
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == stop.step
    line = capsys.readouterr().out.strip().splitlines()
    assert line[0].startswith("loss became ")
    assert f" at step {stop.step} (epoch 2, batch " in line[0]
    assert "weights are not finite" in line[-1]
    assert os.listdir(tmp_path) == [good]
    assert (tmp_path / good).read_bytes() == good_bytes
    restored, epochs = kd.callbacks.Checkpoint.restore(tmp_path)
    assert epochs == 1
    assert all(
        np.isfinite(ops.convert_to_numpy(v)).all() for v in restored.trainable_variables
    )


@pytest.mark.parametrize(
    "factory,message",
    [
        (lambda d: kd.callbacks.SampleGrid(d, every_n_epochs=True), "`every_n_epochs`"),
        (lambda d: kd.callbacks.Checkpoint(d, every_n_epochs=0), "`every_n_epochs`"),
        (lambda d: kd.callbacks.Checkpoint(d, keep=1.0), "`keep`"),
    ],
)
def test_bad_counts_are_one_line_errors(tmp_path, factory, message):
    with pytest.raises(ValueError, match=f"^{message} must be a positive int"):
        factory(str(tmp_path))
