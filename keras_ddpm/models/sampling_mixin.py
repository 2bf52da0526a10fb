import numpy as np
from keras import ops

from keras_ddpm import samplers as samplers_lib
from keras_ddpm.models import conditioning as conditioning_lib
from keras_ddpm.models import inpainting, inputs, sampling
from keras_ddpm.models.guidance_interval import guidance_conditioning
from keras_ddpm.ops import predict_x0_and_eps, rates_at
from keras_ddpm.utils import check_int


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
            conditioning: dict of tensors for a class-conditional model:
                `"labels"` `(B,)` int (the null label `num_classes` for none;
                absent: all null) and optionally `"guidance_scale"` (a scalar
                or `(B,)`), which runs classifier-free guidance, null + s ·
                (label − null), in one call over the doubled batch. An
                unconditional model takes none.

        Returns:
            A pair `(x0_hat, eps_hat)` of float32 tensors shaped like `x_t`.

        Raises:
            ValueError: for conditioning an unconditional model, or names other
                than `labels` and `guidance_scale`.
        """
        conditioning = dict(conditioning or {})
        labels = conditioning.pop("labels", None)
        guidance = conditioning.pop("guidance_scale", None)
        if self.num_classes is None and (
            conditioning or labels is not None or guidance is not None
        ):
            given = sorted(conditioning) + [
                name
                for name, value in (("labels", labels), ("guidance_scale", guidance))
                if value is not None
            ]
            raise ValueError(
                "This model is unconditional: it takes no conditioning, got "
                f"{sorted(given)}."
            )
        if conditioning:
            raise ValueError(
                "A class-conditional model takes the conditioning `labels` and "
                f"`guidance_scale` only, got {sorted(conditioning)}."
            )
        timesteps = ops.broadcast_to(ops.cast(t, "float32"), (ops.shape(x_t)[0],))

        def call(network_inputs):
            return self.network.stateless_call(
                weights, non_trainable, network_inputs, training=False
            )[0]

        if self.num_classes is None:
            output = ops.cast(call([x_t, timesteps]), "float32")
        else:
            if labels is None:
                labels = ops.full((ops.shape(x_t)[0],), self.num_classes, "int32")
            output = conditioning_lib.guided_output(
                call, x_t, timesteps, labels, guidance, self.num_classes
            )
        # Fractional timesteps (Karras spacing) read the tables interpolated.
        alpha, sigma = rates_at(
            t,
            self._table("signal_rates"),
            self._table("noise_rates"),
            self._table("log_sigmas"),
        )
        return predict_x0_and_eps(self.prediction, output, x_t, alpha, sigma)

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
        labels=None,
        guidance_scale=1.0,
        guide=None,
        guide_scale=None,
        guidance_interval=None,
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
            labels: for a class-conditional model, an int or an int array of
                `num_images` class labels in [0, num_classes); None samples
                unconditionally (the null label).
            guidance_scale: float, classifier-free guidance scale s: 1 samples
                the plain conditional model; s > 1 follows the label more
                closely at some cost in diversity (each step then runs the
                network on twice the batch). Changing `labels` or `s` (other
                than 1) reuses the compiled program. Defaults to 1.0.
            guide: optional `DiffusionModel`, a weaker version of this one
                (an earlier snapshot of its training, as `kd.training.train`
                saves in `guide.keras`, or a smaller network) of the same
                image shape, schedule and classes: autoguidance (Karras et
                al. 2024) then denoises with guide + w · (model − guide),
                running both networks at each guided step. A conditional
                model gives both its `labels`; it excludes `guidance_scale`.
                Defaults to None.
            guide_scale: float, the autoguidance scale w (1: the model
                alone), only with `guide`; a new scale reuses the compiled
                program. None: 5.0 with a guide. Defaults to None.
            guidance_interval: optional pair of timesteps `(low, high)`,
                0 ≤ low ≤ high ≤ T: guide (with `guide` or `guidance_scale`)
                only the steps at timesteps t with low ≤ t ≤ high, and denoise
                with the model alone elsewhere (Kynkäänniemi et al. 2024),
                which also skips the guidance's extra network work there. A
                new interval reuses the compiled program. None: with a guide,
                `(0, 0.6 T)` (timesteps 0 to 600 of 1,000), which with scale
                5 scored the best FID of the settings on the benchmarks page
                (a snapshot at half of the training as the guide); with
                classifier-free guidance, every step. `(0, T)` guides every
                step. Defaults to None.

        Returns:
            float32 numpy images `(num_images, H, W, C)` in [-1, 1]; with
            `return_trajectory=True`, `(images, trajectory)` where `trajectory`
            has shape `(steps + 1, num_images, H, W, C)`, first frame the noise.

        Raises:
            ValueError: for a bad count, steps outside [1, T], noise of the
                wrong shape or with NaN / infinite values, labels out of
                range, not integers, of the wrong length, or given to an
                unconditional model, or a guide that does not match this
                model (or a `guide_scale` without one), or a bad
                `guidance_interval` or one without guidance.

        Example:

        ```python
        import keras_ddpm as kd

        net = kd.models.build_unet(image_size=16, widths=(16, 32), block_depth=1)
        model = kd.DiffusionModel(net, schedule="cosine")
        images, trajectory = model.generate(
            4, sampler="ddim", steps=10, seed=0, return_trajectory=True
        )
        trajectory.shape  # (11, 4, 16, 16, 3): the noise, then after each step
        # Autoguidance by another model of the same shape and schedule:
        guide = kd.DiffusionModel(
            kd.models.build_unet(image_size=16, widths=(8, 16), block_depth=1),
            schedule="cosine",
        )
        # at scale 5 for timesteps up to 0.6 T (the defaults), or at every step:
        guided = model.generate(4, steps=10, seed=0, guide=guide)
        every_step = model.generate(
            4, steps=10, seed=0, guide=guide, guidance_interval=(0, 1000)
        )
        ```
        """
        seed = inputs.seed_or_random(seed)
        x = inputs.initial_noise(self.image_shape, num_images, seed, initial_noise)
        conditioning = guidance_conditioning(
            self, len(x), labels, guidance_scale, guide, guide_scale, guidance_interval
        )
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
            conditioning=conditioning,
            guide=guide,
        )

    def reconstruct(
        self,
        images,
        t=None,
        sampler=None,
        steps=None,
        seed=None,
        return_trajectory=False,
        use_ema=True,
        batch_size=None,
        strength=None,
        labels=None,
        guidance_scale=1.0,
    ):
        """Noise real images to timestep `t` with q(x_t | x_0), then denoise them back.

        Small `t` keeps the image almost intact; `t` near T−1 forgets it and
        behaves like `generate`. This is SDEdit (Meng et al. 2022): give
        `strength` instead of `t` for its knob, the fraction of the noise
        levels to go back through (t = round(strength · (T − 1))).

        Args:
            images: float array `(N, H, W, C)` in [-1, 1].
            t: int in [0, T−1], the timestep to noise to; or None with
                `strength`.
            sampler: a sampler name, config or instance; None uses the model's
                default.
            steps: int or None, denoising steps from `t` down to 0 (at most
                `t + 1`); None leaves it to the sampler, capped at `t + 1`.
            seed: int or None, seed of the noise added and of the sampler's noise.
            return_trajectory: bool, also return every intermediate image.
            use_ema: bool, denoise with the EMA weights. Defaults to True.
            batch_size: int or None, images per compiled call (default up to 64).
            strength: float in (0, 1] or None, SDEdit's strength, instead of
                `t`: 1 starts from (almost) pure noise, 0.3 keeps the image's
                layout and redraws its details.
            labels: for a class-conditional model, as in `generate` (one per
                image, or an int for all).
            guidance_scale: float, as in `generate`. Defaults to 1.0.

        Returns:
            float32 numpy images `(N, H, W, C)` in [-1, 1] (and the trajectory,
            starting with the noised images, when `return_trajectory=True`).

        Raises:
            ValueError: for images of the wrong shape or dtype, `t` outside
                [0, T − 1], `strength` outside (0, 1], both or neither of
                them, or `steps` outside [1, t + 1].

        Example:

        ```python
        import numpy as np
        import keras_ddpm as kd

        net = kd.models.build_unet(image_size=16, widths=(16, 32), block_depth=1)
        model = kd.DiffusionModel(net, schedule="cosine")
        images = kd.datasets.synthetic_flowers(4, image_size=16) * 2 - 1
        restored = model.reconstruct(images, t=300, sampler="ddim", steps=20, seed=0)
        edited = model.reconstruct(images, strength=0.5, sampler="ddim", steps=20, seed=0)
        ```

        References:
            - [Meng et al., 2022. SDEdit: Guided Image Synthesis and Editing
              with Stochastic Differential Equations](https://arxiv.org/abs/2108.01073)
        """
        t = inputs.reconstruction_timestep(t, strength, self.schedule.timesteps)
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
            conditioning=conditioning_lib.sampling_conditioning(
                self, labels, guidance_scale, len(x_t)
            ),
        )

    def inpaint(
        self,
        images,
        mask,
        sampler="ddpm",
        steps=None,
        jump_length=10,
        jump_n_sample=10,
        seed=None,
        return_trajectory=False,
        use_ema=True,
        batch_size=None,
    ):
        """Fill in the masked-out region of images: RePaint (Lugmayr et al. 2022).

        `mask` is 1 where a pixel is kept and 0 where it is filled in. The
        reverse process runs with the sampler's steps, and after every step
        the kept pixels are replaced by the original image noised to that
        step, so the filled region grows around them. To let the two agree,
        every `jump_length` steps the whole image is noised back up
        `jump_length` steps and denoised again, until each stretch has been
        walked `jump_n_sample` times: about `jump_n_sample` times the network
        evaluations of `generate`. `jump_n_sample=1` is plain replacement. The
        whole walk, jumps included, is one compiled program, reused for new
        images and masks of the same shape.

        Args:
            images: float array `(N, H, W, C)` in [-1, 1], the originals.
            mask: array broadcastable to `images`: `(H, W)`, `(H, W, 1)`,
                `(H, W, C)`, `(N, H, W, 1)` or `(N, H, W, C)`, with 1 = keep
                the pixel, 0 = fill it in. Values in between blend the two
                (a soft edge).
            sampler: a sampler of the linear step rule: `"ddpm"` or `"ddim"`
                (any η), as a name, config or instance. Defaults to `"ddpm"`,
                RePaint's.
            steps: int or None, the sampler's steps (None: its default: 1000
                for DDPM, 50 for DDIM).
            jump_length: int >= 1, steps per jump back. Defaults to 10.
            jump_n_sample: int >= 1, walks over each stretch. Defaults to 10.
            seed: int or None, the seed of every noise drawn.
            return_trajectory: bool, also return x after every transition
                (reverse steps and jumps). Defaults to False.
            use_ema: bool, denoise with the EMA weights. Defaults to True.
            batch_size: int or None, images per compiled call (default up to 64).

        Returns:
            float32 numpy images `(N, H, W, C)` in [-1, 1], equal to `images`
            where the mask is 1 (and the trajectory when asked).

        Raises:
            ValueError: for images of the wrong shape or outside [-1, 1], a mask
                that does not broadcast to them or has values outside [0, 1], a
                sampler with its own step rule (DPM-Solver++, Euler, Heun), or
                a `jump_length` longer than the steps.

        Example:

        ```python
        import numpy as np
        import keras_ddpm as kd

        net = kd.models.build_unet(image_size=16, widths=(16, 32), block_depth=1)
        model = kd.DiffusionModel(net, schedule="cosine")
        images = kd.datasets.synthetic_flowers(2, image_size=16) * 2 - 1
        mask = np.ones((16, 16, 1), "float32")
        mask[4:12, 4:12] = 0  # fill in the centre
        filled = model.inpaint(images, mask, sampler="ddim", steps=20, jump_length=5,
                               jump_n_sample=2, seed=0)
        ```

        References:
            - [Lugmayr et al., 2022. RePaint: Inpainting using Denoising
              Diffusion Probabilistic Models](https://arxiv.org/abs/2201.09865)
        """
        sampler = inpainting.check_linear_sampler(samplers_lib.get(sampler))
        steps = check_int("steps", steps, low=1, allow_none=True)
        known, mask = inputs.inpainting_inputs(images, mask, self.image_shape)
        seed = inputs.seed_or_random(seed)
        program = sampling.inpainting_program(
            self, sampler, steps, jump_length, jump_n_sample, return_trajectory
        )
        x = inputs.initial_noise(self.image_shape, len(known), seed)
        return sampling.sample(
            self,
            x,
            sampler=sampler,
            steps=steps,
            seed=seed,
            return_trajectory=return_trajectory,
            use_ema=use_ema,
            batch_size=batch_size,
            conditioning={"known": known, "mask": mask},
            program=program,
        )

    def interpolate(
        self,
        seed_a=None,
        seed_b=None,
        num=8,
        sampler=None,
        steps=None,
        noise_a=None,
        noise_b=None,
        use_ema=True,
        batch_size=None,
    ):
        """A walk between two samples: spherical interpolation of their initial noise.

        The two starting noises (drawn from `seed_a` and `seed_b` as `generate`
        draws them, or given) are joined by the great-circle arc
        z(λ) = sin((1 − λ)θ)/sin θ · z_a + sin(λθ)/sin θ · z_b, θ the angle
        between them, at `num` evenly spaced λ from 0 to 1, and each point is
        sampled with a deterministic sampler. Unlike a straight line, the arc
        keeps every point's norm that of Gaussian noise, so each frame is a
        plausible sample; the first and last frames are
        `generate(1, seed=seed_a)` and `generate(1, seed=seed_b)` (same
        sampler and steps).

        Args:
            seed_a: int or None, the seed of the first sample's noise.
            seed_b: int or None, the seed of the last sample's noise.
            num: int >= 2, frames, both ends included. Defaults to 8.
            sampler: a deterministic sampler (name, config or instance): DDIM
                with η = 0, DPM-Solver++, Euler or Heun. None uses the model's
                default when it is deterministic, else DDIM.
            steps: int or None, the sampler's steps (None: its default).
            noise_a: float array `(H, W, C)` or `(1, H, W, C)`, the first
                noise instead of `seed_a`.
            noise_b: the last noise instead of `seed_b`, likewise.
            use_ema: bool, sample with the EMA weights. Defaults to True.
            batch_size: int or None, images per compiled call (default up to 64).

        Returns:
            float32 numpy images `(num, H, W, C)` in [-1, 1], in order along
            the walk.

        Raises:
            ValueError: for `num` < 2, a stochastic sampler (DDPM, DDIM with
                η > 0), both or neither of a seed and a noise for an end, or
                noise of the wrong shape or with NaN / infinite values.

        Example:

        ```python
        import keras_ddpm as kd

        net = kd.models.build_unet(image_size=16, widths=(16, 32), block_depth=1)
        model = kd.DiffusionModel(net, schedule="cosine")
        frames = model.interpolate(0, 1, num=6, sampler="ddim", steps=10)  # (6, 16, 16, 3)
        ```

        References:
            - [White, 2016. Sampling Generative Networks](https://arxiv.org/abs/1609.04468)
            - [Song et al., 2021. Denoising Diffusion Implicit Models, §5.3](https://arxiv.org/abs/2010.02502)
        """
        num = check_int("num", num, low=2)
        sampler = sampling.deterministic_sampler(self, sampler, steps)
        ends = [
            inputs.end_noise(self.image_shape, name, seed, noise)
            for name, seed, noise in (("a", seed_a, noise_a), ("b", seed_b, noise_b))
        ]
        x = inputs.slerp(ends[0], ends[1], np.linspace(0.0, 1.0, num))
        return sampling.sample(
            self,
            x,
            sampler=sampler,
            steps=steps,
            seed=0,  # a deterministic sampler draws no noise
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
