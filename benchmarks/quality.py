"""Sample quality per wall-clock minute: train recipes for a fixed time, score FID.

Each run calls `kd.training.train` on `synthetic_flowers` with a time budget
(`minutes`), then samples with the model's EMA weights and scores FID under the
shipped flowers encoder (`kd.metrics.flowers_encoder`) against held-out real
flowers, drawn from a seed the training set never uses. The floor (real vs
other real flowers at the same sample size), a Gaussian fitted to the training
pixels and uniform noise are scored in the same run, so every number has its
yardsticks beside it.

    KERAS_BACKEND=tensorflow python benchmarks/quality.py --minutes 3 \\
        --configs defaults small small-lognormal --seeds 0 1 \\
        --out benchmarks/results/quality-cpu-tensorflow.json

`--epochs N` trains each run for N epochs instead (the same optimizer steps
for every row, whatever the machine's speed at the time): on a shared machine
the steps a time budget buys vary from run to run, and at a few thousand steps
that moves FID as much as the changes being compared.

`--append` adds runs to an existing file measured with the same settings.
`python benchmarks/make_table.py benchmarks/results/*.json` turns the records
into the tables of `docs/benchmarks.md`.
"""

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time

import keras
import numpy as np

import keras_ddpm as kd
from keras_ddpm.utils import atomic_path

IMAGE_SIZE = 32
REAL_SEED = 2024  # held out: training uses seed 0's images
TRAIN_IMAGES = 4096
# The sample size of most rows: runs that score more also score this many.
COMPARED_SAMPLES = 256

