import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the parameter count and file format do not depend on the backend: "
    "checked once, under PyTorch, where the 47M-parameter U-Net builds fastest",
)
def test_default_unet_builds_with_documented_parameter_count(tmp_path):
    net = kd.models.build_unet(image_size=64, widths=(64, 128, 256, 512), block_depth=2)
    assert net.count_params() == 46_892_163
    assert net.output_shape == (None, 64, 64, 3)
    out_conv = net.get_layer("out_conv")
    out_conv.kernel.assign(
        np.random.default_rng(0)
        .normal(0, 0.05, out_conv.kernel.shape)
        .astype("float32")
    )
    inputs = [
        np.random.default_rng(1).standard_normal((2, 64, 64, 3)).astype("float32"),
        np.array([10.0, 900.0], "float32"),
    ]
    reference = ops.convert_to_numpy(net(inputs))
    assert np.abs(reference).max() > 0
    net.save(tmp_path / "unet64.keras")
    loaded = keras.saving.load_model(tmp_path / "unet64.keras", safe_mode=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(inputs)), reference, atol=1e-5
    )


def test_small_unet_outputs_zeros_and_round_trips(tmp_path):
    net = kd.models.build_unet(
        image_size=(16, 24),
        channels=1,
        widths=(8, 16),
        block_depth=1,
        attention_levels=(1,),
        groups=4,
    )
    images = np.random.default_rng(0).standard_normal((2, 16, 24, 1)).astype("float32")
    inputs = [images, np.array([0.0, 500.0], "float32")]
    out = ops.convert_to_numpy(net(inputs))
    assert out.shape == (2, 16, 24, 1)
    np.testing.assert_array_equal(out, 0.0)  # zero-initialised output convolution
    net.get_layer("out_conv").kernel.assign(
        np.random.default_rng(1).standard_normal((3, 3, 8, 1)).astype("float32") * 0.1
    )
    reference = ops.convert_to_numpy(net(inputs))
    net.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras", safe_mode=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(inputs)), reference, atol=1e-5
    )


def test_zero_init_residual_zeroes_every_residual_branch(tmp_path):
    kwargs = dict(widths=(8, 16), block_depth=2, attention_levels=(1,), groups=4)
    net = kd.models.build_unet(8, zero_init_residual=True, **kwargs)
    blocks = [
        layer
        for layer in net._flatten_layers()
        if isinstance(layer, kd.layers.ResidualBlock)
    ]
    # Two per level down and up, two in the middle.
    assert len(blocks) == 2 * 2 + 2 * 2 + 2
    for block in blocks:
        np.testing.assert_array_equal(ops.convert_to_numpy(block.conv2.kernel), 0.0)
        assert np.abs(ops.convert_to_numpy(block.conv1.kernel)).max() > 0
    net.save(tmp_path / "zero.keras")
    loaded = keras.saving.load_model(tmp_path / "zero.keras", safe_mode=True)
    assert loaded.get_layer("down_0").get_config()["zero_init"] is True
    plain = kd.models.build_unet(8, **kwargs)
    assert (
        np.abs(
            ops.convert_to_numpy(plain.get_layer("middle_residual_0").conv2.kernel)
        ).max()
        > 0
    )
    with pytest.raises(ValueError, match="`zero_init_residual` must be one of"):
        kd.models.build_unet(8, zero_init_residual=1, **kwargs)


