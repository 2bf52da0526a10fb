import keras
import numpy as np
from keras import ops

from keras_ddpm import samplers as samplers_lib
from keras_ddpm import schedules as schedules_lib
from keras_ddpm.models.trainers import get_trainer
from keras_ddpm.ops import (
    PREDICTION_TYPES,
    predict_x0_and_eps,
    prediction_target,
    q_sample,
)
from keras_ddpm.samplers.sampler import noise_seed_generator

LOSSES = ("mse", "mae")
EMA_WARMUPS = (None, "step", "power")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return int(value)


def _check_finite(name, array):
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` must be finite, got NaN or infinite values.")


@keras.saving.register_keras_serializable(package="keras_ddpm")
class DiffusionModel(keras.Model):
    """A denoising diffusion model: trains a network with `fit`, samples with `generate`.

    Training (Ho et al. 2020, Algorithm 1): for each image x0 draw t ~ U{0, T−1}
    and ε ~ N(0, I), form x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, and regress the
    network's output on the target of `prediction` (ε, x0, or v = α·ε − σ·x0)
    with the `loss`, optionally weighted by min-SNR-γ. After every optimizer step
    the model updates its own exponential moving average (EMA) of the weights,
    ema ← m·ema + (1 − m)·w; the training weights are never overwritten. The
    validation loss (`evaluate`, `validation_data`) and `generate` use the EMA
    weights by default.

    The train step is written once over `keras.ops` with a thin per-backend
    gradient step, so `fit` runs on TensorFlow, JAX and PyTorch, with
    `jit_compile=True` or `False`. Sampling runs the whole loop as one compiled
    program (XLA with JAX, a `tf.function` with TensorFlow, eager with PyTorch).

    Args:
        network: a `keras.Model` taking `[images (B, H, W, C), timesteps (B,)]`
            and returning a tensor shaped like `images`, e.g. from
            `kd.models.build_unet`. Its input shape must be known.
        schedule: a `NoiseSchedule`, a name (`"linear"`, `"cosine"`,
            `"sigmoid"`) or a config dict. Defaults to `"linear"` (T = 1000).
        prediction: `"epsilon"`, `"x0"` or `"v"`: what the network predicts.
            Defaults to `"epsilon"`.
        loss: `"mse"` or `"mae"`. Defaults to `"mse"`.
        ema_momentum: float in [0, 1), the EMA momentum m, or None to keep no
            EMA (sampling then uses the training weights). Defaults to 0.999.
        ema_warmup: False for a constant m; True or `"step"` for
            m_t = min(m, (1 + t)/(10 + t)); `"power"` for
            m_t = min(m, 1 − (1 + t/ema_inv_gamma)^(−ema_power)), t counting EMA
            updates from 0. Defaults to False.
        ema_inv_gamma: float > 0, the `"power"` warmup's scale. Defaults to 1.0.
        ema_power: float > 0, the `"power"` warmup's exponent. Defaults to 2/3.
        min_snr_gamma: float > 0 or None, the γ of min-SNR-γ loss weighting
            (Hang et al. 2023). Defaults to None (uniform weights).
        sampler: the default sampler of `generate` and `reconstruct`: a name,
            config dict or `Sampler`. Defaults to `"ddpm"`.
        seed: int or None, seed of the noise and timesteps drawn in training.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: if `network` is not a Keras layer or model with a known
            input shape, for an unknown `prediction`, `loss`, schedule, sampler
            or `ema_warmup`, an `ema_momentum` outside [0, 1), or a non-positive
            `ema_inv_gamma`, `ema_power` or `min_snr_gamma`.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    net = kd.models.build_unet(image_size=16, widths=(16, 32), block_depth=1)
    model = kd.DiffusionModel(net, schedule="cosine", ema_momentum=0.99)
    model.compile(optimizer=keras.optimizers.AdamW(2e-4))
    images = np.random.uniform(-1, 1, (32, 16, 16, 3)).astype("float32")
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    samples = model.generate(4, sampler="ddim", steps=10, seed=0)  # (4, 16, 16, 3)
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic Models](https://arxiv.org/abs/2006.11239)
        - [Salimans & Ho, 2022. Progressive Distillation (v-prediction)](https://arxiv.org/abs/2202.00512)
        - [Hang et al., 2023. Efficient Diffusion Training via Min-SNR Weighting](https://arxiv.org/abs/2303.09556)
        - [Song & Ermon, 2020. Improved Techniques for Training Score-Based Generative Models (EMA)](https://arxiv.org/abs/2006.09011)
    """

    def __init__(
        self,
        network,
        schedule="linear",
        prediction="epsilon",
        loss="mse",
        ema_momentum=0.999,
        ema_warmup=False,
        ema_inv_gamma=1.0,
        ema_power=2.0 / 3.0,
        min_snr_gamma=None,
        sampler="ddpm",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(network, keras.layers.Layer):
            raise ValueError(
                f"`network` must be a Keras model or layer, got {type(network).__name__}."
            )
        if prediction not in PREDICTION_TYPES:
            raise ValueError(
                f"`prediction` must be one of {PREDICTION_TYPES}, got {prediction!r}."
            )
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}.")
        if ema_momentum is not None and not (
            isinstance(ema_momentum, (int, float)) and 0.0 <= ema_momentum < 1.0
        ):
            raise ValueError(
                f"`ema_momentum` must be a float in [0, 1) or None, got {ema_momentum!r}."
            )
        warmup = {False: None, None: None, True: "step"}.get(ema_warmup, ema_warmup)
        if warmup not in EMA_WARMUPS:
            raise ValueError(
                f"`ema_warmup` must be False, True, 'step' or 'power', got {ema_warmup!r}."
            )
        for name, value in (("ema_inv_gamma", ema_inv_gamma), ("ema_power", ema_power)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"`{name}` must be a number > 0, got {value!r}.")
        if min_snr_gamma is not None and not (
            isinstance(min_snr_gamma, (int, float)) and min_snr_gamma > 0
        ):
            raise ValueError(
                f"`min_snr_gamma` must be a number > 0 or None, got {min_snr_gamma!r}."
            )
        self.network = network
        self.schedule = schedules_lib.get(schedule)
        self.prediction = prediction
        self.loss_type = loss
        self.ema_momentum = None if ema_momentum is None else float(ema_momentum)
        self.ema_warmup = warmup
        self.ema_inv_gamma = float(ema_inv_gamma)
        self.ema_power = float(ema_power)
        self.min_snr_gamma = None if min_snr_gamma is None else float(min_snr_gamma)
        self.sampler = samplers_lib.get(sampler)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="training_noise")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self._trainer = get_trainer()
        self._sampling_functions = {}
        self._sampling_traces = 0
        self._train_step_traces = 0
        self.image_shape = self._network_image_shape()
        # Converted once, outside any traced function: the train step and the
        # sampling loop reuse these device tensors instead of copying the numpy
        # tables to the device on every call (every step, when run eagerly).
        self._tables = {
            name: ops.convert_to_tensor(
                np.asarray(getattr(self.schedule, name), "float32")
            )
            for name in ("signal_rates", "noise_rates", "snr")
        }
        self.build()

    def _network_image_shape(self):
        try:
            shape = self.network.input_shape[0]
        except (AttributeError, ValueError, IndexError, TypeError):
            shape = None
        if shape is None or len(shape) != 4 or None in shape[1:]:
            raise ValueError(
                "`network` must be built with a known input shape "
                "[images (B, H, W, C), timesteps (B,)], e.g. from kd.models.build_unet; "
                f"got input shape {shape}."
            )
        return tuple(int(s) for s in shape[1:])

    def build(self, input_shape=None):
        if self.built:
            return
        weights = self.network.trainable_variables
        self.ema_weights = []
        if self.ema_momentum is not None:
            for weight in weights:
                ema = self.add_weight(
                    shape=weight.shape,
                    initializer="zeros",
                    dtype=weight.dtype,
                    trainable=False,
                    name="ema_" + weight.path.replace("/", "_"),
                )
                # A copy: JAX must not donate one buffer twice.
                ema.assign(ops.copy(weight.value))
                self.ema_weights.append(ema)
        self.ema_updates = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            name="ema_updates",
        )
        self.built = True

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def compile(self, optimizer="adamw", jit_compile="auto", **kwargs):
        """Configure training. Takes `keras.Model.compile` arguments except `loss`.

        `jit_compile="auto"` compiles the train step with XLA on JAX and on a
        TensorFlow GPU; on a TensorFlow CPU it runs a graph without XLA, which
        is never slower there (measured on 2 cores with
        the training benchmark in `benchmarks/`: 14.8 vs 11.7 images/s at 64×64 for a
        4.1 M-parameter U-Net at batch 16; equal at 32×32).

        Args:
            optimizer: a `keras.optimizers.Optimizer` or its name. Defaults to
                `"adamw"`.
            jit_compile: `"auto"`, True or False: compile the train step with XLA.
                Defaults to `"auto"` (see above).
            **kwargs: other `keras.Model.compile` arguments (`steps_per_execution`,
                ...), but not `loss`.

        Raises:
            ValueError: if `loss` is given: the model computes its own loss (set
                it with the constructor's `loss=`).
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "DiffusionModel computes its own loss; pass `loss=` to the constructor "
                "('mse' or 'mae'), not to compile()."
            )
        kwargs.pop("loss", None)
        if jit_compile == "auto" and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            jit_compile = bool(tf.config.list_logical_devices("GPU"))
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # -- training --------------------------------------------------------------

    def _check_input(self, data):
        """Validate arrays and tf.data specs up front, before any training machinery runs."""
        spec = getattr(data, "element_spec", None)
        if spec is not None:
            data = spec
        if isinstance(data, (tuple, list)) and data:
            data = data[0]
        if hasattr(data, "shape") and hasattr(data, "dtype"):
            self._prepare_batch(data, cast=False)
            if isinstance(data, np.ndarray):
                _check_finite("images", data)

    def fit(self, x=None, y=None, **kwargs):
        self._check_input(x)
        if hasattr(x, "element_spec"):
            # A tf.data pipeline shuffles itself; Keras would only warn about it.
            kwargs.setdefault("shuffle", False)
        validation = kwargs.get("validation_data")
        if validation is not None:
            self._check_input(validation)
        return super().fit(x, y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        self._check_input(x)
        return super().evaluate(x, y, **kwargs)

    def _prepare_batch(self, data, cast=True):
        images = data[0] if isinstance(data, (tuple, list)) else data
        if isinstance(images, dict):
            raise ValueError(
                "DiffusionModel expects batches of images (B, H, W, C) or "
                f"(images, labels) tuples, got a dict with keys {sorted(images)}."
            )
        shape = tuple(images.shape)
        if len(shape) != 4:
            raise ValueError(
                f"Expected image batches of rank 4 (B, H, W, C) = (B, {', '.join(map(str, self.image_shape))}), "
                f"got shape {shape}."
            )
        expected = self.image_shape
        if any(s is not None and s != e for s, e in zip(shape[1:], expected)):
            raise ValueError(
                f"Expected images of shape (B, {', '.join(map(str, expected))}), got {shape}."
            )
        dtype = str(getattr(images.dtype, "name", images.dtype))
        dtype = keras.backend.standardize_dtype(dtype)
        if "float" not in dtype:
            raise ValueError(
                f"Expected float images scaled to [-1, 1], got dtype {dtype}; convert "
                "uint8 images with x / 127.5 - 1."
            )
        return ops.cast(images, "float32") if cast else images

    def _table(self, name):
        return self._tables[name]

    def _draw_timesteps_and_noise(self, shape, replica=None):
        """Training draws for a batch of `shape`; `replica = (count, index)` or None.

        Each replica of a data-parallel step draws for the whole global batch
        and keeps its own slice, so that the step equals the single-device step
        on the same global batch, noise included.
        """
        count, index = (1, 0) if replica is None else replica
        batch = shape[0]
        timesteps = keras.random.randint(
            (batch * count,), 0, self.schedule.timesteps, seed=self.seed_generator
        )
        noise = keras.random.normal(
            (batch * count,) + tuple(shape[1:]), seed=self.seed_generator
        )
        if count > 1:
            mine = index * batch + ops.arange(batch)
            timesteps, noise = ops.take(timesteps, mine, 0), ops.take(noise, mine, 0)
        return timesteps, noise

    def _diffusion_loss(self, images, network_fn, replica=None):
        batch = ops.shape(images)[0]
        timesteps, noise = self._draw_timesteps_and_noise(ops.shape(images), replica)
        alpha = ops.take(self._table("signal_rates"), timesteps)
        sigma = ops.take(self._table("noise_rates"), timesteps)
        x_t = q_sample(images, noise, alpha, sigma)
        output = ops.cast(network_fn([x_t, ops.cast(timesteps, "float32")]), "float32")
        error = output - prediction_target(self.prediction, images, noise, alpha, sigma)
        error = ops.square(error) if self.loss_type == "mse" else ops.abs(error)
        per_sample = ops.mean(ops.reshape(error, (batch, -1)), axis=-1)
        if self.min_snr_gamma is not None:
            snr = ops.take(self._table("snr"), timesteps)
            clipped = ops.minimum(snr, self.min_snr_gamma)
            # Hang et al. 2023, eq. 10 and its ε / v forms.
            weight = {
                "epsilon": clipped / snr,
                "x0": clipped,
                "v": clipped / (snr + 1.0),
            }[self.prediction]
            per_sample = per_sample * weight
        return ops.mean(per_sample)

    def _training_loss(self, images, replica=None):
        return self._diffusion_loss(
            images, lambda inputs: self.network(inputs, training=True), replica
        )

    def _ema_momentum_now(self):
        step = ops.cast(self.ema_updates.value, "float32")
        momentum = ops.convert_to_tensor(self.ema_momentum, "float32")
        if self.ema_warmup == "step":
            momentum = ops.minimum(momentum, (1.0 + step) / (10.0 + step))
        elif self.ema_warmup == "power":
            warm = 1.0 - ops.power(1.0 + step / self.ema_inv_gamma, -self.ema_power)
            momentum = ops.minimum(momentum, warm)
        return momentum

    def _after_train_step(self, loss):
        if self.ema_momentum is not None:
            momentum = self._ema_momentum_now()
            for ema, weight in zip(self.ema_weights, self.network.trainable_variables):
                ema.assign(
                    momentum * ema.value
                    + (1.0 - momentum) * ops.cast(weight.value, ema.dtype)
                )
        self.ema_updates.assign_add(ops.convert_to_tensor(1, "int32"))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def _validation_logs(self, images):
        weights = self._sampling_weights(use_ema=True)
        non_trainable = [v.value for v in self.network.non_trainable_variables]

        def network_fn(inputs):
            return self.network.stateless_call(
                weights, non_trainable, inputs, training=False
            )[0]

        self.loss_tracker.update_state(self._diffusion_loss(images, network_fn))
        return {"loss": self.loss_tracker.result()}

    def train_step(self, *args):
        return self._trainer.train_step(self, *args)

    def test_step(self, *args):
        return self._trainer.test_step(self, *args)

    # -- sampling --------------------------------------------------------------

    def _sampling_weights(self, use_ema):
        variables = (
            self.ema_weights
            if use_ema and self.ema_momentum is not None
            else self.network.trainable_variables
        )
        return [v.value for v in variables]

    def denoise(self, weights, non_trainable, x_t, t):
        """`(x0_hat, eps_hat)` from the network at timestep `t` (the samplers' contract).

        A pure function of the weights it is given, so that a compiled sampling
        loop can take them as arguments.

        Args:
            weights: values of the network's trainable variables (the EMA
                weights or the training weights), in order.
            non_trainable: values of the network's non-trainable variables.
            x_t: the noisy images `(B, H, W, C)`.
            t: scalar timestep (int or float tensor).

        Returns:
            A pair `(x0_hat, eps_hat)` of float32 tensors shaped like `x_t`.
        """
        timesteps = ops.broadcast_to(ops.cast(t, "float32"), (ops.shape(x_t)[0],))
        output, _ = self.network.stateless_call(
            weights, non_trainable, [x_t, timesteps], training=False
        )
        index = ops.cast(t, "int32")
        alpha = ops.take(self._table("signal_rates"), index)
        sigma = ops.take(self._table("noise_rates"), index)
        return predict_x0_and_eps(
            self.prediction, ops.cast(output, "float32"), x_t, alpha, sigma
        )

    def _sampling_function(self, sampler, steps, start, return_trajectory):
        jit = keras.backend.backend() == "jax" or bool(
            getattr(self, "_jit_compile", None)
        )
        key = (sampler, steps, start, return_trajectory, jit)
        if key not in self._sampling_functions:

            def run(weights, non_trainable, x, seed_state):
                self._sampling_traces += 1
                return sampler.sample(
                    lambda x_t, t: self.denoise(weights, non_trainable, x_t, t),
                    x,
                    self.schedule,
                    steps=steps,
                    seed=seed_state,
                    start=start,
                    return_trajectory=return_trajectory,
                )

            self._sampling_functions[key] = self._trainer.compile_sampling(run, jit)
        return self._sampling_functions[key]

    def _run_sampler(
        self,
        x,
        sampler,
        steps,
        start,
        seed,
        return_trajectory,
        use_ema,
        batch_size,
        progress=False,
    ):
        sampler = self.sampler if sampler is None else samplers_lib.get(sampler)
        if steps is not None:
            steps = _positive_int("steps", steps)
        sampler.timesteps(
            self.schedule, steps, start
        )  # validates steps before compiling
        num = x.shape[0]
        batch_size = (
            min(num, 64)
            if batch_size is None
            else _positive_int("batch_size", batch_size)
        )
        batch_size = min(batch_size, num)
        noise_seed_generator()  # created eagerly, never inside the compiled loop
        function = self._sampling_function(sampler, steps, start, return_trajectory)
        weights = self._sampling_weights(use_ema)
        non_trainable = [v.value for v in self.network.non_trainable_variables]
        seed_dtype = self.seed_generator.state.dtype
        images, trajectories = [], []
        bar = keras.utils.Progbar(num, unit_name="image") if progress else None
        for chunk, begin in enumerate(range(0, num, batch_size)):
            part = x[begin : begin + batch_size]
            size = len(part)
            if size < batch_size:  # pad, so every chunk reuses one compiled program
                part = np.concatenate(
                    [part, np.zeros((batch_size - size,) + part.shape[1:], part.dtype)]
                )
            seed_state = ops.convert_to_tensor(
                [seed % 2**31, chunk + 1], dtype=seed_dtype
            )
            result = function(
                weights, non_trainable, ops.convert_to_tensor(part), seed_state
            )
            if return_trajectory:
                result, trajectory = result
                trajectories.append(ops.convert_to_numpy(trajectory)[:, :size])
            images.append(ops.convert_to_numpy(result)[:size])
            if bar is not None:
                bar.add(size)
        images = np.clip(np.concatenate(images), -1.0, 1.0).astype("float32")
        if return_trajectory:
            return images, np.clip(
                np.concatenate(trajectories, axis=1), -1.0, 1.0
            ).astype("float32")
        return images

    def generate(
        self,
        num_images,
        sampler=None,
        steps=None,
        seed=None,
        initial_noise=None,
        return_trajectory=False,
        use_ema=True,
        batch_size=None,
        progress=False,
    ):
        """Sample images by running the reverse process from pure noise.

        Args:
            num_images: int, how many images.
            sampler: a sampler name, config or instance; None uses the model's
                default (`sampler=` of the constructor).
            steps: int or None, number of denoising steps (None: the sampler's
                default, every timestep for DDPM, 50 for DDIM).
            seed: int or None. The same seed gives the same images on a backend.
            initial_noise: optional float array `(num_images, H, W, C)` to start
                from instead of noise drawn from `seed`.
            return_trajectory: bool, also return every intermediate x_t.
            use_ema: bool, sample with the EMA weights. Defaults to True.
            batch_size: int or None, images per compiled call (default up to 64).
            progress: bool, show a progress bar over the batches.

        Returns:
            float32 numpy images `(num_images, H, W, C)` in [-1, 1]; with
            `return_trajectory=True`, `(images, trajectory)` where `trajectory`
            has shape `(steps + 1, num_images, H, W, C)`, first frame the noise.

        Raises:
            ValueError: for a bad count, steps outside [1, T], or noise of the
                wrong shape or with NaN / infinite values.

        Example:

        ```python
        import keras_ddpm as kd

        net = kd.models.build_unet(image_size=16, widths=(16, 32), block_depth=1)
        model = kd.DiffusionModel(net, schedule="cosine")
        images, trajectory = model.generate(
            4, sampler="ddim", steps=10, seed=0, return_trajectory=True
        )
        trajectory.shape  # (11, 4, 16, 16, 3): the noise, then after each step
        ```
        """
        seed = self._seed_or_random(seed)
        if initial_noise is None:
            num_images = _positive_int("num_images", num_images)
            x = np.random.default_rng(seed).standard_normal(
                (num_images,) + self.image_shape, dtype=np.float32
            )
        else:
            x = np.asarray(initial_noise, dtype=np.float32)
            if x.shape[1:] != self.image_shape or (
                num_images is not None and x.shape[0] != num_images
            ):
                raise ValueError(
                    f"`initial_noise` must have shape ({num_images}, {', '.join(map(str, self.image_shape))}), "
                    f"got {x.shape}."
                )
            _check_finite("initial_noise", x)
        return self._run_sampler(
            x,
            sampler,
            steps,
            None,
            seed,
            return_trajectory,
            use_ema,
            batch_size,
            progress,
        )

    def reconstruct(
        self,
        images,
        t,
        sampler=None,
        steps=None,
        seed=None,
        return_trajectory=False,
        use_ema=True,
        batch_size=None,
    ):
        """Noise real images to timestep `t` with q(x_t | x_0), then denoise them back.

        Small `t` keeps the image almost intact; `t` near T−1 forgets it and
        behaves like `generate`.

        Args:
            images: float array `(N, H, W, C)` in [-1, 1].
            t: int in [0, T−1], the timestep to noise to.
            sampler: a sampler name, config or instance; None uses the model's
                default.
            steps: int or None, denoising steps from `t` down to 0 (at most
                `t + 1`); None leaves it to the sampler, capped at `t + 1`.
            seed: int or None, seed of the noise added and of the sampler's noise.
            return_trajectory: bool, also return every intermediate image.
            use_ema: bool, denoise with the EMA weights. Defaults to True.
            batch_size: int or None, images per compiled call (default up to 64).

        Returns:
            float32 numpy images `(N, H, W, C)` in [-1, 1] (and the trajectory,
            starting with the noised images, when `return_trajectory=True`).

        Raises:
            ValueError: for images of the wrong shape or dtype, `t` outside
                [0, T − 1], or `steps` outside [1, t + 1].

        Example:

        ```python
        import numpy as np
        import keras_ddpm as kd

        net = kd.models.build_unet(image_size=16, widths=(16, 32), block_depth=1)
        model = kd.DiffusionModel(net, schedule="cosine")
        images = kd.datasets.synthetic_flowers(4, image_size=16) * 2 - 1
        restored = model.reconstruct(images, t=300, sampler="ddim", steps=20, seed=0)
        ```
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise ValueError(
                f"`images` must have shape (N, {', '.join(map(str, self.image_shape))}), got {images.shape}."
            )
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(
                f"`images` must be float in [-1, 1], got dtype {images.dtype}."
            )
        _check_finite("images", images)
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, np.integer))
            or not 0 <= t < self.schedule.timesteps
        ):
            raise ValueError(
                f"`t` must be an int in [0, {self.schedule.timesteps - 1}], got {t!r}."
            )
        seed = self._seed_or_random(seed)
        noise = np.random.default_rng(seed).standard_normal(
            images.shape, dtype=np.float32
        )
        alpha = self.schedule.signal_rates[t]
        sigma = self.schedule.noise_rates[t]
        x_t = (alpha * images.astype(np.float32) + sigma * noise).astype(np.float32)
        return self._run_sampler(
            x_t, sampler, steps, int(t), seed, return_trajectory, use_ema, batch_size
        )

    def evaluate_nll(
        self,
        data,
        timesteps=None,
        variance="fixed_small",
        seed=0,
        max_images=None,
        use_ema=True,
    ):
        """Negative log-likelihood bound in bits per dimension (Ho et al. 2020, eq. 5).

        The variational bound with the true posterior q(x_{t−1} | x_t, x0), the
        model's Gaussian p with fixed variance, the prior term, and the
        discretised Gaussian decoder over 8-bit levels (images are snapped to
        them); the maths is in `keras_ddpm.models.likelihood`. Cost: with
        `timesteps=None`, T network evaluations per image (every KL term, one
        x_t sample each); with `timesteps=K`, K + 1 evaluations and an unbiased
        estimate whose extra variance shows in `standard_error`.

        Args:
            data: an array `(N, H, W, C)` in [-1, 1], a `tf.data.Dataset` or an
                iterable of batches (or of `(images, labels)`).
            timesteps: None (all T − 1 KL terms) or an int K of stratified
                sampled terms per batch.
            variance: `"fixed_small"` (σ_t² = β̃_t) or `"fixed_large"` (β_t).
            seed: int, seed of the noise and sampled timesteps. Defaults to 0.
            max_images: int or None, stop after this many images.
            use_ema: bool, use the EMA weights. Defaults to True.

        Returns:
            A dict with `"bits_per_dim"`, `"standard_error"`, the mean
            `"prior"`, `"diffusion"` and `"decoder"` terms and `"num_images"`.
        """
        from keras_ddpm.models.likelihood import evaluate_bound

        weights = self._sampling_weights(use_ema)
        non_trainable = [v.value for v in self.network.non_trainable_variables]
        jit = keras.backend.backend() == "jax" or bool(
            getattr(self, "_jit_compile", None)
        )
        key = ("x0_prediction", jit)
        if key not in self._sampling_functions:
            self._sampling_functions[key] = self._trainer.compile_sampling(
                lambda w, n, x, t: self.denoise(w, n, x, t)[0], jit
            )
        predict = self._sampling_functions[key]
        return evaluate_bound(
            lambda x_t, t: predict(weights, non_trainable, x_t, t),
            data,
            self.schedule,
            variance=variance,
            timesteps=timesteps,
            seed=seed,
            max_images=max_images,
            image_shape=self.image_shape,
        )

    @staticmethod
    def _seed_or_random(seed):
        if seed is None:
            return int(np.random.SeedSequence().entropy % 2**31)
        if (
            isinstance(seed, bool)
            or not isinstance(seed, (int, np.integer))
            or seed < 0
        ):
            raise ValueError(
                f"`seed` must be a non-negative int or None, got {seed!r}."
            )
        return int(seed)

    # -- serialization ---------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "network": keras.saving.serialize_keras_object(self.network),
            "schedule": schedules_lib.serialize(self.schedule),
            "prediction": self.prediction,
            "loss": self.loss_type,
            "ema_momentum": self.ema_momentum,
            "ema_warmup": self.ema_warmup or False,
            "ema_inv_gamma": self.ema_inv_gamma,
            "ema_power": self.ema_power,
            "min_snr_gamma": self.min_snr_gamma,
            "sampler": samplers_lib.serialize(self.sampler),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network=network, **config)
