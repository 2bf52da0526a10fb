import keras
import numpy as np

from keras_ddpm.ops import POSTERIOR_VARIANCES, q_posterior
from keras_ddpm.samplers.sampler import Sampler
from keras_ddpm.utils import check_choice


@keras.saving.register_keras_serializable(package="keras_ddpm")
class DDPMSampler(Sampler):
    """Ancestral sampling of Ho et al. (2020), Algorithm 2.

    Each step draws from the posterior q(x_prev | x_t, x0 = x0_hat) (eq. 6–7):
    mean `b·x0_hat + a·x_t` with `b = sqrt(ᾱ_prev)·β / (1 − ᾱ_t)` and
    `a = sqrt(1 − β)·(1 − ᾱ_prev) / (1 − ᾱ_t)`, variance β̃ = β·(1 − ᾱ_prev)/(1 − ᾱ_t)
    (`"fixed_small"`) or β (`"fixed_large"`), and no noise at the last step. With
    fewer steps than T the visited timesteps form a respaced process with
    β = 1 − ᾱ_t/ᾱ_prev (Nichol & Dhariwal 2021, sec. 4), which keeps every
    marginal of the forward process, so the sampler stays correct at any step count.

    Args:
        variance: `"fixed_small"` (β̃, the posterior variance) or `"fixed_large"` (β).
            Defaults to `"fixed_small"`.
        clip: bool, clip x0_hat to [-1, 1] at each step. Defaults to True.
        spacing: `"trailing"`, `"leading"`, `"linspace"` or `"karras"`: the
            timesteps visited (see `Sampler`). Defaults to `"trailing"`.
        default_steps: int or None; None visits every timestep. Defaults to None.
        rho: float > 0, the ρ of `"karras"` spacing. Defaults to 7.0.
        sigma_max: float or None, the cap on `"karras"` spacing's largest σ
            (see `Sampler`). Defaults to 80.0.

    Raises:
        ValueError: for an unknown `variance`, or a bad `spacing` or `default_steps`.

    Example:

    ```python
    import keras_ddpm as kd

    sampler = kd.samplers.DDPMSampler(variance="fixed_large")
    sampler.timesteps(kd.schedules.LinearSchedule(), steps=4)  # array([999, 749, 499, 249])
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
        - [Nichol & Dhariwal, 2021. Improved Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2102.09672)
    """

    def __init__(
        self,
        variance="fixed_small",
        clip=True,
        spacing="trailing",
        default_steps=None,
        rho=7.0,
        sigma_max=80.0,
    ):
        super().__init__(
            spacing=spacing,
            clip=clip,
            default_steps=default_steps,
            rho=rho,
            sigma_max=sigma_max,
        )
        self.variance = check_choice("variance", variance, POSTERIOR_VARIANCES)

    def coefficients(self, alpha_bar, alpha_bar_prev):
        # Ho et al. eq. 7 on the (possibly respaced) process: the posterior mean
        # b·x0_hat + a·x_t, and its standard deviation as the noise scale.
        q = q_posterior(alpha_bar, alpha_bar_prev, self.variance)
        variance = q["variance"]
        variance[-1] = 0.0  # Algorithm 2 returns the mean at the last step.
        return q["coef_xt"], q["coef_x0"], np.zeros_like(alpha_bar), np.sqrt(variance)

    def get_config(self):
        return {**super().get_config(), "variance": self.variance}
