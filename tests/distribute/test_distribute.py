"""Data-parallel training equals single-device training on the same global batch.

Virtual devices must be configured before the backend starts, so each engine is
checked in a fresh interpreter, once, under its own backend.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_ddpm as kd

BACKEND = keras.backend.backend()

COMMON = """
import json, os
import keras, numpy as np
import keras_ddpm as kd

def make():
    keras.utils.set_random_seed(0)
    net = kd.models.build_unet(image_size=8, widths=(8, 16), block_depth=1)
    model = kd.DiffusionModel(
        net, schedule={"name": "linear", "timesteps": 50}, ema_momentum=0.9, seed=0
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model

def train(model, callbacks=()):
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype("float32")
    history = model.fit(
        images, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=list(callbacks)
    )
    return history.history["loss"]

def compare(single, loss, other, other_loss):
    def largest(a, b):
        return float(max(np.abs(np.asarray(u) - np.asarray(v)).max() for u, v in zip(a, b)))
    return {
        "loss": [loss, other_loss],
        "weights": largest(single.network.weights, other.network.weights),
        "ema": largest(single.ema_weights, other.ema_weights),
        "steps": int(keras.ops.convert_to_numpy(other.ema_updates.value)),
    }

results = {}
"""

SINGLE = """
single = make()
single_loss = train(single)
"""

JAX_SCRIPT = (
    SINGLE
    + """
devices = keras.distribution.list_devices()
assert len(devices) == 4, devices
with kd.distribute.device_scope(4):
    parallel = make()
    results["data_parallel"] = compare(single, single_loss, parallel, train(parallel))
mesh = keras.distribution.DeviceMesh((2, 2), ("batch", "model"), devices)
model_parallel = keras.distribution.ModelParallel(
    layout_map=kd.distribute.unet_layout_map(mesh), batch_dim_name="batch"
)
with model_parallel.scope():
    sharded = make()
    results["model_parallel"] = compare(single, single_loss, sharded, train(sharded))
    kernel = sharded.network.get_layer("down_1").weights[2]
    results["kernel_spec"] = [str(a) for a in kernel.value.sharding.spec]
    ema = [v for v in sharded.ema_weights if "down_1_residual_0_conv1_kernel" in v.path][0]
    results["ema_spec"] = [str(a) for a in ema.value.sharding.spec]
print("RESULT " + json.dumps(results))
"""
)

# The strategy splits the CPU in two before TensorFlow starts; the single-device
# run then uses the first logical device.
TF_SCRIPT = (
    """
import tensorflow as tf
scope = kd.distribute.device_scope(2)
"""
    + SINGLE
    + """
with scope:
    mirrored = make()
assert isinstance(mirrored.ema_weights[0].value, tf.distribute.DistributedValues)
checkpoint = kd.callbacks.Checkpoint(os.environ["CHECKPOINTS"])
results["mirrored"] = compare(
    single, single_loss, mirrored, train(mirrored, [checkpoint])
)
results["checkpoints"] = [
    [epochs, step] for _, epochs, step in kd.callbacks.list_checkpoints(checkpoint.directory)
]
# The recipe's fit takes one step per call under the replicas: Keras' train
# function for several steps per call fails there.
from keras_ddpm.training import recipe

recipe._steps_per_call(mirrored, recipe.STEPS_PER_EXECUTION)
results["steps_per_call"] = mirrored.steps_per_execution
results["trains"] = bool(np.isfinite(train(mirrored)).all())
print("RESULT " + json.dumps(results))
"""
)


def run_script(body, env):
    script = textwrap.dedent(COMMON) + textwrap.dedent(body)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def assert_equal_training(result, atol):
    single, parallel = result["loss"]
    np.testing.assert_allclose(parallel, single, rtol=1e-5)
    assert result["weights"] < atol, result
    assert result["ema"] < atol, result
    assert result["steps"] == 4  # 2 epochs of 2 batches: one EMA update each


@pytest.mark.skipif(BACKEND != "jax", reason="JAX virtual devices, checked once")
def test_jax_data_and_model_parallel_equal_single_device():
    results = run_script(
        JAX_SCRIPT,
        {
            "KERAS_BACKEND": "jax",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        },
    )
    assert_equal_training(results["data_parallel"], atol=1e-6)
    assert_equal_training(results["model_parallel"], atol=1e-6)
    assert results["kernel_spec"] == ["None", "None", "None", "model"]
    assert results["ema_spec"] == ["None", "None", "None", "model"]


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="TensorFlow logical devices, checked once"
)
def test_tensorflow_mirrored_strategy_equals_single_device(tmp_path):
    results = run_script(
        TF_SCRIPT, {"KERAS_BACKEND": "tensorflow", "CHECKPOINTS": str(tmp_path)}
    )
    assert_equal_training(results["mirrored"], atol=1e-6)
    assert results["checkpoints"] == [[2, 4], [1, 2]]
    assert results["steps_per_call"] == 1 and results["trains"]


def test_one_device_changes_nothing():
    with kd.distribute.device_scope(1):
        net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1)
    assert net.count_params() > 0


@pytest.mark.skipif(BACKEND != "torch", reason="what PyTorch users get")
def test_torch_refuses_several_devices_clearly():
    with pytest.raises(ValueError, match="no multi-device fit on the torch backend"):
        kd.distribute.device_scope(2)


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_device_count_must_be_a_positive_int(count):
    with pytest.raises(ValueError, match="`count` must be a positive int"):
        kd.distribute.device_scope(count)


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution meshes are JAX's")
def test_layout_map_names_a_mesh_axis():
    devices = keras.distribution.list_devices()[:1]
    mesh = keras.distribution.DeviceMesh((1,), ("batch",), devices)
    with pytest.raises(ValueError, match="must be one of the mesh axes"):
        kd.distribute.unet_layout_map(mesh)


@pytest.mark.skipif(
    BACKEND != "jax", reason="JAX lists its devices without side effects"
)
def test_too_many_devices_names_the_argument():
    with pytest.raises(
        ValueError, match=r"^`count` = 100000 asks for more devices"
    ) as error:
        kd.distribute.device_scope(100_000)
    assert "--devices" not in str(error.value)
