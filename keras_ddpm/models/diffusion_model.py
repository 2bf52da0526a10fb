import keras
import numpy as np
from keras import ops

from keras_ddpm import samplers as samplers_lib
from keras_ddpm import schedules as schedules_lib
from keras_ddpm.models import conditioning, ema, inputs, objective, pipelines
from keras_ddpm.models.sampling_mixin import SamplingMixin
from keras_ddpm.models.trainers import get_trainer


@keras.saving.register_keras_serializable(package="keras_ddpm")
class DiffusionModel(SamplingMixin, keras.Model):
    """A denoising diffusion model: trains a network with `fit`, samples with `generate`.

    Training (Ho et al. 2020, Algorithm 1): for each image x0 draw t ~ U{0, T−1}
    (or, with `noise_levels="lognormal"`, the fractional t whose noise level
    σ = sqrt((1 − ᾱ_t)/ᾱ_t) has log σ ~ N(`lognormal_mean`, `lognormal_std`²))
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

    `fit` and `evaluate` hand Keras a `tf.data` pipeline with tf.data's
    autotuning off where Keras would iterate an autotuned one: numpy arrays on
    TensorFlow (the same batches, shuffling and validation split as Keras'
    own array pipeline) and a pipeline of yours whose options leave
    `autotune.enabled` unset. Destroying an autotuned iterator before it runs
    out waits for its tuning thread to wake, which made epochs start seconds
    late. A pipeline that sets the option either way keeps it.

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
        noise_levels: `"uniform"` (integer timesteps, each equally likely) or
            `"lognormal"`: the training noise-level distribution of Karras et
            al. (2022), which spends the steps on the middle noise levels that
            decide an image's shapes; with v-prediction its per-level loss
            weight is theirs as well (for data of unit scale). The network is
            then called with fractional timesteps, as Karras-spaced samplers
            do. Draws outside the schedule's range are clipped to its ends.
            Defaults to `"uniform"`.
        lognormal_mean: float, the mean of log σ for `"lognormal"`. Defaults
            to -1.2 (Karras et al.'s P_mean).
        lognormal_std: float > 0, the standard deviation of log σ for
            `"lognormal"`. Defaults to 1.2 (their P_std).
        sampler: the default sampler of `generate` and `reconstruct`: a name,
            config dict or `Sampler`. Defaults to `"ddpm"`.
        num_classes: int >= 1 or None, for a class-conditional model: the
            network takes labels as a third input (e.g. `build_unet(...,
            num_classes=K)`), `fit` trains on `(images, labels)` and
            `generate(labels=..., guidance_scale=...)` samples a class with
            classifier-free guidance (Ho & Salimans 2022). Defaults to None
            (unconditional).
        label_dropout: float in [0, 1), the probability that a training label
            is replaced by the null label, so that the network also learns the
            unconditional prediction that guidance needs. Defaults to 0.1.
        class_names: None or a list of `num_classes` names, saved with the model.
        seed: int or None, seed of the noise and timesteps drawn in training.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: if `network` is not a Keras layer or model with a known
            input shape, for an unknown `prediction`, `loss`, schedule, sampler
            or `ema_warmup`, an `ema_momentum` outside [0, 1), or a non-positive
            `ema_inv_gamma`, `ema_power` or `min_snr_gamma`, an unknown
            `noise_levels`, or a non-finite `lognormal_mean` or non-positive
            `lognormal_std`.

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
        - [Karras et al., 2022. Elucidating the Design Space of Diffusion-Based Generative Models](https://arxiv.org/abs/2206.00364)
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
        noise_levels="uniform",
        lognormal_mean=-1.2,
        lognormal_std=1.2,
        sampler="ddpm",
        seed=None,
        num_classes=None,
        label_dropout=0.1,
        class_names=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        inputs.check_model_arguments(
            network,
            prediction,
            loss,
            ema_momentum,
            ema_inv_gamma,
            ema_power,
            min_snr_gamma,
        )
        inputs.check_noise_levels(noise_levels, lognormal_mean, lognormal_std)
        self.num_classes, self.label_dropout, self.class_names = (
            conditioning.check_class_arguments(
                network, num_classes, label_dropout, class_names
            )
        )
        warmup = ema.normalise_warmup(ema_warmup)
        self.network = network
        self.schedule = schedules_lib.get(schedule)
        self.prediction = prediction
        self.loss_type = loss
        self.ema_momentum = None if ema_momentum is None else float(ema_momentum)
        self.ema_warmup = warmup
        self.ema_inv_gamma = float(ema_inv_gamma)
        self.ema_power = float(ema_power)
        self.min_snr_gamma = None if min_snr_gamma is None else float(min_snr_gamma)
        self.noise_levels = noise_levels
        self.lognormal_mean = float(lognormal_mean)
        self.lognormal_std = float(lognormal_std)
        self.sampler = samplers_lib.get(sampler)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="training_noise")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self._trainer = get_trainer()
        self.image_shape = inputs.network_image_shape(network)
        # Converted once, outside any traced function: the train step and the
        # sampling loop reuse these device tensors instead of copying the numpy
        # tables to the device on every call (every step, when run eagerly).
        self._tables = {
            name: ops.convert_to_tensor(
                np.asarray(getattr(self.schedule, name), "float32")
            )
            for name in ("signal_rates", "noise_rates", "log_sigmas", "snr")
        }
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        self.ema_weights = []
        if self.ema_momentum is not None:
            self.ema_weights = ema.create_weights(
                self, self.network.trainable_variables
            )
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
        TensorFlow GPU; on a TensorFlow CPU it runs a graph without XLA. Which
        of the two is faster on a CPU depends on the CPU and the network (the
        training benchmark in `benchmarks/`, 2 cores of an AMD EPYC with
        AVX-512, batch 16: the graph 1.11 times as fast at 64×64 for a
        4.1 M-parameter U-Net, 28.5 against 25.6 images/s; XLA 1.09 times as
        fast at 32×32, 101.2 against 93.3; and 1.5 times as fast for
        `kd.training.train`'s default network at batch 8). Pass True or False
        to choose, or train with `kd.training.train`, whose `"auto"` times
        both on a TensorFlow CPU and keeps the faster.

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

    def fit(self, x=None, y=None, **kwargs):
        x = self._check_input(x, y)
        if hasattr(x, "element_spec"):
            # A tf.data pipeline shuffles itself; Keras would only warn about it.
            kwargs.setdefault("shuffle", False)
        validation = kwargs.get("validation_data")
        if validation is not None:
            kwargs["validation_data"] = self._check_input(validation, None)
        x, y, kwargs = pipelines.fit_data(x, y, kwargs)
        self._build_optimizer()
        return super().fit(x, y, **kwargs)

    def _build_optimizer(self):
        """Create the optimizer's variables before the train step is traced.

        Keras leaves this to the first trace on TensorFlow without a
        distribution strategy; a `tf.function` that creates variables is traced
        twice, so the first `fit` would trace the whole train step twice.
        """
        if self.optimizer is None or self.optimizer.built or not self.built:
            return
        if keras.backend.backend() == "tensorflow":
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        else:
            self.optimizer.build(self.trainable_variables)

    def evaluate(self, x=None, y=None, **kwargs):
        x = self._check_input(x, y)
        x, y, kwargs = pipelines.evaluate_data(x, y, kwargs)
        return super().evaluate(x, y, **kwargs)

    def _check_input(self, x, y):
        """Check the data of `fit`/`evaluate` up front; `x`, with a peeked batch put back."""
        x, first = inputs.peek(x)
        shown = x if first is None else first
        inputs.check_data(shown, self.image_shape)
        self._check_labels(shown, y)
        return x

    def _check_labels(self, x, y=None):
        """The labels (a conditional model's) or their absence, checked before `fit`/`evaluate`."""
        data = (x, y) if y is not None else x
        if self.num_classes is None:
            conditioning.check_no_labels(data)
        else:
            conditioning.check_label_data(data, self.num_classes)

    def _network_fn(self, network_fn, data, replica=None, drop=True):
        """`network_fn` over `[x_t, t]`, given the batch's labels (dropped) if conditional."""
        if self.num_classes is None:
            # Also reached by generators and PyDatasets, which fit cannot inspect.
            conditioning.check_no_labels(data)
            return network_fn
        labels = conditioning.batch_labels(data, self.num_classes)
        if drop:
            labels = conditioning.drop_labels(
                labels,
                self.num_classes,
                self.label_dropout,
                self.seed_generator,
                replica,
            )
        return lambda inputs: network_fn(list(inputs) + [labels])

    def _table(self, name):
        return self._tables[name]

    def _diffusion_loss(self, images, network_fn, replica=None):
        timesteps, noise = objective.draw_timesteps_and_noise(
            self.seed_generator,
            self.schedule.timesteps,
            ops.shape(images),
            replica,
            self.noise_levels,
            self._tables["log_sigmas"],
            self.lognormal_mean,
            self.lognormal_std,
        )
        return objective.diffusion_loss(
            network_fn,
            images,
            timesteps,
            noise,
            self._tables,
            self.prediction,
            self.loss_type,
            self.min_snr_gamma,
        )

    # -- the interface the per-backend trainers call ----------------------------

    def compute_training_loss(self, data, replica=None):
        """The diffusion loss of one training batch, with the training weights.

        Args:
            data: a batch of images `(B, H, W, C)` in [-1, 1], or a tuple whose
                first element is one.
            replica: `(replica count, this replica's index)` inside a
                data-parallel step, or None.

        Returns:
            The scalar float32 loss (before any loss scaling).
        """
        return self._diffusion_loss(
            inputs.image_batch(data, self.image_shape),
            self._network_fn(
                lambda inputs: self.network(inputs, training=True), data, replica
            ),
            replica,
        )

    def compute_validation_loss(self, data):
        """The diffusion loss of one batch with the sampling (EMA) weights.

        Args:
            data: as in `compute_training_loss`.

        Returns:
            The scalar float32 loss.
        """
        weights = self.sampling_weights(use_ema=True)
        non_trainable = [v.value for v in self.network.non_trainable_variables]

        def network_fn(inputs):
            return self.network.stateless_call(
                weights, non_trainable, inputs, training=False
            )[0]

        return self._diffusion_loss(
            inputs.image_batch(data, self.image_shape),
            self._network_fn(network_fn, data, drop=False),
        )

    def _ema_momentum_now(self):
        return ema.momentum_at(
            self.ema_updates.value,
            self.ema_momentum,
            self.ema_warmup,
            self.ema_inv_gamma,
            self.ema_power,
        )

    def update_ema(self):
        """Move the EMA weights towards the training weights; call once per optimizer step.

        `ema ← m·ema + (1 − m)·w` with the momentum m of `ema_momentum` and
        `ema_warmup`; counts the update in `ema_updates`.
        """
        if self.ema_momentum is not None:
            ema.update(
                self.ema_weights,
                self.network.trainable_variables,
                self._ema_momentum_now(),
            )
        self.ema_updates.assign_add(ops.convert_to_tensor(1, "int32"))

    def make_train_function(self, force=False):
        return self._make_step_function(super().make_train_function, "train", force)

    def make_test_function(self, force=False):
        return self._make_step_function(super().make_test_function, "test", force)

    def make_predict_function(self, force=False):
        return self._make_step_function(super().make_predict_function, "predict", force)

    def _make_step_function(self, make, kind, force):
        """Keras' `make_{kind}_function`, compiled by the trainer where it compiles its own.

        `kind` is `"train"`, `"test"` or `"predict"`.

        On PyTorch, `jit_compile=True` compiles the step with static shapes:
        Keras' `torch.compile` lets shapes turn symbolic, which fails on some
        networks (inductor cannot order a symbolic stride).
        """
        name = f"{kind}_function"
        compile_step = getattr(self._trainer, "compile_step", None)
        if compile_step is None or not self.jit_compile:
            return make(force)
        if getattr(self, name) is not None and not force:
            return getattr(self, name)
        chosen = self._jit_compile
        self._jit_compile = False  # Keras makes the plain step; compiled below
        try:
            make(force)
        finally:
            self._jit_compile = chosen
        setattr(self, name, compile_step(getattr(self, name)))
        return getattr(self, name)

    def train_step(self, *args):
        return self._trainer.train_step(self, *args)

    def test_step(self, *args):
        return self._trainer.test_step(self, *args)

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
            "noise_levels": self.noise_levels,
            "lognormal_mean": self.lognormal_mean,
            "lognormal_std": self.lognormal_std,
            "sampler": samplers_lib.serialize(self.sampler),
            "seed": self.seed,
            "num_classes": self.num_classes,
            "label_dropout": self.label_dropout,
            "class_names": self.class_names,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network=network, **config)
