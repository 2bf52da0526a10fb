import math

import keras
from keras import ops

from keras_ddpm.utils import check_float, check_int


@keras.saving.register_keras_serializable(package="keras_ddpm")
class SinusoidalEmbedding(keras.layers.Layer):
    """Sinusoidal embedding of diffusion timesteps (Vaswani et al. 2017; Ho et al. 2020).

    For `half = dim // 2` frequencies ω_i = max_period^(−i/half), i = 0 … half−1,
    a timestep t maps to `[sin(t·ω_0), …, sin(t·ω_{half−1}), cos(t·ω_0), …]`.
    The phases are computed in float32 whatever the dtype policy (timesteps up to
    10⁴ need the precision), and the result is cast to the compute dtype.

    Args:
        dim: int, even, size of the embedding.
        max_period: float, the longest period (the lowest frequency). Defaults to 10000.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: timesteps of shape `(B,)` (or any shape `S`), int or float.

    Returns:
        A tensor of shape `(B, dim)` (or `S + (dim,)`).

    Raises:
        ValueError: if `dim` is not an even int >= 2 or `max_period` is not > 1.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    embedding = kd.layers.SinusoidalEmbedding(dim=32)
    embedding(np.array([0, 10, 999])).shape  # (3, 32)
    ```

    References:
        - [Vaswani et al., 2017. Attention Is All You Need](https://arxiv.org/abs/1706.03762)
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
    """

    def __init__(self, dim, max_period=10000, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_int("dim", dim, low=2)
        if self.dim % 2:
            raise ValueError(f"`dim` must be an even int >= 2, got {dim!r}.")
        self.max_period = check_float(
            "max_period", max_period, low=1, low_inclusive=False
        )
        self.built = True

    def call(self, inputs):
        half = self.dim // 2
        exponents = ops.arange(half, dtype="float32") / half
        frequencies = ops.exp(-math.log(self.max_period) * exponents)
        phases = ops.expand_dims(ops.cast(inputs, "float32"), -1) * frequencies
        embedding = ops.concatenate([ops.sin(phases), ops.cos(phases)], axis=-1)
        return ops.cast(embedding, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}
