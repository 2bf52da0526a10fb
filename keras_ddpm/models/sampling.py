"""Sampling orchestration: one compiled program per setting, run chunk by chunk.

`DiffusionModel.generate`, `reconstruct` and `evaluate_nll`, the web demo and
the metrics' encoders all go through here, so that the compile cache, the
padding of the last chunk, the per-chunk noise seeds and the progress bar exist
once:

- `compiled(model, key, build)`: the cache of compiled programs, keyed by
  everything that changes the program (sampler, steps, start, trajectory, jit);
- `keras_ddpm.utils.padded_chunks(arrays, batch_size)`: fixed-size chunks, the
  last one padded, so that one compiled program serves every chunk;
- `sample_chunks(model, x, ...)`: the reverse process over `x`, a chunk at a
  time, each chunk with its own noise stream (`noise_seed_state(seed, chunk)`);
- `sample(model, x, ...)`: the same, gathered into arrays.

Conditioning travels as a dict of tensors that the compiled program takes as an
argument, so that new values (labels, a guidance scale, a mask) reuse it. Its
arrays with a leading dimension of `len(x)` are split into chunks with the
images; scalars are passed whole.
"""

import keras
import numpy as np
from keras import ops

from keras_ddpm import samplers as samplers_lib
from keras_ddpm.models import autoguidance, guidance_interval, inpainting
from keras_ddpm.models.trainers import get_trainer
from keras_ddpm.samplers.sampler import noise_seed_generator, noise_seed_state
from keras_ddpm.utils import check_int, padded_chunks

__all__ = ["use_jit", "sample_chunks", "sample", "x0_predictor"]

DEFAULT_BATCH_SIZE = 64
# The model's attribute holding its compiled programs. The programs call the
# model, so a cache outside it (a weak-keyed dict, say) would keep every model
# that ever sampled, its guide and its programs alive for the whole process;
# on the model, they form a cycle that Python's garbage collector frees with it.
PROGRAMS = "_sampling_programs"


def use_jit(model):
    """Whether a model's sampling programs compile with XLA.

    Always on JAX (`jax.jit`); on TensorFlow when the model was compiled with
    `jit_compile=True` (else a `tf.function` graph, faster on CPUs); PyTorch
    runs eagerly.

    Args:
        model: a compiled or uncompiled `keras.Model`.

    Returns:
        bool.

    Example:

    ```python
    import keras_ddpm as kd
    from keras_ddpm.models import sampling

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    sampling.use_jit(model)  # True on JAX; False on TensorFlow unless jit_compile=True
    ```
    """
    if keras.backend.backend() == "jax":
        return True
    # Read without resolving Keras' "auto", which would mean XLA on a TF CPU.
    return bool(getattr(model, "_jit_compile", None))


def compiled(model, key, build):
    """The program cached under `key` for `model`, built by `build()` the first time.

    The cache lives as long as the model does.

    Args:
        model: the model the program belongs to.
        key: hashable, everything that changes the program.
        build: callable returning the compiled program.

    Returns:
        The cached program.
    """
    programs = programs_of(model)
    if key not in programs:
        programs[key] = build()
    return programs[key]


def programs_of(model):
    """`model`'s cache of compiled programs, `{key: program}` (created empty).

    Kept in the model's own `__dict__`, past Keras' attribute tracking (which
    would wrap the dict and save nothing of it anyway), so that it lives and
    dies with the model.
    """
    programs = vars(model).get(PROGRAMS)
    if programs is None:
        programs = {}
        object.__setattr__(model, PROGRAMS, programs)
    return programs


def _sampling_program(model, sampler, steps, start, return_trajectory, names, guide):
    jit = use_jit(model)

    def run(weights, non_trainable, x, seed_state, conditioning):
        conditioning, interval = guidance_interval.split(conditioning)
        if guide is None:

            def denoise(x_t, t):
                return model.denoise(weights, non_trainable, x_t, t, conditioning)

        else:
            denoise = autoguidance.guided_denoiser(
                model, guide, weights, non_trainable, conditioning
            )
        if interval is not None:
            own = (weights, non_trainable)
            if guide is not None:
                own = (weights[0], non_trainable[0])
            unguided = {
                name: value
                for name, value in conditioning.items()
                if name not in ("guidance_scale", autoguidance.SCALE_KEY)
            }

            def plain(x_t, t):
                return model.denoise(*own, x_t, t, unguided or None)

            denoise = guidance_interval.limited(denoise, plain, interval)

        return sampler.sample(
            denoise,
            x,
            model.schedule,
            steps=steps,
            seed=seed_state,
            start=start,
            return_trajectory=return_trajectory,
        )

    key = ("sample", sampler, steps, start, return_trajectory, names, jit, guide)
    return compiled(model, key, lambda: get_trainer().compile_sampling(run, jit))