# The ablation: "defaults" is the training recipe as it stood before this
# benchmark chose it, written out in full so that later changes of the recipe
# leave these rows alone; "small" changes its network; every other row changes
# one thing of "small".
DEFAULTS_BEFORE = {
    "widths": (32, 64, 128),
    "block_depth": 2,
    # The lowest-resolution level, the recipe's default until cosine-attn16.
    "attention_levels": (2,),
    # Glorot-uniform residual branches: the recipe's default (depth2-zeroinit lost).
    "zero_init_residual": False,
    # Time embedding added before the second normalization: the recipe's
    # default (depth2-scaleshift won two seeds of three, within the spread).
    "scale_shift": False,
    "prediction": "v",
    "learning_rate": 1e-3,
    # AdamW's second-moment decay: the recipe's default.
    "beta_2": 0.999,
    "learning_rate_schedule": "constant",
    "warmup_steps": 0,
    "batch_size": 16,
    "noise_levels": "uniform",
    "min_snr_gamma": None,
    "ema_momentum": 0.999,
    # Every row up to b8-ema0.995 trained a TensorFlow graph without XLA.
    "jit_compile": False,
}
SMALL = {**DEFAULTS_BEFORE, "widths": (32, 64, 96), "block_depth": 1}
CONFIGS = {
    "defaults": DEFAULTS_BEFORE,
    "small": SMALL,
    "small-lr2e-3": {**SMALL, "learning_rate": 2e-3, "warmup_steps": 100},
    "small-cosine": {**SMALL, "learning_rate_schedule": "cosine", "warmup_steps": 100},
    "small-lognormal": {**SMALL, "noise_levels": "lognormal"},
    "small-batch32": {**SMALL, "batch_size": 32},
    "small-minsnr": {**SMALL, "min_snr_gamma": 5.0},
    # The larger network with the winning learning rate: whether the smaller
    # network's lead at 3 minutes holds at the main job's 8.5.
    "defaults-lr2e-3": {**DEFAULTS_BEFORE, "learning_rate": 2e-3, "warmup_steps": 100},
}
# Rows that change one thing of the recipe as the rows above chose it.
RECIPE = CONFIGS["small-lr2e-3"]
CONFIGS.update(
    {
        "lr2e-3-ema0.9995": {**RECIPE, "ema_momentum": 0.9995},
        "lr2e-3-cosine": {**RECIPE, "learning_rate_schedule": "cosine"},
        "lr2e-3-minsnr": {**RECIPE, "min_snr_gamma": 5.0},
        # Smaller networks: more steps in the same time.
        "lr2e-3-w16": {**RECIPE, "widths": (16, 32, 64)},
        "lr2e-3-w24": {**RECIPE, "widths": (24, 48, 72)},
    }
)
# Rows that change one thing of the recipe with the smaller network.
W16 = CONFIGS["lr2e-3-w16"]
CONFIGS["w16-lr4e-3"] = {**W16, "learning_rate": 4e-3}
# Batch 8: about as many images per second as batch 16 on two cores, in
# nearly twice the optimizer steps.
CONFIGS["w16-batch8"] = {**W16, "batch_size": 8}
# Rows that change one thing of the recipe at batch 8.
B8 = CONFIGS["w16-batch8"]
CONFIGS["b8-ema0.995"] = {**B8, "ema_momentum": 0.995}
# The recipe's measured choice of XLA (on 2 AVX2 cores it picks XLA, whose
# step ran 1.3-1.4 times as fast), with datasets.load's tf.data autotuning
# off (before, epochs could start up to 41 s late).
CONFIGS["b8-auto-jit"] = {**B8, "jit_compile": "auto"}
# Rows that change one thing of the recipe with its measured XLA choice.
B8X = CONFIGS["b8-auto-jit"]
CONFIGS["b8x-cosine"] = {**B8X, "learning_rate_schedule": "cosine"}
CONFIGS["b8x-lognormal"] = {**B8X, "noise_levels": "lognormal"}
# A fourth level at 4×4 (with the attention): a wider view for the flower's
# shape and colour, at little cost per step (its convolutions see 16 pixels).
CONFIGS["b8x-4levels"] = {
    **B8X,
    "widths": (16, 32, 64, 128),
    "attention_levels": (3,),
}
# The two changes that won a seed each, together.
CONFIGS["b8x-cosine-lognormal"] = {
    **B8X,
    "learning_rate_schedule": "cosine",
    "noise_levels": "lognormal",
}
# Rows that change one thing of the cosine recipe (the default since b8x-cosine).
COSINE = CONFIGS["b8x-cosine"]
# Half the batch again: batch 8 beat 16 at equal time, and a step of 4 costs
# well over half a step of 8 on two cores, so it buys more, noisier steps.
CONFIGS["b4x-cosine"] = {**COSINE, "batch_size": 4}
# A wider network: 16/32/64 won at about 2,500 steps; a machine that makes
# 15,000 in the same time may be held back by the network's size instead.
CONFIGS["cosine-w32"] = {**COSINE, "widths": (32, 64, 96)}
# Self-attention at 16×16 too: the whole flower in view at the level that
# draws its petals. It won both seeds and was the recipe's default until
# attn16-depth2.
CONFIGS["cosine-attn16"] = {**COSINE, "attention_levels": (1, 2)}
# A higher peak learning rate: with the decay to 0 the end of the run is
# calm whatever the peak, and 4e-3 edged 2e-3 on both seeds at a constant
# rate (w16-lr4e-3).
CONFIGS["cosine-lr4e-3"] = {**COSINE, "learning_rate": 4e-3}
# Rows that change one thing of the attention-at-16×16 recipe (the default
# from cosine-attn16 to attn16-depth2). More capacity at 1.26× the step
# time: wider levels.
ATTN16 = CONFIGS["cosine-attn16"]
CONFIGS["attn16-w24"] = {**ATTN16, "widths": (24, 48, 96)}
# Two residual blocks per level: a deeper network at 1.8× the step time. It
# won both seeds and was the recipe's default until depth2-ema0.995.
CONFIGS["attn16-depth2"] = {**ATTN16, "block_depth": 2}
# min-SNR-γ weighting on the deeper network: it edged the defaults in three
# of four runs of an earlier recipe (lr2e-3-minsnr), at no cost per step.
DEPTH2 = CONFIGS["attn16-depth2"]
CONFIGS["depth2-minsnr"] = {**DEPTH2, "min_snr_gamma": 5.0}
# Residual branches that start at zero (each block starts as its skip path),
# as in Dhariwal & Nichol's U-Net, at no cost per step. It lost both seeds.
CONFIGS["depth2-zeroinit"] = {**DEPTH2, "zero_init_residual": True}
# Adaptive group normalization: the time embedding scales and shifts each
# block's normalised features (Dhariwal & Nichol), with 4 % more parameters.
# It won two seeds of three, in about 7 % fewer steps; not the default.
CONFIGS["depth2-scaleshift"] = {**DEPTH2, "scale_shift": True}
# Three residual blocks per level: 1.5× the step time; lost one seed, tied one.
CONFIGS["attn16-depth3"] = {**DEPTH2, "block_depth": 3}
# AdamW's second moment over ~100 steps: won two seeds of three; not the default.
CONFIGS["depth2-beta0.99"] = {**DEPTH2, "beta_2": 0.99}
# The network predicts the noise ε (Ho et al.), not v: three times the FID.
CONFIGS["depth2-epsilon"] = {**DEPTH2, "prediction": "epsilon"}
# A shorter EMA (about 200 steps): the raw weights of the rows above scored
# better than their 0.999 average in most runs, and as well as this one. It is
# the recipe's default now.
CONFIGS["depth2-ema0.995"] = {**DEPTH2, "ema_momentum": 0.995}


