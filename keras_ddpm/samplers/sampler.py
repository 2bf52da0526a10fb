import keras
import numpy as np
from keras import ops

from keras_ddpm.utils import ConfigEquality

SPACINGS = ("leading", "trailing", "linspace")

_noise_generator = None


def noise_seed_generator():
    """The `SeedGenerator` whose state the sampling loop carries.

    It only serves as the key of a `StatelessScope`: its own value is never read.
    Callers that compile `Sampler.sample` call this once beforehand, so that the
    variable is created eagerly rather than inside a trace.
    """
    global _noise_generator
    if _noise_generator is None:
        _noise_generator = keras.random.SeedGenerator(0, name="sampler_noise")
    return _noise_generator


def spaced_timesteps(num_train_timesteps, steps, spacing):
    """Timesteps to visit, in decreasing order, as diffusers' `timestep_spacing`.

    - `"leading"`: `arange(steps) * (T // steps)`, reversed (DDIM paper);
    - `"trailing"`: `round(arange(T, 0, -T / steps)) - 1` (Lin et al. 2024), so
      the first step is always `T - 1`;
    - `"linspace"`: `round(linspace(0, T - 1, steps))`, reversed.

    Args:
        num_train_timesteps: int, T of the schedule (or of the truncated process).
        steps: int in [1, T].
        spacing: one of `"leading"`, `"trailing"`, `"linspace"`.

    Returns:
        An int64 numpy array of `steps` distinct timesteps, decreasing.

    Raises:
        ValueError: for an unknown `spacing` or `steps` outside [1, T].

    Example:

    ```python
    import keras_ddpm as kd

    kd.samplers.spaced_timesteps(1000, 10, "trailing")  # array([999, 899, ..., 99])
    ```

    References:
        - [Lin et al., 2024. Common Diffusion Noise Schedules and Sample Steps are Flawed](https://arxiv.org/abs/2305.08891)
    """
    if spacing not in SPACINGS:
        raise ValueError(f"`spacing` must be one of {SPACINGS}, got {spacing!r}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"`steps` must be an int, got {steps!r}.")
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(
            f"`steps` must lie in [1, {num_train_timesteps}] (the schedule's timesteps), "
            f"got {steps}."
        )
    if spacing == "leading":
        timesteps = np.arange(steps) * (num_train_timesteps // steps)
    elif spacing == "trailing":
        timesteps = (
            np.round(np.arange(num_train_timesteps, 0, -num_train_timesteps / steps))
            - 1
        )
        timesteps = timesteps[::-1]
    else:
        timesteps = np.round(np.linspace(0, num_train_timesteps - 1, steps))
    return timesteps[::-1].astype(np.int64)


class Sampler(ConfigEquality):
    """Base class of samplers: one step rule over a denoise function.

    A sampler never sees the network. The loop `sample()` asks a
    `denoise_fn(x_t, t) -> (x0_hat, eps_hat)` for its estimate at each visited
    timestep and applies the step rule

        x_prev = a · x_t + b · x0_hat + c · eps_hat + d · z,    z ~ N(0, I),

    whose per-step coefficients `(a, b, c, d)` a subclass returns from
    `coefficients()` given ᾱ at the current and the next visited timestep. DDPM,
    DDIM and any sampler whose update is linear in `(x_t, x0_hat, eps_hat, z)`
    fit this form; the whole loop then compiles to one program.

    Args:
        spacing: `"leading"`, `"trailing"` or `"linspace"`: which timesteps to
            visit when `steps < T` (the meanings of diffusers' `timestep_spacing`).
        clip: bool, clip x0_hat to [-1, 1] at every step (and recompute eps_hat
            from it).
        default_steps: int or None, steps used when `sample()` gets none
            (None: every timestep of the schedule).

    Raises:
        ValueError: for an unknown `spacing` or a `default_steps` that is not a
            positive int or None.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd

    class HalfwaySampler(kd.samplers.Sampler):
        # Jumps straight to the DDIM mean, then adds half the DDPM noise.
        def coefficients(self, alpha_bar, alpha_bar_prev):
            beta = 1 - alpha_bar / alpha_bar_prev
            d = 0.5 * np.sqrt(beta * (1 - alpha_bar_prev) / (1 - alpha_bar))
            return 0.0 * d, np.sqrt(alpha_bar_prev), np.sqrt(1 - alpha_bar_prev - d**2), d
    ```
    """

    def __init__(self, spacing="trailing", clip=True, default_steps=None):
        if spacing not in SPACINGS:
            raise ValueError(f"`spacing` must be one of {SPACINGS}, got {spacing!r}.")
        if default_steps is not None and (
            isinstance(default_steps, bool)
            or not isinstance(default_steps, int)
            or default_steps < 1
        ):
            raise ValueError(
                f"`default_steps` must be a positive int or None, got {default_steps!r}."
            )
        self.spacing = spacing
        self.clip = bool(clip)
        self.default_steps = default_steps

    def coefficients(self, alpha_bar, alpha_bar_prev):
        """Return `(a, b, c, d)` of the step rule, as float64 arrays.

        Args:
            alpha_bar: ᾱ at each visited timestep, float64 array `(steps,)`.
            alpha_bar_prev: ᾱ at the next visited timestep (1.0 after the last).

        Returns:
            Four arrays (or scalars broadcastable to) of shape `(steps,)`.

        Raises:
            NotImplementedError: in the base class; subclasses implement it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement coefficients()."
        )

    def timesteps(self, schedule, steps=None, start=None):
        """The timesteps visited, decreasing, for `steps` steps from `start`.

        Args:
            schedule: a `NoiseSchedule`.
            steps: int or None (`default_steps`, else every timestep).
            start: int or None, the first (noisiest) timestep; None means `T - 1`.
                Reconstruction starts part-way, at the step images were noised to.

        Returns:
            An int64 numpy array of the visited timesteps, decreasing.

        Raises:
            ValueError: if `start` is outside [0, T − 1] or `steps` outside
                [1, start + 1].
        """
        last = schedule.timesteps - 1 if start is None else int(start)
        if not 0 <= last < schedule.timesteps:
            raise ValueError(
                f"`start` must lie in [0, {schedule.timesteps - 1}], got {start}."
            )
        if steps is None:
            # Defaults never ask for more steps than the (possibly truncated) process has.
            steps = min(self.default_steps or last + 1, last + 1)
        return spaced_timesteps(last + 1, steps, self.spacing)

    def tables(self, schedule, steps=None, start=None):
        """Float32 per-step tables for the loop: timesteps, ᾱ terms and `(a, b, c, d)`.

        Args:
            schedule: a `NoiseSchedule`.
            steps: int or None, as in `timesteps()`.
            start: int or None, as in `timesteps()`.

        Returns:
            A dict of float32 arrays of shape `(steps,)`: `"t"` (the timesteps),
            `"signal"` (sqrt(ᾱ_t)), `"noise"` (sqrt(1 − ᾱ_t)) and the step
            coefficients `"a"`, `"b"`, `"c"`, `"d"`.
        """
        timesteps = self.timesteps(schedule, steps, start)
        alpha_bar = schedule.alphas_cumprod[timesteps]
        alpha_bar_prev = np.append(alpha_bar[1:], 1.0)
        coefficients = np.broadcast_arrays(
            *(
                np.asarray(c, np.float64)
                for c in self.coefficients(alpha_bar, alpha_bar_prev)
            ),
            alpha_bar,
        )[:4]
        tables = dict(zip("abcd", coefficients))
        tables["t"] = timesteps
        tables["signal"] = np.sqrt(alpha_bar)
        tables["noise"] = np.sqrt(1.0 - alpha_bar)
        return {k: np.asarray(v, dtype=np.float32) for k, v in tables.items()}

    def sample(
        self,
        denoise_fn,
        initial_noise,
        schedule,
        steps=None,
        seed=0,
        start=None,
        return_trajectory=False,
    ):
        """Run the reverse process from `initial_noise` down to t = 0.

        Backend-agnostic (`keras.ops.fori_loop`); wrap it in `jax.jit` or
        `tf.function` to compile the whole loop into one program.

        Args:
            denoise_fn: callable `(x_t, t) -> (x0_hat, eps_hat)`, `t` a scalar
                float32 tensor holding the timestep.
            initial_noise: tensor `(B, ...)`, x at the first visited timestep.
            schedule: the `NoiseSchedule` the denoiser was trained with.
            steps: int or None, number of steps (see `timesteps()`).
            seed: int, or an int tensor of shape `(2,)` (a seed state), for the
                noise drawn at each step.
            start: int or None, first timestep (see `timesteps()`).
            return_trajectory: bool, also return x after every step.

        Returns:
            The final x0, or `(x0, trajectory)` with `trajectory` of shape
            `(steps + 1, B, ...)`, `trajectory[0]` being `initial_noise`.
        """
        tables = self.tables(schedule, steps, start)
        num_steps = len(tables["t"])
        stochastic = bool(np.any(tables["d"] != 0))
        tables = {k: ops.convert_to_tensor(v) for k, v in tables.items()}
        x = ops.cast(ops.convert_to_tensor(initial_noise), "float32")
        rank = len(x.shape)
        generator = noise_seed_generator()
        if isinstance(seed, (int, np.integer)):
            seed = ops.convert_to_tensor([int(seed), 0], dtype=generator.state.dtype)

        def step(i, x, seed_state):
            take = {k: ops.take(v, i) for k, v in tables.items()}
            x0, eps = denoise_fn(x, take["t"])
            x0 = ops.cast(x0, "float32")
            eps = ops.cast(eps, "float32")
            if self.clip:
                x0 = ops.clip(x0, -1.0, 1.0)
                eps = (x - take["signal"] * x0) / take["noise"]
            x = take["a"] * x + take["b"] * x0 + take["c"] * eps
            if stochastic:
                with keras.StatelessScope(
                    state_mapping=[(generator.state, seed_state)]
                ) as scope:
                    z = keras.random.normal(ops.shape(x), seed=generator)
                seed_state = scope.get_current_value(generator.state)
                x = x + take["d"] * z
            return x, seed_state

        if return_trajectory:
            trajectory = ops.zeros(
                (num_steps + 1,) + tuple(ops.shape(x)), dtype="float32"
            )
            trajectory = ops.slice_update(trajectory, (0,) * (rank + 1), x[None])

            def body(i, carry):
                x, seed_state, trajectory = carry
                x, seed_state = step(i, x, seed_state)
                start_index = (i + 1,) + (0,) * rank
                return x, seed_state, ops.slice_update(trajectory, start_index, x[None])

            x, _, trajectory = ops.fori_loop(0, num_steps, body, (x, seed, trajectory))
            return x, trajectory

        def body(i, carry):
            return step(i, *carry)

        x, _ = ops.fori_loop(0, num_steps, body, (x, seed))
        return x

    def get_config(self):
        return {
            "spacing": self.spacing,
            "clip": self.clip,
            "default_steps": self.default_steps,
        }
