import keras
from keras import layers

from keras_ddpm.layers import (
    AttentionBlock,
    DownBlock,
    GroupNormalization,
    PixelShuffle,
    PixelUnshuffle,
    ResidualBlock,
    SinusoidalEmbedding,
    UpBlock,
)
from keras_ddpm.layers.conv import Conv2D
from keras_ddpm.layers.residual_block import check_groups
from keras_ddpm.utils import check_choice, check_image_size, check_int


def _check_divisible(size, patch_size, downsampling, levels):
    factor = patch_size * downsampling
    what = f"2**(levels-1) = {downsampling} for {levels} levels"
    if patch_size > 1:
        what = f"patch_size * 2**(levels-1) = {factor} for {levels} levels"
    for name, value in zip(("height", "width"), size):
        if value % factor:
            below = max(factor, value // factor * factor)
            above = (value // factor + 1) * factor
            raise ValueError(
                f"Image {name} {value} is not divisible by {what}; the nearest "
                f"valid sizes are {below} and {above} (or use fewer `widths`)."
            )


def level_depths(block_depth, levels, words=()):
    """`block_depth` as one int >= 1 per level, or one of `words` as it is.

    Raises a one-line `ValueError` for anything else.
    """
    if isinstance(block_depth, str) and block_depth in words:
        return block_depth
    many = isinstance(block_depth, (list, tuple))
    try:
        if not many:
            return (check_int("block_depth", block_depth, low=1),) * levels
        if len(block_depth) == levels:
            return tuple(check_int("block_depth", d, low=1) for d in block_depth)
    except ValueError:
        pass
    accepted = "".join(f"{word!r}, " for word in words)
    raise ValueError(
        f"`block_depth` must be {accepted}an int >= 1 or a sequence of one such "
        f"int per level ({levels} levels), got {block_depth!r}."
    )


def check_shape(
    image_size, widths, block_depth, attention_levels, patch_size, groups=8
):
    """`build_unet`'s checks of its shape arguments, without building anything.

    Returns `((height, width), widths, depths, attention_levels,
    patch_size)`, as tuples of ints (one depth per level); raises the
    one-line `ValueError` that `build_unet` would for a bad one. The
    training recipe calls it before it times a step.
    """
    height, width = check_image_size(image_size)
    widths = tuple(check_groups(w, groups, what="widths", each=True)[0] for w in widths)
    if not widths:
        raise ValueError("`widths` must hold at least one level width.")
    levels = len(widths)
    depths = level_depths(block_depth, levels)
    patch_size = check_int("patch_size", patch_size, low=1)
    _check_divisible((height, width), patch_size, 2 ** (levels - 1), levels)
    attention_levels = tuple(attention_levels)
    for level in attention_levels:
        if not (isinstance(level, int) and 0 <= level < levels):
            raise ValueError(
                f"`attention_levels` must hold level indices in [0, {levels}), got {attention_levels}."
            )
    return (height, width), widths, depths, attention_levels, patch_size


def build_unet(
    image_size,
    channels=3,
    widths=(64, 128, 256, 512),
    block_depth=2,
    attention_levels=(),
    groups=8,
    dropout=0.0,
    embedding_dim=None,
    num_heads=1,
    activation="swish",
    num_classes=None,
    zero_init_residual=False,
    scale_shift=False,
    zero_init_attention=False,
    patch_size=1,
    name="unet",
):
    """Build the DDPM U-Net as a functional `keras.Model`.

    Timesteps go through a `SinusoidalEmbedding` of size `widths[0]` and a
    two-layer MLP; images go through a 3×3 stem, one `DownBlock` per entry of
    `widths` (the last without downsampling), a middle of two `ResidualBlock`s
    (with attention between them when the last level has attention), one
    `UpBlock` per level in reverse with skip concatenation, and
    GroupNorm → activation → a zero-initialised 3×3 convolution, so an untrained
    network predicts exactly 0.

    With `patch_size=p > 1` the network works on `p × p` patches: a
    `PixelUnshuffle` folds each patch of the images into one pixel of
    `p² × channels` channels before the stem, and a `PixelShuffle` unfolds the
    output convolution's `p² × channels` channels back into patches, so level
    0 runs at `1/p` of the image resolution (Hoogeboom et al. 2023 downsample
    this way in simple diffusion). Inputs and outputs keep the image's shape.

    With `num_classes=K` it is class-conditional: a third input takes integer
    labels `(B,)` in [0, K], and an `Embedding` of K + 1 rows (row K is the
    null label, "no class", for classifier-free guidance) is added to the
    time embedding.

    Args:
        image_size: int or `(height, width)`; each must be divisible by
            `patch_size * 2 ** (len(widths) - 1)`.
        channels: int, image channels (input and output). Defaults to 3.
        widths: sequence of ints, channels of each level; each divisible by
            `groups`. Defaults to `(64, 128, 256, 512)`.
        block_depth: int >= 1, residual blocks per level, or a sequence of
            such ints, one per level of `widths` (the middle keeps its two
            blocks either way). Defaults to 2.
        attention_levels: level indices (0 = the first level's resolution,
            the image's over `patch_size`) that get self-attention. Defaults
            to `()`.
        groups: int, GroupNormalization groups. Defaults to 8.
        dropout: float, dropout rate inside residual blocks. Defaults to 0.0.
        embedding_dim: int, size of the time embedding after the MLP. Defaults to
            `4 * widths[0]`.
        num_heads: int, heads of each attention block. Defaults to 1.
        activation: activation name or callable. Defaults to `"swish"`.
        num_classes: int >= 1 or None, the number of classes of a
            class-conditional network. Defaults to None (unconditional).
        zero_init_residual: bool, start the second convolution of every
            residual block at zero, so that each block of a new network
            computes its skip path alone (Dhariwal & Nichol 2021). Defaults
            to False.
        scale_shift: bool, condition every residual block on the embedding
            by adaptive group normalization, a per-channel scale and shift
            of its second normalization (Dhariwal & Nichol 2021), rather than
            by addition. Defaults to False.
        zero_init_attention: bool, start the output projection of every
            attention block at zero, so that each block of a new network is
            the identity (as in Ho et al.'s code). Defaults to False.
        patch_size: int >= 1, the side of the patches level 0 works on.
            Defaults to 1 (level 0 at full resolution).
        name: str, model name. Defaults to `"unet"`.

    Returns:
        A `keras.Model` taking `[images (B, H, W, channels), timesteps (B,)]`
        (and `labels (B,)` with `num_classes`) and returning a tensor shaped
        like `images`.

    Raises:
        ValueError: for a `block_depth` that is not an int >= 1 or a
            sequence of one such int per level, image sizes not divisible by
            `patch_size * 2 ** (len(widths) - 1)` (the message names the
            nearest valid sizes), a `patch_size` that is not an int >= 1,
            widths not divisible by `groups`, attention levels out of
            range, or a `zero_init_residual`, `scale_shift` or
            `zero_init_attention` that is not a bool.

    Example:

    ```python
    import keras_ddpm as kd

    net = kd.models.build_unet(image_size=64, widths=(64, 128, 256, 512), block_depth=2)
    net.count_params()  # 46_892_163
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
        - [Ronneberger et al., 2015. U-Net](https://arxiv.org/abs/1505.04597)
        - [Dhariwal & Nichol, 2021. Diffusion Models Beat GANs on Image Synthesis](https://arxiv.org/abs/2105.05233)
        - [Hoogeboom et al., 2023. simple diffusion: End-to-end diffusion for high resolution images](https://arxiv.org/abs/2301.11093)
    """
    (height, width), widths, depths, attention_levels, patch_size = check_shape(
        image_size, widths, block_depth, attention_levels, patch_size, groups
    )
    levels = len(widths)
    channels = check_int("channels", channels, low=1)
    embedding_dim = embedding_dim or 4 * widths[0]
    common = dict(
        groups=groups,
        dropout=dropout,
        activation=activation,
        zero_init=check_choice("zero_init_residual", zero_init_residual, (False, True)),
        scale_shift=check_choice("scale_shift", scale_shift, (False, True)),
    )

    # The levels also take the attention blocks' settings.
    level_args = dict(
        num_heads=num_heads, zero_init_attention=zero_init_attention, **common
    )

    images = keras.Input((height, width, channels), name="images")
    timesteps = keras.Input((), name="timesteps")
    embedding = SinusoidalEmbedding(widths[0], name="time_embedding")(timesteps)
    embedding = layers.Dense(embedding_dim, activation=activation, name="time_mlp_1")(
        embedding
    )
    embedding = layers.Dense(embedding_dim, name="time_mlp_2")(embedding)
    model_inputs = [images, timesteps]
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, low=1)
        labels = keras.Input((), dtype="int32", name="labels")
        # Row num_classes is the null label of classifier-free guidance.
        classes = layers.Embedding(
            num_classes + 1, embedding_dim, name="class_embedding"
        )(labels)
        embedding = layers.Add(name="time_and_class")([embedding, classes])
        model_inputs.append(labels)

    x = images
    if patch_size > 1:
        x = PixelUnshuffle(patch_size, name="patches")(x)
    x = Conv2D(widths[0], 3, padding="same", name="stem")(x)
    skips = []
    for level, w in enumerate(widths):
        x, level_skips = DownBlock(
            w,
            depths[level],
            attention=level in attention_levels,
            downsample=level < levels - 1,
            name=f"down_{level}",
            **level_args,
        )([x, embedding])
        skips.append(level_skips)

    x = ResidualBlock(widths[-1], name="middle_residual_0", **common)([x, embedding])
    if levels - 1 in attention_levels:
        x = AttentionBlock(
            num_heads, groups, zero_init_attention, name="middle_attention"
        )(x)
    x = ResidualBlock(widths[-1], name="middle_residual_1", **common)([x, embedding])

    for level in reversed(range(levels)):
        x = UpBlock(
            widths[level],
            depths[level],
            attention=level in attention_levels,
            upsample=level < levels - 1,
            name=f"up_{level}",
            **level_args,
        )([x, embedding, skips[level]])

    x = GroupNormalization(groups, epsilon=1e-5, name="out_norm")(x)
    x = layers.Activation(activation, name="out_activation")(x)
    outputs = Conv2D(
        channels * patch_size**2,
        3,
        padding="same",
        kernel_initializer="zeros",
        name="out_conv",
    )(x)
    if patch_size > 1:
        outputs = PixelShuffle(patch_size, name="unpatch")(outputs)
    return keras.Model(model_inputs, outputs, name=name)
