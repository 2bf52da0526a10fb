"""`jit_compile=True` on PyTorch: the train and test steps under `torch.compile`."""

import keras
import numpy as np
import pytest

import keras_ddpm as kd

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="torch.compile of the train step"
)


def _model(jit_compile):
    keras.utils.set_random_seed(0)
    net = kd.models.build_unet(8, widths=(8, 16), block_depth=1, attention_levels=(1,))
    model = kd.DiffusionModel(net, schedule={"name": "cosine", "timesteps": 50}, seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), jit_compile=jit_compile)
    return model


def test_steps_compile_with_static_shapes(monkeypatch):
    import torch

    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = _model(jit_compile=True)
    model.make_train_function()
    model.make_test_function()
    model.make_predict_function()
    assert compiled == [{"dynamic": False}] * 3
    assert model.jit_compile is True
    model.make_train_function()  # kept: not compiled again
    assert len(compiled) == 3
    model.make_train_function(force=True)
    assert len(compiled) == 4


def test_eager_steps_are_not_compiled(monkeypatch):
    import torch

    monkeypatch.setattr(torch, "compile", pytest.fail)
    model = _model(jit_compile=False)
    model.make_train_function()
    model.make_test_function()
    model.make_predict_function()


@pytest.mark.slow
def test_compiled_fit_matches_eager_fit():
    # Before the steps kept static shapes, this network (attention at its
    # lowest level) failed in the first compiled step: inductor could not
    # order a symbolic stride.
    images = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 3)).astype("float32")
    losses = {}
    for jit_compile in (False, True):
        model = _model(jit_compile)
        history = model.fit(
            images, batch_size=8, epochs=2, validation_data=images, verbose=0
        )
        losses[jit_compile] = [history.history["loss"], history.history["val_loss"]]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
