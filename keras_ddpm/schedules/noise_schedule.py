import functools

import keras
import numpy as np

from keras_ddpm.utils import ConfigEquality, check_float, check_int


@keras.saving.register_keras_serializable(package="keras_ddpm")
class NoiseSchedule(ConfigEquality):
    """Base class of noise schedules: a table of betas and nothing else.

    A schedule defines the forward process q(x_t | x_{t-1}) = N(sqrt(1-β_t)·x_{t-1},
    β_t·I) for t = 0 … T-1 (0-based, as the network sees it). Subclasses implement
    exactly one of `compute_betas()` or `compute_alphas_cumprod()`; the other is
    derived. All tables are float64 numpy arrays of length `timesteps`, validated
    once and cached.

    Args:
        timesteps: int, number of diffusion steps T (at least 2). Defaults to 1000.

    Raises:
        ValueError: if `timesteps` is not an int >= 2, or (when a table is first
            read) the subclass returns a table of the wrong length, with
            non-finite values, betas outside (0, 1) or an ᾱ that does not
            strictly decrease.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    class QuadraticSchedule(kd.schedules.NoiseSchedule):
        def compute_betas(self):
            return np.linspace(1e-2, 1.4e-1, self.timesteps) ** 2

    schedule = QuadraticSchedule(timesteps=500)
    schedule.alphas_cumprod[-1]  # ≈ 0.029
    ```
    """

    def __init__(self, timesteps=1000):
        self.timesteps = check_int("timesteps", timesteps, low=2)

    def compute_betas(self):
        """Return the betas β_0 … β_{T-1} as an array of length `timesteps`.

        The default derives them from `compute_alphas_cumprod()`:
        β_t = 1 − ᾱ_t / ᾱ_{t−1} with ᾱ_{−1} = 1. Read the validated, cached
        table as `betas`; this method computes it.

        Returns:
            A float64 numpy array of shape `(timesteps,)`.

        Raises:
            ValueError: if `compute_alphas_cumprod()` returns values outside
                (0, 1] or a table that does not strictly decrease.
        """
        alphas_cumprod = np.asarray(self.compute_alphas_cumprod(), dtype=np.float64)
        self._check_table("compute_alphas_cumprod()", alphas_cumprod)
        if np.any(alphas_cumprod <= 0) or np.any(alphas_cumprod > 1):
            raise ValueError(
                f"{type(self).__name__}: alphas_cumprod must lie in (0, 1], got values "
                f"in [{alphas_cumprod.min():.3g}, {alphas_cumprod.max():.3g}]."
            )
        if np.any(np.diff(alphas_cumprod) >= 0):
            step = int(np.argmax(np.diff(alphas_cumprod) >= 0)) + 1
            raise ValueError(
                f"{type(self).__name__}: alphas_cumprod must be strictly decreasing, "
                f"but it does not decrease at t={step}."
            )
        previous = np.concatenate([[1.0], alphas_cumprod[:-1]])
        return 1.0 - alphas_cumprod / previous

    def compute_alphas_cumprod(self):
        """Return ᾱ_0 … ᾱ_{T-1}; override this or `compute_betas()`.

        Returns:
            An array of shape `(timesteps,)`, strictly decreasing, in (0, 1].

        Raises:
            NotImplementedError: when a subclass overrides neither method.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement compute_betas() or "
            "compute_alphas_cumprod()."
        )

    def _check_table(self, what, table):
        if table.shape != (self.timesteps,):
            raise ValueError(
                f"{type(self).__name__}.{what} must return shape ({self.timesteps},), "
                f"got {table.shape}."
            )
        if not np.all(np.isfinite(table)):
            raise ValueError(
                f"{type(self).__name__}.{what} returned non-finite values."
            )

    @functools.cached_property
    def betas(self):
        """β_t, float64, shape `(timesteps,)`, each in (0, 1)."""
        if type(self).compute_betas is NoiseSchedule.compute_betas:
            betas = self.compute_betas()  # already validated through alphas_cumprod
        else:
            betas = np.asarray(self.compute_betas(), dtype=np.float64)
        self._check_table("compute_betas()", betas)
        if np.any(betas <= 0) or np.any(betas >= 1):
            raise ValueError(
                f"{type(self).__name__}: every beta must lie in (0, 1), got values in "
                f"[{betas.min():.3g}, {betas.max():.3g}]."
            )
        betas = betas.copy()
        betas.flags.writeable = False
        return betas

    @functools.cached_property
    def alphas_cumprod(self):
        """ᾱ_t = ∏_{s≤t} (1 − β_s), float64, shape `(timesteps,)`, strictly decreasing."""
        table = np.cumprod(1.0 - self.betas)
        table.flags.writeable = False
        return table

    @property
    def signal_rates(self):
        """sqrt(ᾱ_t) as float32: the `alpha` of `x_t = alpha·x0 + sigma·eps`."""
        return np.sqrt(self.alphas_cumprod).astype("float32")

    @property
    def noise_rates(self):
        """sqrt(1 − ᾱ_t) as float32: the `sigma` of `x_t = alpha·x0 + sigma·eps`."""
        return np.sqrt(1.0 - self.alphas_cumprod).astype("float32")

    @property
    def snr(self):
        """Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t), float64."""
        return self.alphas_cumprod / (1.0 - self.alphas_cumprod)

    @functools.cached_property
    def sigmas(self):
        """σ_t = sqrt((1 − ᾱ_t) / ᾱ_t), float64, strictly increasing.

        The noise level of the variance-exploding view `x_t / sqrt(ᾱ_t) = x0 + σ_t·eps`
        (Karras et al. 2022), in which Euler, Heun and Karras spacing are written.
        """
        table = np.sqrt((1.0 - self.alphas_cumprod) / self.alphas_cumprod)
        table.flags.writeable = False
        return table

    @property
    def log_sigmas(self):
        """log σ_t as float32: the table `kd.ops.rates_at` interpolates between timesteps."""
        return np.log(self.sigmas).astype("float32")

    def alpha_bar_at(self, t):
        """ᾱ at timesteps that may be fractional, interpolated linearly in log σ.

        Integer timesteps read the table exactly. Between two integers, log σ_t
        is interpolated linearly (the convention of Karras et al. 2022 and of
        diffusers' `_sigma_to_t`): log σ is smooth in t for every schedule here,
        while ᾱ itself spans five decades, so interpolating ᾱ would bend the
        noise level between table entries.

        Args:
            t: float or array of timesteps in [0, T − 1].

        Returns:
            float64 numpy array (or scalar) of ᾱ at `t`.

        Raises:
            ValueError: if a timestep lies outside [0, T − 1] or is not finite.

        Example:

        ```python
        import keras_ddpm as kd

        schedule = kd.schedules.LinearSchedule()
        schedule.alpha_bar_at(10) == schedule.alphas_cumprod[10]  # True
        schedule.alpha_bar_at(10.5)  # between ᾱ_10 and ᾱ_11
        ```
        """
        t = np.asarray(t, dtype=np.float64)
        if (
            not np.all(np.isfinite(t))
            or np.any(t < 0)
            or np.any(t > self.timesteps - 1)
        ):
            raise ValueError(
                f"timesteps must lie in [0, {self.timesteps - 1}], got values in "
                f"[{np.min(t):.4g}, {np.max(t):.4g}]."
            )
        low = np.floor(t).astype(np.int64)
        high = np.minimum(low + 1, self.timesteps - 1)
        frac = t - low
        log_sigma = (1 - frac) * np.log(self.sigmas[low]) + frac * np.log(
            self.sigmas[high]
        )
        interpolated = 1.0 / (1.0 + np.exp(2.0 * log_sigma))
        return np.where(frac > 0, interpolated, self.alphas_cumprod[low])

    def timestep_at(self, sigma):
        """The (fractional) timestep whose σ is `sigma`: the inverse of `alpha_bar_at`.

        Args:
            sigma: float or array of noise levels in [σ_0, σ_{T−1}].

        Returns:
            float64 numpy array (or scalar) of timesteps in [0, T − 1].

        Raises:
            ValueError: if a noise level lies outside the schedule's range.

        Example:

        ```python
        import keras_ddpm as kd

        schedule = kd.schedules.LinearSchedule()
        schedule.timestep_at(schedule.sigmas[250])  # 250.0
        ```
        """
        sigma = np.asarray(sigma, dtype=np.float64)
        low, high = self.sigmas[0], self.sigmas[-1]
        tolerance = 1e-9 * high
        if (
            np.any(~np.isfinite(sigma))
            or np.any(sigma < low * (1 - 1e-9))
            or np.any(sigma > high + tolerance)
        ):
            raise ValueError(
                f"noise levels must lie in [{low:.4g}, {high:.4g}] (the schedule's "
                f"σ range), got values in [{np.min(sigma):.4g}, {np.max(sigma):.4g}]."
            )
        log_sigmas = np.log(self.sigmas)
        return np.interp(
            np.log(np.clip(sigma, low, high)), log_sigmas, np.arange(self.timesteps)
        )

    def get_config(self):
        return {"timesteps": self.timesteps}


def betas_from_alpha_bar(alpha_bar, timesteps, max_beta):
    """Discretise a continuous ᾱ(τ), τ ∈ [0, 1], into clipped betas.

    β_t = min(1 − ᾱ((t+1)/T) / ᾱ(t/T), max_beta) (Nichol & Dhariwal 2021, eq. 17),
    so that ᾱ_t = ᾱ((t+1)/T) / ᾱ(0) wherever no beta was clipped.
    """
    check_open_unit("max_beta", max_beta)
    tau = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    values = np.asarray([alpha_bar(x) for x in tau], dtype=np.float64)
    return np.minimum(1.0 - values[1:] / values[:-1], max_beta)


def check_open_unit(name, value):
    """`value` as a float in (0, 1), the range of a beta and of `max_beta`."""
    return check_float(name, value, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
