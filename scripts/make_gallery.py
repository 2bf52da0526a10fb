"""Regenerate every gallery image of the docs from a trained model, with the library itself.

    python scripts/make_gallery.py --model runs/flowers/model.keras --out docs/images

Writes into `--out`:

- `samples.png`: 4×8 samples (DDIM, 50 steps, seed 0; with `--guide`,
  guided by that model at the scale and over the timesteps with which
  `keras-ddpm train` draws its own);
- `denoise.gif` and `denoise_strip.png`: the denoising process of those samples;
- `sampler_steps.png`: the same initial noise sampled with DDIM and DDPM at
  10, 20, 50 and 1000 steps;
- `reconstruction.png`: synthetic flowers noised to t = 300 and 600 and denoised back;
- `inpainting.png`: synthetic flowers, their centre blanked, and RePaint's filling;
- `interpolation.png`: two walks between samples (spherical interpolation of the noise);
- `schedules.png`: ᾱ_t and log-SNR of the linear, cosine and sigmoid schedules;
- `loss.png`: the training curves of `history.json` (next to the model by default).
"""

import argparse
import os
import sys

import numpy as np

import keras_ddpm as kd
from keras_ddpm.utils import atomic_path

STEP_COUNTS = (10, 20, 50, 1000)
SCHEDULES = {
    "linear": kd.schedules.LinearSchedule(),
    "cosine": kd.schedules.CosineSchedule(),
    "sigmoid": kd.schedules.SigmoidSchedule(),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(figure, path):
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png", bbox_inches="tight")
    _pyplot().close(figure)


def samples_and_denoising(model, out, steps=50, seed=0, guide=None):
    """Samples grid, denoising GIF and strip: what `keras-ddpm train` writes."""
    images, trajectory = model.generate(
        32,
        sampler="ddim",
        steps=steps,
        seed=seed,
        return_trajectory=True,
        batch_size=8,
        guide=guide,
    )
    return [
        os.path.basename(path) for path in kd.viz.save_samples(images, trajectory, out)
    ]


def sampler_steps(model, out, step_counts=STEP_COUNTS, num=6, seed=1):
    """One row per sampler and step count, every row from the same initial noise."""
    steps_limit = model.schedule.timesteps
    step_counts = [min(s, steps_limit) for s in step_counts]
    noise = np.random.default_rng(seed).standard_normal(
        (num,) + model.image_shape, dtype=np.float32
    )
    rows, labels = [], []
    for name in ("ddim", "ddpm"):
        for steps in step_counts:
            rows.append(
                model.generate(
                    num, sampler=name, steps=steps, seed=seed, initial_noise=noise
                )
            )
            labels.append(f"{name.upper()}, {steps} steps")
    plt = _pyplot()
    figure, axes = plt.subplots(
        len(rows), 1, figsize=(1.1 * num + 1.6, 1.15 * len(rows)), squeeze=False
    )
    for axis, images, label in zip(axes[:, 0], rows, labels):
        axis.imshow(kd.viz.image_grid(images, 1, num), interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        for spine in axis.spines.values():
            spine.set_visible(False)
    figure.tight_layout()
    _save_figure(figure, os.path.join(out, "sampler_steps.png"))
    return ["sampler_steps.png"]


def reconstruction(model, out, timesteps=(300, 600), steps=50, num=6, seed=2):
    """Rows: originals, then for each t the noised images and their reconstruction."""
    height, width, channels = model.image_shape
    originals = kd.datasets.synthetic_flowers(num, (height, width), seed=seed) * 2 - 1
    if channels == 1:
        originals = originals.mean(axis=-1, keepdims=True)
    rows = [originals]
    for t in timesteps:
        t = min(t, model.schedule.timesteps - 1)
        restored, trajectory = model.reconstruct(
            originals,
            t,
            sampler="ddim",
            steps=min(steps, t + 1),
            seed=seed,
            return_trajectory=True,
        )
        rows += [trajectory[0], restored]
    kd.viz.save_grid(
        np.concatenate(rows),
        os.path.join(out, "reconstruction.png"),
        rows=len(rows),
        cols=num,
        scale=2,
    )
    return ["reconstruction.png"]


def inpainting(model, out, steps=50, num=6, seed=3):
    """Rows: originals, the centre to fill in (grey), RePaint's filling (DDIM steps)."""
    height, width, channels = model.image_shape
    originals = kd.datasets.synthetic_flowers(num, (height, width), seed=seed) * 2 - 1
    if channels == 1:
        originals = originals.mean(axis=-1, keepdims=True)
    mask = np.ones((height, width, 1), np.float32)
    mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 0.0
    filled = model.inpaint(
        originals,
        mask,
        sampler="ddim",
        steps=steps,
        jump_length=max(1, steps // 10),
        jump_n_sample=5,
        seed=seed,
    )
    kd.viz.save_grid(
        np.concatenate([originals, originals * mask, filled]),
        os.path.join(out, "inpainting.png"),
        rows=3,
        cols=num,
        scale=2,
    )
    return ["inpainting.png"]


def interpolation(model, out, steps=50, num=8, pairs=((0, 1), (2, 3))):
    """One row per pair of seeds: the spherical walk between their two samples."""
    rows = [
        model.interpolate(a, b, num=num, sampler="ddim", steps=steps) for a, b in pairs
    ]
    kd.viz.save_grid(
        np.concatenate(rows),
        os.path.join(out, "interpolation.png"),
        rows=len(rows),
        cols=num,
        scale=2,
    )
    return ["interpolation.png"]


def schedule_plots(out, schedules=None):
    """ᾱ_t and log-SNR of each schedule, against t / T."""
    schedules = SCHEDULES if schedules is None else schedules
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, schedule in schedules.items():
        tau = np.arange(schedule.timesteps) / schedule.timesteps
        left.plot(tau, schedule.alphas_cumprod, label=name)
        right.plot(tau, np.log(schedule.snr), label=name)
    left.set_title("ᾱ_t (signal variance kept)")
    right.set_title("log SNR = log(ᾱ_t / (1 − ᾱ_t))")
    for axis in (left, right):
        axis.set_xlabel("t / T")
        axis.grid(alpha=0.3)
        axis.legend()
    _save_figure(figure, os.path.join(out, "schedules.png"))
    return ["schedules.png"]


def loss_curve(history, out):
    """`kd.viz.plot_history` of the run's `history.json`."""
    kd.viz.plot_history(history, os.path.join(out, "loss.png"))
    return ["loss.png"]


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, help="a .keras file written by keras-ddpm"
    )
    parser.add_argument(
        "--history",
        help="history.json of the run (default: the one next to --model)",
    )
    parser.add_argument(
        "--guide",
        help="guide the samples with this model (autoguidance as keras-ddpm train "
        "guides its own), e.g. "
        "the run's guide.keras",
    )
    parser.add_argument(
        "--out", default=os.path.join("docs", "images"), help="(default: docs/images)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=list(STEP_COUNTS),
        help="step counts compared in sampler_steps.png (default: 10 20 50 1000)",
    )
    parser.add_argument(
        "--sample-steps",
        type=int,
        default=50,
        help="DDIM steps of the samples and reconstructions (default: 50)",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    import keras

    if not os.path.isfile(args.model):
        print(f"make_gallery: model file not found: {args.model}", file=sys.stderr)
        return 2
    history = args.history or os.path.join(os.path.dirname(args.model), "history.json")
    if not os.path.isfile(history):
        print(f"make_gallery: history file not found: {history}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    if args.guide and not os.path.isfile(args.guide):
        print(f"make_gallery: guide file not found: {args.guide}", file=sys.stderr)
        return 2
    model = keras.saving.load_model(args.model)
    guide = keras.saving.load_model(args.guide) if args.guide else None
    written = []
    written += samples_and_denoising(model, args.out, args.sample_steps, guide=guide)
    written += sampler_steps(model, args.out, args.steps)
    written += reconstruction(model, args.out, steps=args.sample_steps)
    written += inpainting(model, args.out, steps=args.sample_steps)
    written += interpolation(model, args.out, steps=args.sample_steps)
    written += schedule_plots(args.out)
    written += loss_curve(history, args.out)
    print("Wrote " + ", ".join(os.path.join(args.out, name) for name in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
