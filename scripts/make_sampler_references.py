"""Reference outputs of diffusers' schedulers, for the samplers' golden tests.

Runs each reference scheduler on a fixed, smooth noise predictor (the one
`tests/samplers/test_references.py` defines too) from fixed initial noise, and
writes the final images to `tests/data/sampler_references.npz`. The tests then
compare keras-ddpm's samplers with these arrays without needing diffusers.

    pip install diffusers
    python scripts/make_sampler_references.py

The cases: DPM-Solver++ 2M and 3M (`DPMSolverMultistepScheduler`, data
prediction, midpoint, lower-order final steps, final σ = 0, trailing spacing),
Euler (`EulerDiscreteScheduler`) and Heun (`HeunDiscreteScheduler`) on Karras
noise levels (ρ = 7), each at 10 and 25 steps, on the linear schedule with
T = 1000 and ε-prediction. The ᾱ table diffusers computed (in float32) is
stored too.
"""

import argparse
import os

import numpy as np
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
)

SHAPE = (2, 8, 8, 3)
STEPS = (10, 25)
SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "beta_schedule": "linear",
}


def noise_predictor(x, t):
    """A smooth, nonlinear ε(x, t); the tests define the same function in keras.ops."""
    t = np.float32(t)
    return x * (0.6 + 0.4 * t / 999.0) + 0.2 * np.sin(3.0 * x) * np.cos(t / 150.0)


def initial_noise():
    return np.random.default_rng(0).standard_normal(SHAPE).astype("float32")


def run(scheduler, steps, scale_input):
    scheduler.set_timesteps(steps)
    x = torch.from_numpy(initial_noise()) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t) if scale_input else x
        eps = torch.from_numpy(noise_predictor(model_input.numpy(), float(t)))
        x = scheduler.step(eps, t, x).prev_sample
    return x.numpy(), scheduler.timesteps.numpy().astype(np.float64)


def references():
    out = {}
    for steps in STEPS:
        for order in (2, 3):
            scheduler = DPMSolverMultistepScheduler(
                **SCHEDULE,
                solver_order=order,
                prediction_type="epsilon",
                algorithm_type="dpmsolver++",
                solver_type="midpoint",
                lower_order_final=True,
                final_sigmas_type="zero",
                timestep_spacing="trailing",
            )
            images, timesteps = run(scheduler, steps, scale_input=False)
            out[f"dpm_solver_{order}_{steps}"] = images
            out[f"dpm_solver_{order}_{steps}_timesteps"] = timesteps
        for name, cls in (
            ("euler", EulerDiscreteScheduler),
            ("heun", HeunDiscreteScheduler),
        ):
            scheduler = cls(
                **SCHEDULE, prediction_type="epsilon", use_karras_sigmas=True
            )
            images, timesteps = run(scheduler, steps, scale_input=True)
            out[f"{name}_{steps}"] = images
            out[f"{name}_{steps}_timesteps"] = timesteps
    # diffusers accumulates ᾱ in float32: the tests build their schedule from
    # this very table, so that only the samplers' arithmetic is compared.
    out["alphas_cumprod"] = scheduler.alphas_cumprod.numpy().astype(np.float64)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.path.join(
        os.path.dirname(__file__), "..", "tests", "data", "sampler_references.npz"
    )
    parser.add_argument("--out", default=default, help="where to write the arrays")
    args = parser.parse_args()
    arrays = references()
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {len(arrays)} arrays to {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
