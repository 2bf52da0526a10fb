import keras
import numpy as np
from keras import ops

from keras_ddpm.samplers.sampler import Sampler, float32_tables


def _edm_rates(alpha_bar):
    """`(alpha, sigma_ve)`: sqrt(ᾱ) and the variance-exploding σ = sqrt((1 − ᾱ)/ᾱ)."""
    alpha_bar = np.asarray(alpha_bar, dtype=np.float64)
    return np.sqrt(alpha_bar), np.sqrt((1.0 - alpha_bar) / alpha_bar)


@keras.saving.register_keras_serializable(package="keras_ddpm")
class EulerSampler(Sampler):
    """Euler steps of the probability-flow ODE in σ (Karras et al. 2022, Algorithm 1).

    In the variance-exploding view x̃ = x_t/sqrt(ᾱ_t) = x0 + σ·eps, the ODE is
    dx̃/dσ = (x̃ − D(x̃, σ))/σ = eps_hat, and one Euler step from σ to σ_next is
    x̃_next = x̃ + (σ_next − σ)·eps_hat; back in the model's scaling,

        x_next = (α_next/α)·x + α_next·(σ_next − σ)·eps_hat,    α = sqrt(ᾱ).

    This is algebraically DDIM with η = 0 (Karras et al. make the same
    observation); the sampler differs by its default: Karras spacing of the
    noise levels (ρ = 7), which spends the steps where images gain detail. One
    network evaluation per step; deterministic.

    Args:
        clip: bool, clip x0_hat to [-1, 1] at each step. Defaults to True.
        spacing: `"karras"`, `"trailing"`, `"leading"` or `"linspace"` (see
            `Sampler`). Defaults to `"karras"`.
        default_steps: int or None, steps when `sample()` gets none. Defaults to 20.
        rho: float > 0, the ρ of `"karras"` spacing. Defaults to 7.0.
        sigma_max: float or None, the cap on `"karras"` spacing's largest σ
            (see `Sampler`). Defaults to 80.0.

    Raises:
        ValueError: for a bad `spacing`, `default_steps` or `rho`.

    Example:

    ```python
    import keras_ddpm as kd

    sampler = kd.samplers.EulerSampler()
    sampler.timesteps(kd.schedules.LinearSchedule(), steps=5)  # 999.0 down to 0.0
    ```

    References:
        - [Karras et al., 2022. Elucidating the Design Space of Diffusion-Based Generative Models](https://arxiv.org/abs/2206.00364)
    """

    def __init__(
        self, clip=True, spacing="karras", default_steps=20, rho=7.0, sigma_max=80.0
    ):
        super().__init__(
            spacing=spacing,
            clip=clip,
            default_steps=default_steps,
            rho=rho,
            sigma_max=sigma_max,
        )

    def coefficients(self, alpha_bar, alpha_bar_prev):
        alpha, sigma = _edm_rates(alpha_bar)
        alpha_next, sigma_next = _edm_rates(alpha_bar_prev)
        zeros = np.zeros_like(alpha)
        return alpha_next / alpha, zeros, alpha_next * (sigma_next - sigma), zeros