def test_zero_init_attention_zeroes_every_attention_output(tmp_path):
    kwargs = dict(widths=(8, 16), block_depth=2, attention_levels=(0, 1), groups=4)
    net = kd.models.build_unet(8, zero_init_attention=True, **kwargs)
    blocks = [
        layer
        for layer in net._flatten_layers()
        if isinstance(layer, kd.layers.AttentionBlock)
    ]
    # Two per level down and up, one in the middle.
    assert len(blocks) == 2 * 2 * 2 + 1
    for block in blocks:
        output = block.attention._output_dense.kernel
        np.testing.assert_array_equal(ops.convert_to_numpy(output), 0.0)
        query = block.attention._query_dense.kernel
        assert np.abs(ops.convert_to_numpy(query)).max() > 0
    # The residual convolutions are untouched.
    residual = net.get_layer("middle_residual_0").conv2.kernel
    assert np.abs(ops.convert_to_numpy(residual)).max() > 0
    net.save(tmp_path / "zero.keras")
    loaded = keras.saving.load_model(tmp_path / "zero.keras", safe_mode=True)
    assert loaded.get_layer("up_1").get_config()["zero_init_attention"] is True
    assert loaded.get_layer("middle_attention").get_config()["zero_init"] is True
    plain = kd.models.build_unet(8, **kwargs).get_layer("middle_attention")
    output = plain.attention._output_dense.kernel
    assert np.abs(ops.convert_to_numpy(output)).max() > 0
    with pytest.raises(ValueError, match="`zero_init_attention` must be one of"):
        kd.models.build_unet(8, zero_init_attention="on", **kwargs)


def test_scale_shift_reaches_every_residual_block_and_survives_saving(tmp_path):
    kwargs = dict(widths=(8, 16), block_depth=1, attention_levels=(), groups=4)
    net = kd.models.build_unet(8, scale_shift=True, **kwargs)
    blocks = [
        layer
        for layer in net._flatten_layers()
        if isinstance(layer, kd.layers.ResidualBlock)
    ]
    assert len(blocks) == 2 + 2 + 2 and all(block.scale_shift for block in blocks)
    # A scale and a shift per channel: twice the plain network's projection.
    plain = kd.models.build_unet(8, **kwargs)
    extra = sum(32 * block.filters + block.filters for block in blocks)
    assert net.count_params() == plain.count_params() + extra
    net.save(tmp_path / "adagn.keras")
    loaded = keras.saving.load_model(tmp_path / "adagn.keras", safe_mode=True)
    assert loaded.get_layer("middle_residual_1").scale_shift is True
    with pytest.raises(ValueError, match="`scale_shift` must be one of"):
        kd.models.build_unet(8, scale_shift="on", **kwargs)


def test_patch_size_is_a_plain_unet_on_unshuffled_images(tmp_path):
    kwargs = dict(widths=(8, 16), block_depth=1, attention_levels=(1,), groups=4)
    net = kd.models.build_unet((8, 12), channels=2, patch_size=2, **kwargs)
    plain = kd.models.build_unet((4, 6), channels=8, **kwargs)
    assert net.count_params() == plain.count_params()
    assert net.output_shape == (None, 8, 12, 2)
    rng = np.random.default_rng(0)
    for ours, theirs in zip(net.weights, plain.weights):
        value = rng.normal(0, 0.2, ours.shape).astype("float32")
        ours.assign(value)
        theirs.assign(value)
    images = rng.standard_normal((3, 8, 12, 2)).astype("float32")
    timesteps = np.array([0.0, 300.0, 999.0], "float32")
    patches = kd.layers.PixelUnshuffle(2)(images)
    expected = kd.layers.PixelShuffle(2)(
        plain([patches, ops.convert_to_tensor(timesteps)])
    )
    out = ops.convert_to_numpy(net([images, timesteps]))
    assert np.abs(out).max() > 0
    np.testing.assert_allclose(out, ops.convert_to_numpy(expected), atol=1e-5)
    net.save(tmp_path / "patches.keras")
    loaded = keras.saving.load_model(tmp_path / "patches.keras", safe_mode=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded([images, timesteps])), out, atol=1e-5
    )
    untrained = kd.models.build_unet(8, patch_size=2, **kwargs)
    zeros = untrained([np.ones((1, 8, 8, 3), "float32"), np.zeros((1,), "float32")])
    np.testing.assert_array_equal(ops.convert_to_numpy(zeros), 0.0)