def _split_conditioning(conditioning, num):
    per_image, shared = {}, {}
    for name, value in (conditioning or {}).items():
        value = np.asarray(value)
        if value.ndim == 0:
            shared[name] = value
        elif value.shape[0] == num:
            per_image[name] = value
        else:
            raise ValueError(
                f"Conditioning `{name}` must be a scalar or have {num} rows (one per "
                f"image), got shape {value.shape}."
            )
    return per_image, shared


def sample_chunks(
    model,
    x,
    sampler=None,
    steps=None,
    start=None,
    seed=0,
    return_trajectory=False,
    use_ema=True,
    batch_size=None,
    conditioning=None,
    progress=False,
    program=None,
    guide=None,
):
    """Run the reverse process from `x`, one compiled call per chunk.

    Chunk `c` draws its noise from `noise_seed_state(seed, c)`, so chunks
    never share noise, and the images of a call depend on `batch_size` only
    through which chunk they fall in.

    Args:
        model: a `DiffusionModel`.
        x: float32 numpy array `(N, H, W, C)`, x at the first visited timestep.
        sampler: a sampler name, config or instance; None: the model's default.
        steps: int or None, as in `Sampler.timesteps`.
        start: int or None, the first timestep (None: T − 1).
        seed: int >= 0, the call's noise seed.
        return_trajectory: bool, also yield every intermediate x.
        use_ema: bool, sample with the EMA weights. Defaults to True.
        batch_size: int or None, images per compiled call (None: up to 64).
        conditioning: dict of arrays passed to `model.denoise` (see the
            module); bounds under `guidance_interval.LOW_KEY` and `HIGH_KEY`
            limit the guidance to the timesteps between them.
        progress: bool, show a progress bar over the images.
        program: a compiled program `(weights, non_trainable, x, seed_state,
            conditioning) -> x0 or (x0, trajectory)` to run instead of the
            sampler's own loop (inpainting runs its walk this way).
        guide: a `DiffusionModel` guiding this one (autoguidance; see
            `keras_ddpm.models.autoguidance`), its scale in `conditioning`
            under `"guide_scale"`; it samples with its EMA weights as
            `use_ema` says. None: no guide.

    Yields:
        `(begin, images, trajectory)` per chunk: the first image's index, the
        chunk's float32 images (unclipped, padding removed) and its trajectory
        `(steps + 1, size, H, W, C)` or None.

    Raises:
        ValueError: for bad `steps`, `start`, `batch_size` or conditioning.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd
    from keras_ddpm.models import sampling

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    x = np.random.default_rng(0).standard_normal((5, 8, 8, 3)).astype("float32")
    for begin, images, _ in sampling.sample_chunks(model, x, steps=3, batch_size=2):
        print(begin, images.shape)  # 0 (2, 8, 8, 3), 2 (2, 8, 8, 3), 4 (1, 8, 8, 3)
    ```
    """
    sampler = model.sampler if sampler is None else samplers_lib.get(sampler)
    steps = check_int("steps", steps, low=1, allow_none=True)
    batch_size = check_int("batch_size", batch_size, low=1, allow_none=True)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    sampler.timesteps(model.schedule, steps, start)  # validates before compiling
    per_image, shared = _split_conditioning(conditioning, len(x))
    names = (tuple(sorted(per_image)), tuple(sorted(shared)))
    noise_seed_generator()  # created eagerly, never inside the compiled loop
    if program is None:
        program = _sampling_program(
            model, sampler, steps, start, return_trajectory, names, guide
        )
    weights = model.sampling_weights(use_ema)
    non_trainable = [v.value for v in model.network.non_trainable_variables]
    if guide is not None:
        weights = (weights, guide.sampling_weights(use_ema))
        non_trainable = (
            non_trainable,
            [v.value for v in guide.network.non_trainable_variables],
        )
    seed_dtype = noise_seed_generator().state.dtype
    shared = {k: ops.convert_to_tensor(v) for k, v in shared.items()}
    bar = keras.utils.Progbar(len(x), unit_name="image") if progress else None
    arrays = [x] + [per_image[name] for name in names[0]]
    for chunk, (begin, size, parts) in enumerate(padded_chunks(arrays, batch_size)):
        conditioning = dict(shared)
        conditioning.update(
            {k: ops.convert_to_tensor(v) for k, v in zip(names[0], parts[1:])}
        )
        state = ops.convert_to_tensor(noise_seed_state(seed, chunk), dtype=seed_dtype)
        result = program(
            weights, non_trainable, ops.convert_to_tensor(parts[0]), state, conditioning
        )
        trajectory = None
        if return_trajectory:
            result, trajectory = result
            trajectory = ops.convert_to_numpy(trajectory)[:, :size]
        if bar is not None:
            bar.add(size)
        yield begin, ops.convert_to_numpy(result)[:size], trajectory


