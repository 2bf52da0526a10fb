import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.helpers import run_layer_test


def test_down_block_contract():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 4)).astype("float32")
    e = rng.standard_normal((2, 6)).astype("float32")
    run_layer_test(
        kd.layers.DownBlock,
        {"filters": 8, "block_depth": 2, "groups": 4, "attention": True},
        [x, e],
        ((2, 4, 4, 8), [(2, 8, 8, 8), (2, 8, 8, 8)]),
    )


def test_up_block_contract():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 4, 8)).astype("float32")
    e = rng.standard_normal((2, 6)).astype("float32")
    skips = [rng.standard_normal((2, 8, 8, 4)).astype("float32") for _ in range(2)]
    run_layer_test(
        kd.layers.UpBlock, {"filters": 4, "groups": 4}, [x, e, skips], (2, 8, 8, 4)
    )


def test_up_block_consumes_skips_last_first():
    e = np.zeros((1, 4), "float32")
    x = np.zeros((1, 4, 4, 8), "float32")
    first, last = np.zeros((1, 4, 4, 4), "float32"), np.zeros((1, 4, 4, 12), "float32")
    block = kd.layers.UpBlock(8, block_depth=2, upsample=False, groups=4)
    block([x, e, [first, last]])
    # residual_0 sees x (8) + the last skip (12); residual_1 sees 8 + 4.
    assert block.residual_blocks[0].conv1.kernel.shape[2] == 20
    assert block.residual_blocks[1].conv1.kernel.shape[2] == 12


def test_custom_unet_from_blocks_saves_and_loads(tmp_path):
    images = keras.Input((16, 16, 3))
    timesteps = keras.Input(())
    embedding = kd.layers.SinusoidalEmbedding(16)(timesteps)
    x = keras.layers.Conv2D(8, 3, padding="same")(images)
    x, skips_1 = kd.layers.DownBlock(8, block_depth=1)([x, embedding])
    x, skips_2 = kd.layers.DownBlock(16, block_depth=1, downsample=False)(
        [x, embedding]
    )
    x = kd.layers.UpBlock(16, block_depth=1, upsample=False)([x, embedding, skips_2])
    x = kd.layers.UpBlock(8, block_depth=1)([x, embedding, skips_1])
    model = keras.Model(
        [images, timesteps], keras.layers.Conv2D(3, 3, padding="same")(x)
    )
    inputs = [
        np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32"),
        np.array([3.0, 400.0], "float32"),
    ]
    model.save(tmp_path / "custom.keras")
    loaded = keras.saving.load_model(tmp_path / "custom.keras", safe_mode=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(inputs)),
        ops.convert_to_numpy(model(inputs)),
        atol=1e-5,
    )


def test_wrong_skip_count_and_size_are_clear_errors():
    e = np.zeros((1, 4), "float32")
    with pytest.raises(ValueError, match="expects 2 skips, got 1"):
        kd.layers.UpBlock(8)(
            [np.zeros((1, 2, 2, 8), "float32"), e, [np.zeros((1, 4, 4, 8), "float32")]]
        )
    with pytest.raises(ValueError, match="spatial shape"):
        kd.layers.UpBlock(8, block_depth=1)(
            [np.zeros((1, 2, 2, 8), "float32"), e, [np.zeros((1, 2, 2, 8), "float32")]]
        )
    with pytest.raises(ValueError, match="`block_depth` must be a positive int"):
        kd.layers.DownBlock(8, block_depth=0)