@keras.saving.register_keras_serializable(package="keras_ddpm")
class HeunSampler(Sampler):
    """Heun's second-order steps of the probability-flow ODE (Karras et al. 2022, Algorithm 1).

    Each step takes the Euler proposal of `EulerSampler` to σ_next, evaluates
    the denoiser there, and replaces the slope by the mean of the two slopes:
    x̃_next = x̃ + (σ_next − σ)·(eps_hat + eps_hat')/2 in the variance-exploding
    view x̃ = x_t/sqrt(ᾱ_t). The last step, to σ = 0, is a plain Euler step
    (the slope at σ = 0 is undefined), so N steps cost 2N − 1 network
    evaluations. The second evaluation sits in a `keras.ops.cond` on a per-step
    flag, so the loop stays one compiled program and the last step skips it.

    Args:
        clip: bool, clip x0_hat to [-1, 1] at each evaluation. Defaults to True.
        spacing: `"karras"`, `"trailing"`, `"leading"` or `"linspace"` (see
            `Sampler`). Defaults to `"karras"`.
        default_steps: int or None, steps when `sample()` gets none. Defaults to
            10 (19 network evaluations).
        rho: float > 0, the ρ of `"karras"` spacing. Defaults to 7.0.
        sigma_max: float or None, the cap on `"karras"` spacing's largest σ
            (see `Sampler`). Defaults to 80.0.

    Raises:
        ValueError: for a bad `spacing`, `default_steps` or `rho`.

    Example:

    ```python
    import keras_ddpm as kd

    sampler = kd.samplers.HeunSampler()
    sampler.network_evaluations(10)  # 19
    ```

    References:
        - [Karras et al., 2022. Elucidating the Design Space of Diffusion-Based Generative Models](https://arxiv.org/abs/2206.00364)
    """

    def __init__(
        self, clip=True, spacing="karras", default_steps=10, rho=7.0, sigma_max=80.0
    ):
        super().__init__(
            spacing=spacing,
            clip=clip,
            default_steps=default_steps,
            rho=rho,
            sigma_max=sigma_max,
        )

    def network_evaluations(self, steps):
        """Network evaluations of a run of `steps` steps.

        Args:
            steps: int >= 1.

        Returns:
            `2·steps − 1`: two per step, one on the last.
        """
        return 2 * int(steps) - 1

    def tables(self, schedule, steps=None, start=None):
        """Float32 per-step tables for the Heun loop.

        Args:
            schedule: a `NoiseSchedule`.
            steps: int or None, as in `timesteps()`.
            start: int or None, as in `timesteps()`.

        Returns:
            A dict of float32 arrays `(steps,)`: `"t"`, `"signal"`, `"noise"`
            at this step; `"t_next"`, `"signal_next"`, `"noise_next"` at the
            next one (this step's values on the last step, where they are not
            used); the Euler coefficients `"a"` (on x) and `"c"` (on eps_hat);
            and `"second"`, 1 where the second evaluation is made.
        """
        timesteps, alpha_bar = self.visited(schedule, steps, start)
        timesteps = np.asarray(timesteps, np.float64)
        alpha_bar_next = np.append(alpha_bar[1:], 1.0)
        alpha, sigma = _edm_rates(alpha_bar)
        alpha_next, sigma_next = _edm_rates(alpha_bar_next)
        # On the last step the "next" point is σ = 0, where no evaluation is made:
        # its entries repeat this step's, a valid timestep for the untaken branch.
        t_next = np.append(timesteps[1:], timesteps[-1])
        ab_next_eval = np.append(alpha_bar[1:], alpha_bar[-1])
        second = np.ones_like(timesteps)
        second[-1] = 0.0
        tables = {
            "t": timesteps,
            "signal": alpha,
            "noise": np.sqrt(1.0 - alpha_bar),
            "t_next": t_next,
            "signal_next": np.sqrt(ab_next_eval),
            "noise_next": np.sqrt(1.0 - ab_next_eval),
            "a": alpha_next / alpha,
            "c": alpha_next * (sigma_next - sigma),
            "second": second,
        }
        return float32_tables(tables)

    def step(self, denoise, x, state, row, noise):
        """An Euler proposal, corrected by a second evaluation except on the last step.

        Args:
            denoise: callable `(x_t, t) -> (x0_hat, eps_hat)`.
            x: the current images, float32.
            state: `()`; Heun carries nothing.
            row: dict of scalar tensors, this step's entries of `tables()`.
            noise: unused (the solver is deterministic).

        Returns:
            `(x_next, state)`.
        """
        _, eps = self.predict(denoise, x, row["t"], row["signal"], row["noise"])
        proposal = row["a"] * x + row["c"] * eps

        def corrected():
            _, eps_next = self.predict(
                denoise,
                proposal,
                row["t_next"],
                row["signal_next"],
                row["noise_next"],
            )
            return row["a"] * x + row["c"] * 0.5 * (eps + eps_next)

        return ops.cond(row["second"] > 0, corrected, lambda: proposal), state