def sample(model, x, return_trajectory=False, **kwargs):
    """`sample_chunks` gathered: float32 images clipped to [-1, 1] (and the trajectory).

    Args:
        model: a `DiffusionModel`.
        x: float32 numpy array `(N, H, W, C)`.
        return_trajectory: bool, also return every intermediate x, `(steps + 1, N, ...)`.
        **kwargs: the other arguments of `sample_chunks`.

    Returns:
        The images, or `(images, trajectory)`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd
    from keras_ddpm.models import sampling

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    x = np.random.default_rng(0).standard_normal((3, 8, 8, 3)).astype("float32")
    images = sampling.sample(model, x, sampler="ddim", steps=4, seed=1)  # (3, 8, 8, 3)
    ```
    """
    images, trajectories = [], []
    for _, part, trajectory in sample_chunks(
        model, x, return_trajectory=return_trajectory, **kwargs
    ):
        images.append(part)
        trajectories.append(trajectory)
    images = np.clip(np.concatenate(images), -1.0, 1.0).astype("float32")
    if not return_trajectory:
        return images
    trajectory = np.concatenate(trajectories, axis=1)
    return images, np.clip(trajectory, -1.0, 1.0).astype("float32")


def inpainting_program(model, sampler, steps, jump_length, jump_n_sample, trajectory):
    """The compiled RePaint walk for `model`, cached like the sampling programs.

    The program takes the original images and the mask in its conditioning
    (`"known"`, `"mask"`), so new images and masks of the same shape reuse it.
    """
    jit = use_jit(model)

    def build():
        # The tables become tensors once, when the program is first built.
        tables = {
            k: ops.convert_to_tensor(v)
            for k, v in inpainting.repaint_tables(
                sampler, model.schedule, steps, jump_length, jump_n_sample
            ).items()
        }

        def run(weights, non_trainable, x, seed_state, conditioning):
            conditioning = dict(conditioning)
            known, mask = conditioning.pop("known"), conditioning.pop("mask")

            def denoise(x_t, t):
                return model.denoise(weights, non_trainable, x_t, t, conditioning)

            return inpainting.repaint_loop(
                sampler, denoise, x, known, mask, tables, seed_state, trajectory
            )

        return get_trainer().compile_sampling(run, jit)

    key = ("inpaint", sampler, steps, jump_length, jump_n_sample, trajectory, jit)
    return compiled(model, key, build)


def deterministic_sampler(model, sampler, steps):
    """`sampler` (or the model's default, else DDIM), refused if it draws noise."""
    if sampler is None:
        sampler = model.sampler
        if not sampler.is_deterministic(model.schedule, steps):
            return samplers_lib.get("ddim")
        return sampler
    sampler = samplers_lib.get(sampler)
    if not sampler.is_deterministic(model.schedule, steps):
        raise ValueError(
            "`interpolate` needs a deterministic sampler (DDIM with eta=0, "
            f"dpm_solver, euler or heun), got {type(sampler).__name__}"
            + (f" with eta={sampler.eta}" if hasattr(sampler, "eta") else "")
            + "."
        )
    return sampler


def x0_predictor(model, use_ema=True):
    """A compiled `(x_t, t) -> x0_hat` with per-image timesteps, for the likelihood.

    Args:
        model: a `DiffusionModel`.
        use_ema: bool, use the EMA weights. Defaults to True.

    Returns:
        A callable over tensors `(B, H, W, C)` and `(B,)`.

    Example:

    ```python
    import numpy as np
    import keras_ddpm as kd
    from keras_ddpm.models import sampling

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    predict = sampling.x0_predictor(model)
    x0_hat = predict(np.zeros((2, 8, 8, 3), "float32"), np.array([5.0, 10.0], "float32"))
    ```
    """
    jit = use_jit(model)
    program = compiled(
        model,
        ("x0_prediction", jit),
        lambda: get_trainer().compile_sampling(
            lambda w, n, x, t: model.denoise(w, n, x, t)[0], jit
        ),
    )
    weights = model.sampling_weights(use_ema)
    non_trainable = [v.value for v in model.network.non_trainable_variables]
    return lambda x_t, t: program(
        weights,
        non_trainable,
        ops.convert_to_tensor(x_t, "float32"),
        ops.convert_to_tensor(t, "float32"),
    )
