"""Training and sampling throughput of `DiffusionModel` on the current Keras backend.

    KERAS_BACKEND=jax python benchmarks/train_throughput.py --image-size 32 --batch-size 16

Prints images/s of `fit` steps (after a warm-up epoch that compiles) and of a
compiled DDIM sampling loop.
"""

import argparse
import time

import keras
import numpy as np

import keras_ddpm as kd


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 96, 128])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--sampling-steps", type=int, default=20)
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="compile(jit_compile=...)",
    )
    args = parser.parse_args()

    net = kd.models.build_unet(
        args.image_size, widths=tuple(args.widths), block_depth=2
    )
    model = kd.DiffusionModel(net, seed=0)
    jit_compile = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    model.compile(optimizer=keras.optimizers.AdamW(2e-4), jit_compile=jit_compile)
    data = np.random.default_rng(0).uniform(
        -1, 1, (args.batch_size * args.steps, args.image_size, args.image_size, 3)
    )
    data = data.astype("float32")
    model.fit(
        data[: args.batch_size * 2], batch_size=args.batch_size, epochs=1, verbose=0
    )
    start = time.perf_counter()
    model.fit(data, batch_size=args.batch_size, epochs=1, verbose=0)
    train = len(data) / (time.perf_counter() - start)

    model.generate(args.batch_size, sampler="ddim", steps=args.sampling_steps, seed=0)
    start = time.perf_counter()
    model.generate(args.batch_size, sampler="ddim", steps=args.sampling_steps, seed=1)
    sample = args.batch_size / (time.perf_counter() - start)
    print(
        f"backend={keras.backend.backend()} jit_compile={model.jit_compile} "
        f"params={net.count_params():,} "
        f"train={train:.1f} img/s sample({args.sampling_steps} steps)={sample:.2f} img/s"
    )


if __name__ == "__main__":
    main()
