import keras
import numpy as np

from keras_ddpm.schedules.noise_schedule import NoiseSchedule, check_open_unit


@keras.saving.register_keras_serializable(package="keras_ddpm")
class LinearSchedule(NoiseSchedule):
    """Betas rising linearly from `beta_start` to `beta_end` (Ho et al. 2020).

    β_t = beta_start + (beta_end − beta_start) · t / (T − 1), t = 0 … T−1.

    Args:
        timesteps: int, number of diffusion steps T. Defaults to 1000.
        beta_start: float, β_0. Defaults to 1e-4.
        beta_end: float, β_{T-1}, at least `beta_start`. Defaults to 0.02.

    Raises:
        ValueError: if `timesteps` is not an int >= 2, a beta is outside (0, 1), or
            `beta_end` < `beta_start`.

    Example:

    ```python
    import keras_ddpm as kd

    schedule = kd.schedules.LinearSchedule(timesteps=1000)
    schedule.betas[[0, -1]]          # array([1.e-04, 2.e-02])
    schedule.alphas_cumprod[-1]      # ≈ 4.04e-05
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
    """

    def __init__(self, timesteps=1000, beta_start=1e-4, beta_end=0.02):
        super().__init__(timesteps)
        self.beta_start = check_open_unit("beta_start", beta_start)
        self.beta_end = check_open_unit("beta_end", beta_end)
        if self.beta_end < self.beta_start:
            raise ValueError(
                f"`beta_end` ({self.beta_end}) must be >= `beta_start` ({self.beta_start})."
            )

    def compute_betas(self):
        return np.linspace(
            self.beta_start, self.beta_end, self.timesteps, dtype=np.float64
        )

    def get_config(self):
        return {
            **super().get_config(),
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
        }
