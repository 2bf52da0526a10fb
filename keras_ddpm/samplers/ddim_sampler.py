import keras
import numpy as np

from keras_ddpm.samplers.sampler import Sampler
from keras_ddpm.utils import check_float


@keras.saving.register_keras_serializable(package="keras_ddpm")
class DDIMSampler(Sampler):
    """Denoising diffusion implicit models (Song et al. 2021), eq. 12.

    `x_prev = sqrt(ᾱ_prev)·x0_hat + sqrt(1 − ᾱ_prev − σ²)·eps_hat + σ·z` with
    `σ = η·sqrt((1 − ᾱ_prev)/(1 − ᾱ_t))·sqrt(1 − ᾱ_t/ᾱ_prev)` (eq. 16). η = 0 is
    deterministic: the same initial noise always gives the same image; η = 1
    matches the DDPM posterior variance. After the last visited timestep
    ᾱ_prev = 1, so the final step returns x0_hat.

    Args:
        eta: float >= 0, the η above. Defaults to 0.0.
        clip: bool, clip x0_hat to [-1, 1] at each step. Defaults to True.
        spacing: `"trailing"`, `"leading"`, `"linspace"` or `"karras"`: the
            timesteps visited (see `Sampler`). Defaults to `"trailing"`.
        default_steps: int or None, steps when `sample()` gets none. Defaults to 50.
        rho: float > 0, the ρ of `"karras"` spacing. Defaults to 7.0.
        sigma_max: float or None, the cap on `"karras"` spacing's largest σ
            (see `Sampler`). Defaults to 80.0.

    Raises:
        ValueError: if `eta` is not a finite number >= 0, or for a bad `spacing`
            or `default_steps`.

    Example:

    ```python
    import keras_ddpm as kd

    sampler = kd.samplers.DDIMSampler(eta=0.0, spacing="leading")
    sampler.timesteps(kd.schedules.LinearSchedule(), steps=10)[:3]  # array([900, 800, 700])
    ```

    References:
        - [Song, Meng & Ermon, 2021. Denoising Diffusion Implicit Models](https://arxiv.org/abs/2010.02502)
    """

    def __init__(
        self,
        eta=0.0,
        clip=True,
        spacing="trailing",
        default_steps=50,
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
        self.eta = check_float("eta", eta, low=0.0)

    def coefficients(self, alpha_bar, alpha_bar_prev):
        sigma = (
            self.eta
            * np.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar))
            * np.sqrt(1.0 - alpha_bar / alpha_bar_prev)
        )
        direction = np.sqrt(np.maximum(1.0 - alpha_bar_prev - sigma**2, 0.0))
        return np.zeros_like(alpha_bar), np.sqrt(alpha_bar_prev), direction, sigma

    def get_config(self):
        return {**super().get_config(), "eta": self.eta}