def processor_name():
    """The CPU's model name and widest vector unit (Linux), else what `platform` knows.

    The name alone does not tell machines apart: "AMD EPYC" has been seen
    both with and without AVX-512, at different speeds.
    """
    name = flags = None
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name") and name is None:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and flags is None:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    if name is None:
        return platform.processor() or platform.machine()
    flags = flags or ()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    return f"{name} ({vector})" if vector else name


def block_depths(network):
    """The residual blocks per level of a `build_unet` network: an int, or one per level."""
    depths = [
        layer.block_depth
        for layer in network.layers
        if isinstance(layer, kd.layers.DownBlock)
    ]
    return depths[0] if len(set(depths)) == 1 else depths


def machine(conditions):
    """What a result file says about where it was measured."""
    return {
        "processor": processor_name(),
        "cores": os.cpu_count(),
        "backend": keras.backend.backend(),
        "conditions": conditions,
    }


def save_records(path, records):
    """Write a results file whole (its folder made), so a cut run leaves the last one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as temporary, open(temporary, "w") as file:
        json.dump(records, file, indent=1)


def fid(encoder, real_stats, images):
    metric = kd.metrics.FrechetInceptionDistance(feature_extractor=encoder)
    metric.set_reference(real_stats)
    metric.update_state(generated=images)
    return float(metric.result())


def baselines(encoder, real_stats, num):
    """FID of other real flowers (the floor), a pixel Gaussian and noise, at `num` images."""
    rng = np.random.default_rng(7)
    train = kd.datasets.synthetic_flowers(TRAIN_IMAGES, IMAGE_SIZE, seed=0) * 2 - 1
    flat = train.reshape(len(train), -1).astype(np.float64)
    mean, cov = flat.mean(0), np.cov(flat, rowvar=False)
    gaussian = rng.multivariate_normal(mean, cov, size=num, method="cholesky")
    gaussian = np.clip(gaussian, -1, 1).reshape((num,) + train.shape[1:])
    other_real = (
        kd.datasets.synthetic_flowers(num, IMAGE_SIZE, seed=REAL_SEED + 1) * 2 - 1
    )
    noise = rng.uniform(-1, 1, (num,) + train.shape[1:])
    return {
        "floor": fid(encoder, real_stats, other_real.astype("float32")),
        "gaussian": fid(encoder, real_stats, gaussian.astype("float32")),
        "noise": fid(encoder, real_stats, noise.astype("float32")),
    }


def train_for(budget, seed, **config):
    """`kd.training.train` for a budget in a scratch folder: its result and wall seconds.

    `budget` is `{"minutes": m}` or `{"epochs": n}`.
    """
    with tempfile.TemporaryDirectory() as folder:
        start = time.monotonic()
        result = kd.training.train(
            os.path.join(folder, "run"),
            seed=seed,
            verbose=0,
            **budget,
            **config,
        )
        return result, time.monotonic() - start


def run(name, config, budget, seed, encoder, real_stats, num, sampler, steps):
    result, trained = train_for(budget, seed, sample_steps=steps, **config)
    model = result.model
    images = model.generate(num, sampler=sampler, steps=steps, seed=seed + 100)
    raw = model.generate(
        num, sampler=sampler, steps=steps, seed=seed + 100, use_ema=False
    )
    return {
        "config": name,
        "settings": {
            k: list(v) if isinstance(v, tuple) else v for k, v in config.items()
        },
        "seed": seed,
        "minutes": budget.get("minutes"),
        "epoch_budget": budget.get("epochs"),
        "wall_seconds": round(trained, 1),
        "optimizer_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "epochs": len(result.history["loss"]),
        "final_loss": float(result.history["loss"][-1]),
        "parameters": int(model.network.count_params()),
        "sampler": sampler,
        "sample_steps": steps,
        "num_images": num,
        "fid": fid(encoder, real_stats, images),
        # The same samples from the raw (not averaged) weights.
        "fid_raw_weights": fid(encoder, real_stats, raw),
        # With more samples, also the score of the first COMPARED_SAMPLES of
        # them, comparable with the rows scored at that sample size.
        **(
            {
                f"fid_first_{COMPARED_SAMPLES}": fid(
                    encoder, real_stats, images[:COMPARED_SAMPLES]
                ),
                f"fid_raw_weights_first_{COMPARED_SAMPLES}": fid(
                    encoder, real_stats, raw[:COMPARED_SAMPLES]
                ),
            }
            if num > COMPARED_SAMPLES
            else {}
        ),
    }


def reference_statistics(encoder, num_real):
    extractor = kd.metrics.FeatureExtractor(feature_extractor=encoder)
    real = kd.datasets.synthetic_flowers(num_real, IMAGE_SIZE, seed=REAL_SEED) * 2 - 1
    return extractor.statistics(real.astype("float32"))


def run_in_process(name, budget, seed, num_real, num, sampler, steps):
    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    real_stats = reference_statistics(encoder, num_real)
    return run(
        name, CONFIGS[name], budget, seed, encoder, real_stats, num, sampler, steps
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training budget (default: 3)")
    budget.add_argument(
        "--epochs", type=int, help="train each run this many epochs instead of minutes"
    )
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--num", type=int, default=500, help="generated images")
    parser.add_argument("--real", type=int, default=2000, help="held-out real images")
    parser.add_argument("--sampler", default="dpm_solver")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--append",
        action="store_true",
        help="add the runs to those of --out (same budget, sampler and sample sizes)",
    )
    parser.add_argument(
        "--conditions", default="", help="free text: the machine's load"
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be a positive int, got {args.epochs}")
    if args.minutes is not None and not args.minutes > 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    budget = (
        {"epochs": args.epochs}
        if args.epochs is not None
        else {"minutes": args.minutes if args.minutes is not None else 3.0}
    )
    unknown = sorted(set(args.configs) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; known: {sorted(CONFIGS)}")

    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    real_stats = reference_statistics(encoder, args.real)
    records = {
        "machine": machine(args.conditions),
        "real_images": args.real,
        "baselines": baselines(encoder, real_stats, args.num),
        "runs": [],
    }
    if args.append and os.path.exists(args.out):
        with open(args.out) as file:
            before = json.load(file)
        same = {
            (
                run["minutes"],
                run.get("epoch_budget"),
                run["sampler"],
                run["sample_steps"],
                run["num_images"],
            )
            for run in before["runs"]
        }
        wanted = (budget.get("minutes"), budget.get("epochs"))
        if same != {wanted + (args.sampler, args.steps, args.num)}:
            parser.error(f"--append: {args.out} was measured with other settings")
        if before["real_images"] != args.real:
            parser.error(
                f"--append: {args.out} used {before['real_images']} real images"
            )
        records["runs"] = before["runs"]
    print(json.dumps(records["baselines"]), flush=True)
    context = multiprocessing.get_context("spawn")
    for name in args.configs:
        for seed in args.seeds:
            # A fresh process per run, as a user's run would be: traces and
            # graphs left by earlier runs would slow the next one down.
            with context.Pool(1) as pool:
                record = pool.apply(
                    run_in_process,
                    (name, budget, seed, args.real, args.num),
                    {"sampler": args.sampler, "steps": args.steps},
                )
            records["runs"].append(record)
            print(json.dumps(record), flush=True)
            save_records(args.out, records)
    return records


if __name__ == "__main__":
    main()
