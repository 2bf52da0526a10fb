import keras
from keras import layers

from keras_ddpm.layers import (
    AttentionBlock,
    DownBlock,
    GroupNormalization,
    ResidualBlock,
    SinusoidalEmbedding,
    UpBlock,
)
from keras_ddpm.layers.conv import Conv2D
from keras_ddpm.layers.residual_block import check_groups
from keras_ddpm.utils import check_choice, check_image_size, check_int


def _check_divisible(size, factor, levels):
    for name, value in zip(("height", "width"), size):
        if value % factor:
            below = max(factor, value // factor * factor)
            above = (value // factor + 1) * factor
            raise ValueError(
                f"Image {name} {value} is not divisible by 2**(levels-1) = {factor} "
                f"for {levels} levels; the nearest valid sizes are {below} and {above} "
                "(or use fewer `widths`)."
            )


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

    With `num_classes=K` it is class-conditional: a third input takes integer
    labels `(B,)` in [0, K], and an `Embedding` of K + 1 rows (row K is the
    null label, "no class", for classifier-free guidance) is added to the
    time embedding.

    Args:
        image_size: int or `(height, width)`; each must be divisible by
            `2 ** (len(widths) - 1)`.
        channels: int, image channels (input and output). Defaults to 3.
        widths: sequence of ints, channels of each level; each divisible by
            `groups`. Defaults to `(64, 128, 256, 512)`.
        block_depth: int, residual blocks per level. Defaults to 2.
        attention_levels: level indices (0 = full resolution) that get
            self-attention. Defaults to `()`.
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
        name: str, model name. Defaults to `"unet"`.

    Returns:
        A `keras.Model` taking `[images (B, H, W, channels), timesteps (B,)]`
        (and `labels (B,)` with `num_classes`) and returning a tensor shaped
        like `images`.

    Raises:
        ValueError: for image sizes not divisible by `2 ** (len(widths) - 1)`
            (the message names the nearest valid sizes), widths not divisible by
            `groups`, attention levels out of range, or a
            `zero_init_residual` or `scale_shift` that is not a bool.

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
    """
    height, width = check_image_size(image_size)
    widths = tuple(check_groups(w, groups, what="each width")[0] for w in widths)
    if not widths:
        raise ValueError("`widths` must hold at least one level width.")
    levels = len(widths)
    _check_divisible((height, width), 2 ** (levels - 1), levels)
    attention_levels = tuple(attention_levels)
    for level in attention_levels:
        if not (isinstance(level, int) and 0 <= level < levels):
            raise ValueError(
                f"`attention_levels` must hold level indices in [0, {levels}), got {attention_levels}."
            )
    channels = check_int("channels", channels, low=1)
    embedding_dim = embedding_dim or 4 * widths[0]
    common = dict(
        groups=groups,
        dropout=dropout,
        activation=activation,
        zero_init=check_choice("zero_init_residual", zero_init_residual, (False, True)),
        scale_shift=check_choice("scale_shift", scale_shift, (False, True)),
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

    x = Conv2D(widths[0], 3, padding="same", name="stem")(images)
    skips = []
    for level, w in enumerate(widths):
        x, level_skips = DownBlock(
            w,
            block_depth,
            attention=level in attention_levels,
            downsample=level < levels - 1,
            num_heads=num_heads,
            name=f"down_{level}",
            **common,
        )([x, embedding])
        skips.append(level_skips)

    x = ResidualBlock(widths[-1], name="middle_residual_0", **common)([x, embedding])
    if levels - 1 in attention_levels:
        x = AttentionBlock(num_heads, groups, name="middle_attention")(x)
    x = ResidualBlock(widths[-1], name="middle_residual_1", **common)([x, embedding])

    for level in reversed(range(levels)):
        x = UpBlock(
            widths[level],
            block_depth,
            attention=level in attention_levels,
            upsample=level < levels - 1,
            num_heads=num_heads,
            name=f"up_{level}",
            **common,
        )([x, embedding, skips[level]])

    x = GroupNormalization(groups, epsilon=1e-5, name="out_norm")(x)
    x = layers.Activation(activation, name="out_activation")(x)
    outputs = Conv2D(
        channels, 3, padding="same", kernel_initializer="zeros", name="out_conv"
    )(x)
    return keras.Model(model_inputs, outputs, name=name)
