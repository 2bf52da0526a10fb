import math

import keras

from keras_ddpm.schedules.noise_schedule import (
    NoiseSchedule,
    betas_from_alpha_bar,
    check_open_unit,
)
from keras_ddpm.utils import check_float


@keras.saving.register_keras_serializable(package="keras_ddpm")
class CosineSchedule(NoiseSchedule):
    """The cosine schedule of Nichol & Dhariwal (2021).

    With f(τ) = cos²(((τ + s) / (1 + s)) · π/2), ᾱ_t = f((t+1)/T) / f(0) and
    β_t = min(1 − ᾱ_t / ᾱ_{t−1}, max_beta): the clipping only bites in the last
    steps, where f approaches 0.

    Args:
        timesteps: int, number of diffusion steps T. Defaults to 1000.
        s: float, small offset that keeps β_0 from vanishing. Defaults to 0.008.
        max_beta: float in (0, 1), the clip on each beta. Defaults to 0.999.

    Raises:
        ValueError: if `timesteps` is not an int >= 2, `s` < 0, or `max_beta` is
            outside (0, 1).

    Example:

    ```python
    import keras_ddpm as kd

    schedule = kd.schedules.CosineSchedule(timesteps=1000)
    schedule.alphas_cumprod[499]   # ≈ 0.494, about half the signal at mid-way
    ```

    References:
        - [Nichol & Dhariwal, 2021. Improved Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2102.09672)
    """

    def __init__(self, timesteps=1000, s=0.008, max_beta=0.999):
        super().__init__(timesteps)
        self.s = check_float("s", s, low=0.0)
        self.max_beta = check_open_unit("max_beta", max_beta)

    def alpha_bar(self, tau):
        """The continuous f(τ) for τ in [0, 1] (not normalised by f(0)).

        Args:
            tau: float in [0, 1], the diffusion time t / T.

        Returns:
            f(τ) as a float.
        """
        return math.cos((tau + self.s) / (1.0 + self.s) * math.pi / 2) ** 2

    def compute_betas(self):
        return betas_from_alpha_bar(self.alpha_bar, self.timesteps, self.max_beta)

    def get_config(self):
        return {**super().get_config(), "s": self.s, "max_beta": self.max_beta}
