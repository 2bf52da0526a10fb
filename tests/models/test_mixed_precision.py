"""DiffusionModel under mixed precision: bfloat16 / float16 compute, float32 state."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd

POLICIES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


@pytest.fixture
def policy(request):
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(request.param)
    yield request.param
    keras.mixed_precision.set_dtype_policy(previous)


def tiny_model(learning_rate=1e-2, optimizer=None):
    keras.utils.set_random_seed(0)
    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1)
    model = kd.DiffusionModel(
        net, schedule={"name": "linear", "timesteps": 50}, ema_momentum=0.9, seed=0
    )
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate))
    return model


IMAGES = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize("policy", list(POLICIES), indirect=True)
def test_trains_samples_and_round_trips(policy, tmp_path):
    model = tiny_model()
    compute = POLICIES[policy]
    assert model.network.compute_dtype == compute
    assert all(v.dtype == "float32" for v in model.network.trainable_variables)
    assert all(v.dtype == "float32" for v in model.ema_weights)
    # Keras wraps the optimizer in a dynamic loss scaler for float16 only.
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
        compute == "float16"
    )

    loss = model.fit(IMAGES, batch_size=8, epochs=4, verbose=0).history["loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0], loss
    assert all(np.isfinite(ops.convert_to_numpy(v)).all() for v in model.ema_weights)

    # The sampler's arithmetic stays float32 whatever the network computes in.
    weights = model.sampling_weights(use_ema=True)
    non_trainable = [v.value for v in model.network.non_trainable_variables]
    x0, eps = model.denoise(weights, non_trainable, ops.convert_to_tensor(IMAGES), 30)
    assert {keras.backend.standardize_dtype(x.dtype) for x in (x0, eps)} == {"float32"}

    images = model.generate(3, sampler="ddim", steps=5, seed=0)
    assert images.dtype == np.float32 and np.isfinite(images).all()

    model.save(tmp_path / "mixed.keras")
    loaded = keras.saving.load_model(tmp_path / "mixed.keras")
    assert loaded.network.compute_dtype == compute
    assert all(v.dtype == "float32" for v in loaded.ema_weights)
    for saved, restored in zip(model.ema_weights, loaded.ema_weights):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(restored), ops.convert_to_numpy(saved)
        )


@pytest.mark.parametrize("policy", ["mixed_float16"], indirect=True)
def test_float16_step_unscales_gradients(policy):
    """One SGD step in float16 moves the weights as the float32 step does.

    The loss is multiplied by the loss scale (2¹⁵ at first) before the backward
    pass; if the gradients were not divided back, the step would be 2¹⁵ times
    too large, and if they overflowed it would be skipped.
    """
    keras.mixed_precision.set_dtype_policy("float32")
    reference = tiny_model(optimizer=keras.optimizers.SGD(0.1))
    keras.mixed_precision.set_dtype_policy(policy)
    mixed = tiny_model(optimizer=keras.optimizers.SGD(0.1))
    mixed.network.set_weights(reference.network.get_weights())
    before = reference.network.get_weights()
    for model in (reference, mixed):
        model.fit(IMAGES[:8], batch_size=8, epochs=1, verbose=0)
    steps = [
        [a - b for a, b in zip(m.network.get_weights(), before)]
        for m in (reference, mixed)
    ]
    norms = [np.linalg.norm(np.concatenate([s.ravel() for s in m])) for m in steps]
    assert norms[0] > 0 and 0.5 < norms[1] / norms[0] < 2, norms
    # The output bias' gradient is the mean error, which float16 features barely
    # touch: there the two steps agree to float16 precision.
    np.testing.assert_allclose(steps[1][-1], steps[0][-1], rtol=2e-2, atol=1e-6)
