"""RePaint's error against a closed form, per `jump_n_sample`: the table of the inpainting guide.

Data x0 ~ N(μ, Σ) over the 4 pixels of a 2×2 image with strongly correlated
pixels; the network is the exact denoiser of that Gaussian, so the only error
left is the inpainting method's. Two pixels are known; the true conditional
mean of the other two is μ_u + Σ_uk Σ_kk⁻¹(x_k − μ_k). For each
`jump_n_sample`, 2000 inpaintings of the same image (DDPM, 50 steps, jumps of
5) give the largest error of the filled pixels' mean and its standard error.

    KERAS_BACKEND=jax python benchmarks/inpainting_error.py
"""

import argparse
import sys

import numpy as np

import keras_ddpm as kd
from keras_ddpm.models.inpainting import repaint_levels

sys.path.insert(0, ".")
from tests.models.test_inpaint import inpainted_error, oracle  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000)
    parser.add_argument("--jumps", type=int, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    model = oracle(kd.schedules.CosineSchedule())
    print(
        "| `jump_n_sample` | network evaluations | error of the mean (per seed) | standard error |"
    )
    print("|---|---|---|---|")
    for jumps in args.jumps:
        errors, spread = [], []
        for seed in args.seeds:
            error, flat = inpainted_error(model, jumps, num=args.num, seed=seed)
            errors.append(error)
            spread.append(flat[:, [1, 3]].std(0).max() / np.sqrt(args.num))
        levels = repaint_levels(50, 5, jumps)
        evaluations = int(np.sum(np.diff(levels) < 0))
        print(
            f"| {jumps} | {evaluations} | "
            + ", ".join(f"{e:.4f}" for e in errors)
            + f" | {max(spread):.4f} |"
        )


if __name__ == "__main__":
    main()
