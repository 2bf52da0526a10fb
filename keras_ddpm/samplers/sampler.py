import keras
import numpy as np
from keras import ops

from keras_ddpm.utils import ConfigEquality, check_choice, check_float, check_int

SPACINGS = ("leading", "trailing", "linspace", "karras")

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


def normal(shape, seed_generator):
    """`keras.random.normal(shape, seed=seed_generator)`, faster under TensorFlow's XLA.

    The same numbers as Keras draws, on every backend and in every mode. On
    TensorFlow, `tf.random.stateless_normal` asks for the Philox generator by
    name: its default, "auto_select", resolves to the same Philox numbers,
    but compiled with XLA for the CPU it takes a path about 13× slower (4.6
    against 0.36 ms for the (8, 32, 32, 3) noise of the training recipe's
    step on two CPU cores, an eighth of the whole step). Other backends call
    Keras.

    Args:
        shape: the shape of the draw.
        seed_generator: a `keras.random.SeedGenerator`, advanced by one draw
            (inside a `keras.StatelessScope`, its mapped state is).

    Returns:
        A tensor of standard normal draws in Keras' floatx (float32 unless
        set otherwise).
    """
    if keras.backend.backend() != "tensorflow":
        return keras.random.normal(shape, seed=seed_generator)
    import tensorflow as tf

    seed = seed_generator.next()
    if seed.dtype != tf.int32:
        # What Keras does to its int64 seed states: stateless ops on XLA take int32.
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    dtype = keras.config.floatx()
    return tf.random.stateless_normal(shape, seed=seed, dtype=dtype, alg="philox")


# Every chunk of a sampling call owns a block of this many noise draws: the loop
# advances a seed state by one per draw, so chunks whose states start this far
# apart never meet, however the backend turns the state into a generator seed.
DRAWS_PER_CHUNK = 2**20
_CHUNKS_PER_SEED = 2**32 // DRAWS_PER_CHUNK


def noise_seed_state(seed, chunk=0):
    """The seed state `(2,)` from which chunk `chunk` of a sampling call draws its noise.

    A sampling loop draws its per-step noise from a seed state that Keras
    advances by `[0, 1]` per draw. Two streams must never share a state, nor a
    state's sum (PyTorch's backend seeds one generator with the sum of the two
    elements, modulo 2³²). So the state starts at `[h(seed) + c·2²⁰, 0]` for
    chunks c < 4096, with `h` a hash of the seed (SeedSequence): within one
    call, chunks stay at least 2²⁰ draws apart on every backend; nearby seeds
    land on unrelated states instead of shifted copies of each other. From
    chunk 4096 on, the second element carries the overflow `(c // 4096)·2²⁰`,
    which keeps JAX and TensorFlow streams apart (PyTorch's 32-bit seeds then
    repeat, after 2³² draws).

    Args:
        seed: int >= 0, the call's seed.
        chunk: int >= 0, the chunk's index within the call. Defaults to 0.

    Returns:
        A numpy array of two values in the dtype of the backend's seed states
        (uint32 on JAX, int64 on TensorFlow, int32 on PyTorch), to pass as
        `seed=` to `Sampler.sample`.

    Raises:
        ValueError: if `seed` or `chunk` is not an int >= 0.

    Example:

    ```python
    import keras_ddpm as kd

    first = kd.samplers.noise_seed_state(7, chunk=0)
    second = kd.samplers.noise_seed_state(7, chunk=1)  # 2**20 draws further on
    ```
    """
    seed, chunk = check_int("seed", seed, low=0), check_int("chunk", chunk, low=0)
    base = int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])
    low, high = divmod(chunk, _CHUNKS_PER_SEED)[::-1]
    state = np.array(
        [(base + low * DRAWS_PER_CHUNK) % 2**32, (high * DRAWS_PER_CHUNK) % 2**32],
        dtype=np.uint64,
    )
    dtype = keras.backend.standardize_dtype(noise_seed_generator().state.dtype)
    if dtype == "int32":  # the same bits, read as signed
        return state.astype(np.uint32).view(np.int32)
    return state.astype(dtype)


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
    check_choice("spacing", spacing, SPACINGS)
    steps = check_int("steps", steps)
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


