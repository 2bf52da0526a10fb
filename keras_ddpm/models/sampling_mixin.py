from keras import ops

from keras_ddpm.models import inputs, sampling
from keras_ddpm.ops import predict_x0_and_eps, rates_at


class SamplingMixin:
    """The sampling half of `DiffusionModel`: `generate`, `reconstruct`, `evaluate_nll`.

    Kept apart from training the way Keras keeps its `Trainer` apart from
    `Model`: these methods need only the network, the schedule, the EMA
    weights and the default sampler, and leave the orchestration (compiled
    programs, chunks, seeds) to `keras_ddpm.models.sampling`.
    """

    def sampling_weights(self, use_ema=True):
        """Values of the weights that sampling uses: the EMA copy or the training weights.

        Args:
            use_ema: bool; without EMA (`ema_momentum=None`) the training
                weights are used either way. Defaults to True.

        Returns:
            A list of tensors, in the order of `network.trainable_variables`.
        """
        variables = (
            self.ema_weights
            if use_ema and self.ema_momentum is not None
            else self.network.trainable_variables
        )
        return [v.value for v in variables]

    def denoise(self, weights, non_trainable, x_t, t, conditioning=None):
        """`(x0_hat, eps_hat)` from the network at timestep `t` (the samplers' contract).

        A pure function of the weights it is given, so that a compiled sampling
        loop can take them as arguments.

        Args:
            weights: values of the network's trainable variables (the EMA
                weights or the training weights), in order.
            non_trainable: values of the network's non-trainable variables.
            x_t: the noisy images `(B, H, W, C)`.
            t: timestep, a scalar or one per image `(B,)` (int or float).
            conditioning: dict of tensors for a conditional network (labels,
                guidance scale, ...); an unconditional model takes none.

        Returns:
            A pair `(x0_hat, eps_hat)` of float32 tensors shaped like `x_t`.

        Raises:
            ValueError: if `conditioning` is given to an unconditional model.
        """
        if conditioning:
            raise ValueError(
                "This model is unconditional: it takes no conditioning, got "
                f"{sorted(conditioning)}."
            )
        timesteps = ops.broadcast_to(ops.cast(t, "float32"), (ops.shape(x_t)[0],))
        output, _ = self.network.stateless_call(
            weights, non_trainable, [x_t, timesteps], training=False
        )
        # Fractional timesteps (Karras spacing) read the tables interpolated.
        alpha, sigma = rates_at(
            t,
            self._table("signal_rates"),
            self._table("noise_rates"),
            self._table("log_sigmas"),
        )
        return predict_x0_and_eps(
            self.prediction, ops.cast(output, "float32"), x_t, alpha, sigma
        )

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
                default: every timestep for DDPM, 50 for DDIM, 20 for
                DPM-Solver++ and Euler, 10 for Heun).
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
        seed = inputs.seed_or_random(seed)
        x = inputs.initial_noise(self.image_shape, num_images, seed, initial_noise)
        return sampling.sample(
            self,
            x,
            sampler=sampler,
            steps=steps,
            seed=seed,
            return_trajectory=return_trajectory,
            use_ema=use_ema,
            batch_size=batch_size,
            progress=progress,
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
        seed = inputs.seed_or_random(seed)
        x_t = inputs.noised_images(images, t, seed, self.schedule, self.image_shape)
        return sampling.sample(
            self,
            x_t,
            sampler=sampler,
            steps=steps,
            start=int(t),
            seed=seed,
            return_trajectory=return_trajectory,
            use_ema=use_ema,
            batch_size=batch_size,
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

        return evaluate_bound(
            sampling.x0_predictor(self, use_ema),
            data,
            self.schedule,
            variance=variance,
            timesteps=timesteps,
            seed=seed,
            max_images=max_images,
            image_shape=self.image_shape,
        )
