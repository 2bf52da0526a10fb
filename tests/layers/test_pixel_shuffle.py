import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from tests.helpers import run_layer_test


def unshuffle_by_index(images, p):
    """out[b, y, x, (i·p + j)·C + c] = in[b, y·p + i, x·p + j, c], pixel by pixel."""
    batch, height, width, channels = images.shape
    out = np.zeros((batch, height // p, width // p, p * p * channels), images.dtype)
    for y in range(height // p):
        for x in range(width // p):
            for i in range(p):
                for j in range(p):
                    for c in range(channels):
                        out[:, y, x, (i * p + j) * channels + c] = images[
                            :, y * p + i, x * p + j, c
                        ]
    return out


@pytest.mark.parametrize(
    "p, shape", [(2, (2, 4, 6, 3)), (3, (1, 6, 3, 2)), (1, (1, 2, 2, 1))]
)
def test_unshuffle_matches_the_index_formula_and_shuffle_inverts_it(p, shape):
    images = np.random.default_rng(0).standard_normal(shape).astype("float32")
    expected = unshuffle_by_index(images, p)
    (patches,) = run_layer_test(
        kd.layers.PixelUnshuffle, {"patch_size": p}, images, expected.shape
    )
    np.testing.assert_array_equal(patches, expected)
    (back,) = run_layer_test(
        kd.layers.PixelShuffle, {"patch_size": p}, expected, images.shape
    )
    np.testing.assert_array_equal(back, images)


def test_unshuffle_agrees_with_torch_up_to_its_channel_order():
    torch = pytest.importorskip("torch")
    images = np.random.default_rng(1).standard_normal((2, 4, 8, 3)).astype("float32")
    # torch is channels-first and orders the unshuffled channels (c, i, j).
    reference = (
        torch.nn.functional.pixel_unshuffle(
            torch.from_numpy(images).permute(0, 3, 1, 2), 2
        )
        .permute(0, 2, 3, 1)
        .numpy()
    )
    reference = reference.reshape(2, 2, 4, 3, 2, 2).transpose(0, 1, 2, 4, 5, 3)
    ours = ops.convert_to_numpy(kd.layers.PixelUnshuffle(2)(images))
    np.testing.assert_array_equal(ours, reference.reshape(2, 2, 4, 12))


@pytest.mark.parametrize("layer", [kd.layers.PixelUnshuffle, kd.layers.PixelShuffle])
@pytest.mark.parametrize("patch_size", [0, 2.0, True, "2"])
def test_bad_patch_size_is_a_one_line_error(layer, patch_size):
    with pytest.raises(ValueError, match="`patch_size` must be a positive int"):
        layer(patch_size)


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(
        ValueError, match="Image width 5 is not divisible by `patch_size` = 2"
    ):
        kd.layers.PixelUnshuffle(2)(np.zeros((1, 4, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"expects images shaped \(batch, height"):
        kd.layers.PixelUnshuffle(2)(np.zeros((4, 4, 3), "float32"))
    with pytest.raises(
        ValueError, match="channels divisible by `patch_size`\\*\\*2 = 4, got 6"
    ):
        kd.layers.PixelShuffle(2)(np.zeros((1, 2, 2, 6), "float32"))
