import math

import keras

from keras_ddpm.schedules.noise_schedule import (
    NoiseSchedule,
    betas_from_alpha_bar,
    check_open_unit,
)
from keras_ddpm.utils import check_float


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@keras.saving.register_keras_serializable(package="keras_ddpm")
class SigmoidSchedule(NoiseSchedule):
    """The sigmoid schedule of Jabri et al. (2022) and Chen (2023).

    γ(τ) = (v_end − sigmoid((τ·(end − start) + start) / tau)) / (v_end − v_start),
    with v_start = sigmoid(start / tau) and v_end = sigmoid(end / tau), so that
    γ(0) = 1 and γ(1) = 0. Then ᾱ_t = γ((t+1)/T) and β_t = min(1 − ᾱ_t/ᾱ_{t−1},
    max_beta) (the clip only acts at the very end, where γ reaches 0).

    Args:
        timesteps: int, number of diffusion steps T. Defaults to 1000.
        start: float, left end of the sigmoid's input range. Defaults to -3.
        end: float, right end of the sigmoid's input range, > start. Defaults to 3.
        tau: float > 0, temperature; larger values flatten the schedule. Defaults to 1.
        max_beta: float in (0, 1), the clip on each beta. Defaults to 0.999.

    Raises:
        ValueError: if `timesteps` is not an int >= 2, `end` <= `start`, `tau` <= 0,
            or `max_beta` is outside (0, 1).

    Example:

    ```python
    import keras_ddpm as kd

    schedule = kd.schedules.SigmoidSchedule(timesteps=1000, start=-3, end=3, tau=1.0)
    schedule.alphas_cumprod[499]   # 0.5 by symmetry of the sigmoid
    ```

    References:
        - [Jabri et al., 2022. Scalable Adaptive Computation for Iterative Generation](https://arxiv.org/abs/2212.11972)
        - [Chen, 2023. On the Importance of Noise Scheduling for Diffusion Models](https://arxiv.org/abs/2301.10972)
    """

    def __init__(self, timesteps=1000, start=-3.0, end=3.0, tau=1.0, max_beta=0.999):
        super().__init__(timesteps)
        self.start = check_float("start", start)
        self.end = check_float("end", end)
        if self.end <= self.start:
            raise ValueError(f"`end` ({self.end}) must be > `start` ({self.start}).")
        self.tau = check_float("tau", tau, low=0.0, low_inclusive=False)
        self.max_beta = check_open_unit("max_beta", max_beta)

    def alpha_bar(self, tau):
        """The continuous γ(τ) for τ in [0, 1]; γ(0) = 1, γ(1) = 0.

        Args:
            tau: float in [0, 1], the diffusion time t / T.

        Returns:
            γ(τ) as a float.
        """
        v_start = _sigmoid(self.start / self.tau)
        v_end = _sigmoid(self.end / self.tau)
        value = _sigmoid((tau * (self.end - self.start) + self.start) / self.tau)
        return (v_end - value) / (v_end - v_start)

    def compute_betas(self):
        return betas_from_alpha_bar(self.alpha_bar, self.timesteps, self.max_beta)

    def get_config(self):
        return {
            **super().get_config(),
            "start": self.start,
            "end": self.end,
            "tau": self.tau,
            "max_beta": self.max_beta,
        }