def test_block_depth_per_level_builds_that_many_blocks_per_level(tmp_path):
    kwargs = dict(widths=(8, 16, 16), attention_levels=(1,), groups=4)
    net = kd.models.build_unet(8, block_depth=(1, 3, 2), **kwargs)

    def blocks(layer, kind):
        return sum(isinstance(sub, kind) for sub in layer._flatten_layers())

    for level, depth in enumerate((1, 3, 2)):
        for side in ("down", "up"):
            block = net.get_layer(f"{side}_{level}")
            assert blocks(block, kd.layers.ResidualBlock) == depth
            attention = depth if level == 1 else 0
            assert blocks(block, kd.layers.AttentionBlock) == attention
    # One depth per level is the same network as that depth everywhere.
    same = kd.models.build_unet(8, block_depth=(2, 2, 2), **kwargs)
    assert (
        same.count_params()
        == kd.models.build_unet(8, block_depth=2, **kwargs).count_params()
    )
    # Each block more at level 1 costs what one level-1 block and its
    # attention cost, once down and once up (an up block's first input also
    # holds the skip, so its size differs from the down block's).
    deeper = kd.models.build_unet(8, block_depth=(1, 4, 2), **kwargs)
    down = net.get_layer("down_1")
    up = net.get_layer("up_1")

    added = sum(
        block.count_params()
        for level in (down, up)
        for block in (level.residual_blocks[2], level.attention_blocks[2])
    )
    assert deeper.count_params() == net.count_params() + added
    net.save(tmp_path / "depths.keras")
    loaded = keras.saving.load_model(tmp_path / "depths.keras", safe_mode=True)
    assert loaded.get_layer("up_1").get_config()["block_depth"] == 3
    assert loaded.get_layer("down_0").get_config()["block_depth"] == 1
    for bad in (0, (1, 2), (1, 0, 2), (1, 2.0, 2), "2", True):
        with pytest.raises(
            ValueError,
            match=r"`block_depth` must be an int >= 1 or a sequence of one such "
            r"int per level \(3 levels\), got ",
        ):
            kd.models.build_unet(8, block_depth=bad, **kwargs)


def test_bad_patch_size_is_a_one_line_error():
    with pytest.raises(
        ValueError,
        match=r"Image height 12 is not divisible by patch_size \* 2\*\*\(levels-1\) "
        "= 8 for 3 levels; the nearest valid sizes are 8 and 16",
    ):
        kd.models.build_unet(12, widths=(8, 16, 32), patch_size=2)
    with pytest.raises(ValueError, match="`patch_size` must be a positive int, got 0"):
        kd.models.build_unet(8, widths=(8,), patch_size=0)


def test_bad_image_size_names_nearest_valid_sizes():
    with pytest.raises(
        ValueError,
        match="not divisible by 2\\*\\*\\(levels-1\\) = 8.*nearest valid sizes are 56 and 64",
    ):
        kd.models.build_unet(image_size=60, widths=(8, 16, 32, 64))
    with pytest.raises(ValueError, match="Image width 30"):
        kd.models.build_unet(image_size=(32, 30), widths=(8, 16, 32))
    with pytest.raises(ValueError, match="`attention_levels` must hold level indices"):
        kd.models.build_unet(image_size=32, widths=(8, 16), attention_levels=(2,))
    with pytest.raises(
        ValueError,
        match="^Each of `widths` must be divisible by 8, the group normalization's groups, got 12.",
    ):
        kd.models.build_unet(image_size=32, widths=(12, 16))
    with pytest.raises(ValueError, match=r"`image_size\[0\]` must be a positive int"):
        kd.models.build_unet(image_size=(True, 8), widths=(8,))
    with pytest.raises(ValueError, match="`channels` must be a positive int, got 0"):
        kd.models.build_unet(image_size=8, widths=(8,), channels=0)


def test_mixed_precision_unet():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        net = kd.models.build_unet(
            image_size=8, widths=(8, 16), block_depth=1, groups=4
        )
        out = net([np.zeros((1, 8, 8, 3), "float32"), np.zeros((1,), "float32")])
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
        assert all(w.dtype == "float32" for w in net.weights)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
