"""What the benchmarks time: the library's paths and the baselines they are compared with.

Every function here is backend-agnostic (Keras ops, `keras.Model.fit`, and the
library's own per-backend sampling compiler), so the same code measures
TensorFlow, JAX and PyTorch.
"""

import argparse
import contextlib
import shlex
import sys
import time

import keras
import numpy as np
from keras import ops

import keras_ddpm as kd
from keras_ddpm.models.sampling import use_jit
from keras_ddpm.models.trainers import get_trainer

# Widths of the networks benchmarked: a keras.io-DDIM-sized U-Net by default, the
# U-Net of the flowers job (46.9 M parameters) with --full.
SMALL_WIDTHS = (32, 64, 96, 128)
FULL_WIDTHS = (64, 128, 256, 512)
BACKEND_NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow", "jax": "JAX"}


@contextlib.contextmanager
def dtype_policy(name):
    """Build and run under a global Keras dtype policy, then restore the old one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_network(image_size, widths):
    return kd.models.build_unet(image_size, widths=widths, block_depth=2)


def sync(tensor):
    """Wait for `tensor` (and all work it depends on) by reading one element to the host."""
    flat = ops.reshape(tensor, (-1,))
    return float(ops.convert_to_numpy(flat[:1])[0])


def device_name():
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}:{device.device_kind}"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
        return "cpu"
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return f"gpu:{gpus[0].name}" if gpus else "cpu"


def recorded_command(backend, args, environ):
    """The shell command that reruns a suite run: its backend, pytest arguments, XLA flags.

    XLA's flags change the code it compiles, and its speed, so a run with
    `XLA_FLAGS` set names them.
    """
    xla_flags = environ.get("XLA_FLAGS")
    prefix = f"XLA_FLAGS={shlex.quote(xla_flags)} " if xla_flags else ""
    return f"{prefix}KERAS_BACKEND={backend} python -m pytest {shlex.join(args)}"


def script_command(script, argv):
    """The shell command that reruns a benchmark script: its backend, name and arguments.

    `argv` is the arguments `main` was given, or None for the command line's.
    """
    arguments = shlex.join(sys.argv[1:] if argv is None else argv)
    return f"KERAS_BACKEND={keras.backend.backend()} python benchmarks/{script} {arguments}"


def measure_matmul_peak(dtype, size, repeats=10, trials=3):
    """Best GFLOP/s of an n×n by n×n matmul at `dtype`, compiled as the library compiles.

    Chained products keep the device busy between host calls; the best of
    `trials` is kept, as a peak should be.
    """
    rng = np.random.default_rng(0)
    a = ops.convert_to_tensor(rng.standard_normal((size, size)) / np.sqrt(size), dtype)
    b = ops.convert_to_tensor(rng.standard_normal((size, size)) / np.sqrt(size), dtype)
    jit = keras.backend.backend() == "jax"
    matmul = get_trainer().compile_sampling(ops.matmul, jit)
    sync(matmul(a, b))
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        c = a
        for _ in range(repeats):
            c = matmul(c, b)
        sync(c)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


def alternating_medians(functions, rounds):
    """Median seconds of each of `functions` (name: no-argument call), rounds alternating.

    Each round calls every function once, in order, so a machine that speeds
    up or slows down meanwhile weighs on all of them alike.
    """
    times = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def parse_step_arguments(
    argv,
    description,
    what,
    steps_help,
    rounds,
    rounds_help,
    backends=("torch",),
    steps=6,
):
    """The checked options of a script that times training steps of the suite's network.

    `--image-size`, `--batch`, `--widths` (the suite's by default), `--steps`,
    `--rounds`, `--out` and `--conditions`. A backend not in `backends`, and
    counts below 1, are refused in one line naming `what` the script does.

    Returns:
        `(parser, args)`: the parser, for the script's own checks, and the
        parsed options.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--image-size", type=int, default=32, help="(default: 32)")
    parser.add_argument("--batch", type=int, default=16, help="(default: 16)")
    parser.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=list(SMALL_WIDTHS),
        help="(default: the throughput suite's, "
        + " ".join(map(str, SMALL_WIDTHS))
        + ")",
    )
    parser.add_argument("--steps", type=int, default=steps, help=steps_help)
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument(
        "--conditions", default="", help="free text: the machine's load"
    )
    args = parser.parse_args(argv)
    if keras.backend.backend() not in backends:
        names = " or ".join(BACKEND_NAMES[name] for name in backends)
        parser.error(
            f"{what} on the {names} backend: set KERAS_BACKEND="
            + " or ".join(backends)
            + f", got {keras.backend.backend()!r}"
        )
    for name in ("image_size", "batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return parser, args


def training_data(image_size, count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (count, image_size, image_size, 3)).astype("float32")


def fit_data(inputs, target, batch):
    """`fit`'s data arguments for one epoch of `inputs` (and `target`) in batches of `batch`.

    Arrays as they are on JAX and PyTorch. On TensorFlow, the batches come
    from a `tf.data` pipeline without autotuning, as `kd.datasets.load` builds
    it: Keras turns arrays into a pipeline with autotuning, whose tuning thread
    stalls the first step of an epoch by 1.1 to 1.5 s in about a third of
    epochs on 2 CPU cores (9 of 29 epochs of 8 steps in one run; none of 29
    with autotuning off). A round of a few steps is one epoch, so that stall,
    which a user's epoch of hundreds of steps from `kd.datasets.load` never
    meets, would decide the median.
    """
    if keras.backend.backend() != "tensorflow":
        return {"x": inputs, "y": target, "batch_size": batch}
    import tensorflow as tf

    from keras_ddpm.utils import no_autotune_options

    elements = inputs if target is None else (tuple(inputs), target)
    dataset = tf.data.Dataset.from_tensor_slices(elements).batch(batch).prefetch(1)
    return {"x": dataset.with_options(no_autotune_options())}


def diffusion_fit(network, jit_compile):
    """`DiffusionModel.fit` as users call it: returns `run(images, batch)` for one epoch."""
    model = kd.DiffusionModel(network, seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(2e-4), jit_compile=jit_compile)

    def run(images, batch):
        model.fit(**fit_data(images, None, batch), epochs=1, verbose=0, shuffle=False)

    return run


def bare_fit(network, jit_compile):
    """The same network trained by plain Keras on ready-made `(x_t, t) → ε` pairs.

    Forward, MSE, backward and the same AdamW step, with no noise drawn, no
    schedule lookups, no EMA: the floor a diffusion training step is measured
    against.
    """
    network.compile(
        optimizer=keras.optimizers.AdamW(2e-4), loss="mse", jit_compile=jit_compile
    )
    prepared = {}

    def run(images, batch):
        if images.shape[0] not in prepared:
            rng = np.random.default_rng(1)
            noise = rng.standard_normal(images.shape).astype("float32")
            t = rng.integers(0, 1000, images.shape[0]).astype("float32")
            prepared[images.shape[0]] = ([images + noise, t], noise)
        inputs, target = prepared[images.shape[0]]
        network.fit(
            **fit_data(inputs, target, batch), epochs=1, verbose=0, shuffle=False
        )

    return run


def sampling_model(network, steps, jit_compile):
    """A DiffusionModel whose schedule has exactly `steps` timesteps (full DDPM)."""
    model = kd.DiffusionModel(
        network, schedule=kd.schedules.LinearSchedule(timesteps=steps), seed=0
    )
    model.compile(jit_compile=jit_compile)
    return model


def compiled_sampling(model, batch, sampler="ddpm"):
    """The library's sampling loop: `generate` over every timestep (DDPM by default)."""

    def run():
        model.generate(
            batch,
            sampler=sampler,
            steps=model.schedule.timesteps,
            seed=0,
            batch_size=batch,
        )

    return run


def bare_network_calls(model, batch, steps):
    """`steps` calls of the compiled network alone, each feeding the next: the floor."""
    jit = use_jit(model)
    network = model.network

    def forward(weights, non_trainable, x, t):
        return network.stateless_call(weights, non_trainable, [x, t], training=False)[0]

    forward = get_trainer().compile_sampling(forward, jit)
    weights = [v.value for v in network.trainable_variables]
    non_trainable = [v.value for v in network.non_trainable_variables]
    x0 = ops.convert_to_tensor(training_data(model.image_shape[0], batch))
    t = ops.convert_to_tensor(np.full((batch,), 10.0, "float32"))

    def run():
        x = x0
        for _ in range(steps):
            x = ops.cast(forward(weights, non_trainable, x, t), "float32")
        sync(x)

    return run


def eager_loop(model, batch, limit=None):
    """DDPM sampling as a straightforward Python loop: one eager network call per step.

    Ho et al. 2020, Algorithm 2, with σ_t² = β_t; this is how a notebook samples.
    With `limit`, only the first (noisiest) `limit` steps run: every step does
    the same work, so the time scales to the whole loop.
    """
    schedule = model.schedule
    betas = schedule.betas
    alphas_cumprod = schedule.alphas_cumprod
    network = model.network
    rng = np.random.default_rng(0)
    shape = (batch,) + model.image_shape

    def run():
        x = ops.convert_to_tensor(rng.standard_normal(shape).astype("float32"))
        timesteps_visited = list(reversed(range(schedule.timesteps)))
        for t in timesteps_visited[:limit]:
            timesteps = ops.full((batch,), float(t))
            eps = ops.cast(network([x, timesteps], training=False), "float32")
            coefficient = float(betas[t] / np.sqrt(1.0 - alphas_cumprod[t]))
            x = (x - coefficient * eps) / float(np.sqrt(1.0 - betas[t]))
            if t > 0:
                x = x + float(np.sqrt(betas[t])) * keras.random.normal(shape)
        sync(x)

    return run