def karras_sigmas(sigma_min, sigma_max, steps, rho=7.0):
    """Noise levels of Karras et al. (2022), eq. 5, decreasing from `sigma_max`.

    `σ_i = (σ_max^(1/ρ) + i/(N−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ` for i = 0 … N−1:
    dense near σ_min, where the image's detail is decided. ρ = 7 is the paper's
    choice; ρ = 1 spaces σ uniformly.

    Args:
        sigma_min: float > 0, the last (smallest) noise level.
        sigma_max: float >= sigma_min, the first noise level.
        steps: int >= 1, N. With one step only `sigma_max` is returned.
        rho: float > 0. Defaults to 7.0.

    Returns:
        A float64 numpy array of `steps` noise levels, decreasing.

    Raises:
        ValueError: for non-positive or misordered noise levels, `steps` < 1 or
            `rho` <= 0.

    Example:

    ```python
    import keras_ddpm as kd

    kd.samplers.karras_sigmas(0.002, 80.0, 5)  # array([80., 24.3, 5.85, ..., 0.002])
    ```

    References:
        - [Karras et al., 2022. Elucidating the Design Space of Diffusion-Based Generative Models](https://arxiv.org/abs/2206.00364)
    """
    sigma_min = check_float("sigma_min", sigma_min, low=0.0, low_inclusive=False)
    sigma_max = check_float("sigma_max", sigma_max, low=sigma_min)
    steps = check_int("steps", steps, low=1)
    rho = check_float("rho", rho, low=0.0, low_inclusive=False)
    if steps == 1:
        return np.array([sigma_max])
    ramp = np.linspace(0.0, 1.0, steps)
    high, low = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return (high + ramp * (low - high)) ** rho


def float32_tables(tables):
    """A sampler's per-step tables as float32 numpy arrays, the loop's input."""
    return {k: np.asarray(v, dtype=np.float32) for k, v in tables.items()}


