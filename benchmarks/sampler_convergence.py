"""Convergence of the deterministic samplers on Gaussian data, with the exact denoiser.

For x0 ~ N(μ, s²) the ideal denoiser is affine in x_t, so every deterministic
sampler maps its initial noise z to `g·z + o` exactly: running the library's
own sampler (float32, the code users run) on z = 0 and z = 1 gives o and g,
hence the output std |g| without sampling error. The probability-flow ODE maps
N(0, 1) to N(μ, s²), so |g| − s is the solver's discretisation error alone.
The script prints a markdown table of that error per step count and the
slope of log error against log steps (the order of convergence).

    KERAS_BACKEND=jax python benchmarks/sampler_convergence.py
"""

import argparse

import numpy as np
from keras import ops

import keras_ddpm as kd

MU, S = 0.1, 0.2
SAMPLERS = {
    "DDIM (trailing)": {"name": "ddim", "spacing": "trailing"},
    "DDIM (Karras) = Euler": {"name": "euler"},
    "Heun (Karras)": {"name": "heun"},
    "DPM-Solver++ 2M (trailing)": {
        "name": "dpm_solver",
        "order": 2,
        "spacing": "trailing",
    },
    "DPM-Solver++ 2M (Karras)": {"name": "dpm_solver", "order": 2},
    "DPM-Solver++ 3M (Karras)": {"name": "dpm_solver", "order": 3},
}


def ideal_denoiser(schedule):
    names = ("signal_rates", "noise_rates", "log_sigmas")
    tables = [ops.convert_to_tensor(getattr(schedule, name)) for name in names]

    def denoise(x, t):
        alpha, sigma = kd.ops.rates_at(t, *tables)
        ab = alpha**2
        x0 = MU + alpha * S**2 * (x - alpha * MU) / (ab * S**2 + 1 - ab)
        return x0, (x - alpha * x0) / sigma

    return denoise


def output_std(config, schedule, steps):
    sampler = kd.samplers.get({**config, "clip": False})
    z = np.array([0.0, 1.0], "float32").reshape(2, 1, 1, 1)
    out = ops.convert_to_numpy(
        sampler.sample(ideal_denoiser(schedule), z, schedule, steps=steps)
    ).ravel()
    return abs(float(out[1] - out[0]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40, 80])
    parser.add_argument("--schedule", default="linear", choices=kd.schedules.names())
    args = parser.parse_args(argv)
    schedule = kd.schedules.get(args.schedule)
    header = " | ".join(f"{n} steps" for n in args.steps)
    print(f"| sampler | {header} | slope |")
    print("|---" * (len(args.steps) + 2) + "|")
    for name, config in SAMPLERS.items():
        errors = np.array(
            [abs(output_std(config, schedule, n) - S) for n in args.steps]
        )
        # The order of convergence, fitted where the error is past its transient.
        fit = np.array(args.steps) >= 20
        slope = -np.polyfit(np.log(np.array(args.steps)[fit]), np.log(errors[fit]), 1)[
            0
        ]
        cells = " | ".join(f"{e:.2g}" for e in errors)
        print(f"| {name} | {cells} | {slope:.2f} |")


if __name__ == "__main__":
    main()