class Sampler(ConfigEquality):
    """Base class of samplers: one step rule over a denoise function.

    A sampler never sees the network. The loop `sample()` walks the visited
    timesteps; at step `i` it calls `step()` with a `denoise(x_t, t) -> (x0_hat,
    eps_hat)` function, the current `x`, the sampler's own carried `state` and
    row `i` of its per-step tables, and gets back the next `x` and `state`. The
    whole loop is one `keras.ops.fori_loop`, so it compiles to one program
    whatever the step rule does, as long as the state keeps its shapes.

    The default rule, enough for DDPM, DDIM and any sampler whose update is
    linear in `(x_t, x0_hat, eps_hat, z)`, is

        x_prev = a · x_t + b · x0_hat + c · eps_hat + d · z,    z ~ N(0, I),

    with per-step coefficients `(a, b, c, d)` that a subclass returns from
    `coefficients()` given ᾱ at the current and the next visited timestep. It
    calls the denoiser once per step and carries no state. A solver that needs
    more overrides three methods:

    - `tables(schedule, steps, start)`: its float32 per-step tables (a dict of
      arrays of length `steps`, including `"t"`, the timesteps to visit);
    - `initial_state(x)`: what it carries across steps (a tuple of tensors,
      e.g. the previous x0_hat of a multistep method; `()` for none);
    - `step(denoise, x, state, row, noise)`: one step. It may call `denoise`
      more than once (a Heun step calls it twice) and `noise(shape)` for
      N(0, I) draws from the loop's seed state.

    Conditioning (class labels, a guidance scale, a mask) never reaches the
    sampler: it lives inside the `denoise` function the caller builds.

    Args:
        spacing: which timesteps to visit: `"leading"`, `"trailing"` or
            `"linspace"` (integer timesteps, the meanings of diffusers'
            `timestep_spacing`, see `spaced_timesteps`), or `"karras"`: the
            noise levels of `karras_sigmas` between the schedule's σ at the first
            timestep and at t = 0, mapped back to fractional timesteps in log σ
            (`NoiseSchedule.timestep_at`). The network takes float timesteps
            and the denoiser reads its rates at the same interpolated point, so
            sampler and network agree on every noise level; rounding to integer
            timesteps (as some libraries do) would move the visited σ's off the
            Karras curve or make the step and the network disagree.
        clip: bool, clip x0_hat to [-1, 1] at every step (and recompute eps_hat
            from it).
        default_steps: int or None, steps used when `sample()` gets none
            (None: every timestep of the schedule).
        rho: float > 0, the ρ of `"karras"` spacing (ignored by the others).
            Defaults to 7.0.
        sigma_max: float > 0 or None, the largest σ of `"karras"` spacing: the
            schedule's σ at the first timestep, capped at this value (None: no
            cap). Defaults to 80.0, EDM's σ_max for data in [-1, 1]: there the
            signal is 1/80 of the noise, so starting from pure noise costs
            nothing, while a schedule's own σ_max can be enormous (the cosine
            schedule's is about 2·10⁴, reached only in its last timesteps, where
            an uncapped Karras ramp would spend most of its steps).

    Raises:
        ValueError: for an unknown `spacing`, a `default_steps` that is not a
            positive int or None, or `rho` or `sigma_max` <= 0.

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

    def __init__(
        self,
        spacing="trailing",
        clip=True,
        default_steps=None,
        rho=7.0,
        sigma_max=80.0,
    ):
        self.spacing = check_choice("spacing", spacing, SPACINGS)
        self.clip = bool(clip)
        self.default_steps = check_int(
            "default_steps", default_steps, low=1, allow_none=True
        )
        self.rho = check_float("rho", rho, low=0.0, low_inclusive=False)
        self.sigma_max = check_float(
            "sigma_max", sigma_max, low=0.0, low_inclusive=False, allow_none=True
        )

    def coefficients(self, alpha_bar, alpha_bar_prev):
        """Return `(a, b, c, d)` of the linear step rule, as float64 arrays.

        Args:
            alpha_bar: ᾱ at each visited timestep, float64 array `(steps,)`.
            alpha_bar_prev: ᾱ at the next visited timestep (1.0 after the last).

        Returns:
            Four arrays (or scalars broadcastable to) of shape `(steps,)`.

        Raises:
            NotImplementedError: in the base class; subclasses using the linear
                rule implement it, others override `tables()` and `step()`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement coefficients(), or tables() and step()."
        )

    def timesteps(self, schedule, steps=None, start=None):
        """The timesteps visited, decreasing, for `steps` steps from `start`.

        Args:
            schedule: a `NoiseSchedule`.
            steps: int or None (`default_steps`, else every timestep).
            start: int or None, the first (noisiest) timestep; None means `T - 1`.
                Reconstruction starts part-way, at the step images were noised to.

        Returns:
            A numpy array of the visited timesteps, decreasing: int64, or
            float64 (fractional) for `"karras"` spacing.

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
        elif start is not None and check_int("steps", steps) > last + 1:
            raise ValueError(
                f"`steps` must lie in [1, {last + 1}] (at most one a timestep, "
                f"from timestep {last} down), got {steps}."
            )
        if self.spacing != "karras":
            return spaced_timesteps(last + 1, steps, self.spacing)
        # Checked as the integer spacings are, so every spacing takes the same steps.
        spaced_timesteps(last + 1, steps, "trailing")
        high = schedule.sigmas[last]
        if self.sigma_max is not None and self.sigma_max < high:
            high = max(self.sigma_max, schedule.sigmas[0])
            last = float(schedule.timestep_at(high))
        sigmas = karras_sigmas(schedule.sigmas[0], high, steps, self.rho)
        timesteps = schedule.timestep_at(sigmas)
        timesteps[0] = last  # exactly, whatever the round trip through log σ
        return timesteps

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
        timesteps, alpha_bar = self.visited(schedule, steps, start)
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
        return float32_tables(tables)

    def is_deterministic(self, schedule, steps=None):
        """Whether the sampler draws no noise: the same initial noise, the same image.

        Args:
            schedule: a `NoiseSchedule`.
            steps: int or None, as in `timesteps()`.

        Returns:
            True when every step's noise coefficient is zero (DDIM with η = 0,
            the ODE solvers), False otherwise (DDPM, DDIM with η > 0).

        Example:

        ```python
        import keras_ddpm as kd

        schedule = kd.schedules.CosineSchedule()
        kd.samplers.DDIMSampler().is_deterministic(schedule, 10)  # True
        kd.samplers.DDPMSampler().is_deterministic(schedule, 10)  # False
        ```
        """
        tables = self.tables(schedule, steps)
        return "d" not in tables or not np.any(tables["d"])

    def visited(self, schedule, steps=None, start=None):
        """The visited timesteps and ᾱ at each of them (interpolated when fractional).

        Args:
            schedule: a `NoiseSchedule`.
            steps: int or None, as in `timesteps()`.
            start: int or None, as in `timesteps()`.

        Returns:
            A pair of numpy arrays `(timesteps, alpha_bar)`, ᾱ in float64.
        """
        timesteps = self.timesteps(schedule, steps, start)
        return timesteps, schedule.alpha_bar_at(timesteps)

    def initial_state(self, x):
        """What the sampler carries from step to step, before the first step.

        Args:
            x: the initial noisy images, a float32 tensor `(B, ...)`.

        Returns:
            A tuple of tensors (`()` for the linear rule, which carries nothing).
        """
        return ()

    def predict(self, denoise, x, t, signal, noise):
        """Call `denoise(x, t)`, in float32, with x0_hat clipped when `clip` is on.

        Args:
            denoise: callable `(x_t, t) -> (x0_hat, eps_hat)`.
            x: the noisy images.
            t: scalar timestep tensor.
            signal: sqrt(ᾱ_t), scalar tensor.
            noise: sqrt(1 − ᾱ_t), scalar tensor.

        Returns:
            `(x0_hat, eps_hat)` in float32; after clipping, eps_hat is
            recomputed so that `x = signal·x0_hat + noise·eps_hat` still holds.
        """
        x0, eps = denoise(x, t)
        x0 = ops.cast(x0, "float32")
        eps = ops.cast(eps, "float32")
        if self.clip:
            x0 = ops.clip(x0, -1.0, 1.0)
            eps = (x - signal * x0) / noise
        return x0, eps

    def step(self, denoise, x, state, row, noise):
        """One step of the linear rule `x_prev = a·x + b·x0_hat + c·eps_hat + d·z`.

        Args:
            denoise: callable `(x_t, t) -> (x0_hat, eps_hat)`.
            x: the current images, float32.
            state: the carried tuple (`initial_state()`'s structure).
            row: dict of scalar tensors, this step's entries of `tables()`
                (without `"d"` when d is zero at every step: then the loop
                draws no noise at all).
            noise: callable `shape -> z`, N(0, I) draws from the loop's seed.

        Returns:
            `(x_prev, state)`.
        """
        x0, eps = self.predict(denoise, x, row["t"], row["signal"], row["noise"])
        x_prev = row["a"] * x + row["b"] * x0 + row["c"] * eps
        if "d" in row:
            x_prev = x_prev + row["d"] * noise(ops.shape(x))
        return x_prev, state

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
            seed: int (read as `noise_seed_state(seed)`), or a seed state: an
                int array or tensor of shape `(2,)` from `noise_seed_state`,
                for the noise drawn at each step.
            start: int or None, first timestep (see `timesteps()`).
            return_trajectory: bool, also return x after every step.

        Returns:
            The final x0, or `(x0, trajectory)` with `trajectory` of shape
            `(steps + 1, B, ...)`, `trajectory[0]` being `initial_noise`.
        """
        tables = self.tables(schedule, steps, start)
        num_steps = len(tables["t"])
        if "d" in tables and not np.any(tables["d"]):
            del tables["d"]  # deterministic: no noise is drawn
        tables = {k: ops.convert_to_tensor(v) for k, v in tables.items()}
        x = ops.cast(ops.convert_to_tensor(initial_noise), "float32")
        rank = len(x.shape)
        generator = noise_seed_generator()
        if isinstance(seed, (int, np.integer)):
            seed = noise_seed_state(seed)
        seed = ops.convert_to_tensor(seed, dtype=generator.state.dtype)

        def advance(i, x, seed_state, state):
            row = {k: ops.take(v, i) for k, v in tables.items()}
            current = [seed_state]

            def noise(shape):
                with keras.StatelessScope(
                    state_mapping=[(generator.state, current[0])]
                ) as scope:
                    z = normal(shape, generator)
                current[0] = scope.get_current_value(generator.state)
                return z

            x, state = self.step(denoise_fn, x, tuple(state), row, noise)
            return ops.cast(x, "float32"), current[0], tuple(state)

        carry = (x, seed, tuple(self.initial_state(x)))
        if return_trajectory:
            trajectory = ops.zeros(
                (num_steps + 1,) + tuple(ops.shape(x)), dtype="float32"
            )
            trajectory = ops.slice_update(trajectory, (0,) * (rank + 1), x[None])

            def body(i, carry):
                *carry, trajectory = carry
                x, seed_state, state = advance(i, *carry)
                start_index = (i + 1,) + (0,) * rank
                trajectory = ops.slice_update(trajectory, start_index, x[None])
                return x, seed_state, state, trajectory

            x, _, _, trajectory = ops.fori_loop(
                0, num_steps, body, carry + (trajectory,)
            )
            return x, trajectory

        def body(i, carry):
            return advance(i, *carry)

        return ops.fori_loop(0, num_steps, body, carry)[0]

    def get_config(self):
        return {
            "spacing": self.spacing,
            "clip": self.clip,
            "default_steps": self.default_steps,
            "rho": self.rho,
            "sigma_max": self.sigma_max,
        }
