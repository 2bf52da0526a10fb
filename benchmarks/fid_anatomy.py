"""What a flowers FID is made of: texture sensitivity and the encoder's heads.

Scores, under the shipped flowers encoder and against held-out real flowers,
real flowers spoiled in known ways (added Gaussian noise, blur), then a trained
model's samples as they are and after an unsharp mask; and compares the
encoder's readings (petal count, size, ...) of the samples with those of real
flowers. It tells a texture problem (noise or blur, which the first rows
price) from a structure problem (wrong petal counts, too little variety).
FID cannot tell a model that copies its training images from one that
generalises (copies of real flowers score at the floor), so it also measures
each sample's distance to its nearest training image (the recipe's training
split, `--train-images` and `--train-seed`, flipped images included) against
its distance to the nearest image of the validation split, which the model
never trained on, compared with the same number of training images; real
held-out flowers give the reference:

    KERAS_BACKEND=tensorflow python benchmarks/fid_anatomy.py runs/flowers/model.keras \\
        --out benchmarks/results/fid-anatomy/anatomy-main-job-cpu-tensorflow.json
"""

import argparse
import inspect
import json

import keras
import numpy as np
from quality import IMAGE_SIZE, REAL_SEED, fid, reference_statistics
from scipy.ndimage import gaussian_filter

import keras_ddpm as kd
from keras_ddpm.callbacks.step_counter import optimizer_steps
from keras_ddpm.datasets.loader import SYNTHETIC_SIZE, _split_range
from keras_ddpm.metrics.flowers import MAX_PETALS, MIN_PETALS, TARGET_NAMES
from keras_ddpm.models.guidance_interval import check_interval
from keras_ddpm.utils import atomic_path

OTHER_SEED = REAL_SEED + 1  # the floor's other real flowers, as in quality.py
# The recipe's split of its images (`kd.datasets.load`'s default).
VALIDATION_FRACTION = (
    inspect.signature(kd.datasets.load).parameters["validation_fraction"].default
)


def blur(images, sigma):
    return gaussian_filter(images, (0, sigma, sigma, 0))


def nearest_rms(images, references, chunk=256):
    """Each image's root-mean-square pixel distance to its nearest reference.

    The references count as themselves and mirrored left to right (the
    recipe trains on both).

    Args:
        images: array `(N, H, W, C)`.
        references: array `(M, H, W, C)`, the same image shape.
        chunk: int, images compared at a time (bounds memory).

    Returns:
        float64 array `(N,)`, in the images' units.
    """
    refs = np.concatenate([references, references[:, :, ::-1]])
    refs = refs.reshape(len(refs), -1).astype("float64")
    squares = np.sum(refs**2, axis=1)
    out = []
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].reshape(-1, refs.shape[1])
        part = part.astype("float64")
        distances = np.sum(part**2, axis=1)[:, None] + squares - 2 * part @ refs.T
        out.append(np.sqrt(np.maximum(distances.min(axis=1), 0.0) / refs.shape[1]))
    return np.concatenate(out)


def copying(named_images, train, validation, seed=0):
    """Nearest-image distances to the training split against the validation split.

    Args:
        named_images: dict of name → images `(N, H, W, C)` in [-1, 1].
        train, validation: the recipe's splits, in [-1, 1]; `validation` is
            compared with as many training images, drawn at random.
        seed: int, the draw's seed.

    Returns:
        dict of name → {"median_to_train", "median_to_validation" (RMS in
        [0, 1] pixel units, the training subset's and the validation's),
        "median_to_all_train", "share_closer_to_train"}; about 0.5 and equal
        medians for a model that does not copy.
    """
    rng = np.random.default_rng(seed)
    subset = train[rng.choice(len(train), len(validation), replace=False)]
    out = {}
    for name, images in named_images.items():
        to_train = nearest_rms(images, subset) / 2  # [-1, 1] → [0, 1] units
        to_validation = nearest_rms(images, validation) / 2
        out[name] = {
            "median_to_train": round(float(np.median(to_train)), 4),
            "median_to_validation": round(float(np.median(to_validation)), 4),
            "median_to_all_train": round(
                float(np.median(nearest_rms(images, train) / 2)), 4
            ),
            "share_closer_to_train": round(float(np.mean(to_train < to_validation)), 3),
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a saved DiffusionModel (.keras)")
    parser.add_argument("--num", type=int, default=256, help="generated images")
    parser.add_argument("--real", type=int, default=2000, help="held-out real images")
    parser.add_argument("--sampler", default="dpm_solver")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument(
        "--guide", help="sample with autoguidance by this model (e.g. guide.keras)"
    )
    parser.add_argument(
        "--guide-scale", type=float, default=kd.training.DEFAULTS["guide_scale"]
    )
    parser.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="the guided timesteps (default: generate's, as the recipe's)",
    )
    parser.add_argument(
        "--train-images",
        type=int,
        default=SYNTHETIC_SIZE,
        help="the model's synthetic_flowers size (default: the recipe's, %(default)s)",
    )
    parser.add_argument(
        "--train-seed",
        type=int,
        default=kd.training.DEFAULTS["seed"],
        help="its seed (default: the recipe's, %(default)s)",
    )
    parser.add_argument("--out", help="write the numbers to this JSON file")
    args = parser.parse_args(argv)

    encoder = kd.metrics.flowers_encoder(IMAGE_SIZE)
    heads = kd.metrics.flowers_encoder(IMAGE_SIZE, include_top=True)
    stats = reference_statistics(encoder, args.real)

    def score(images):
        clipped = np.clip(images, -1, 1).astype("float32")
        return round(fid(encoder, stats, clipped), 3)

    other = kd.datasets.synthetic_flowers(args.num, IMAGE_SIZE, seed=OTHER_SEED) * 2 - 1
    rng = np.random.default_rng(0)
    spoiled = {"floor: other real flowers": score(other)}
    for sigma in (0.02, 0.05, 0.1):
        noisy = other + rng.normal(0, sigma, other.shape)
        spoiled[f"real + Gaussian noise, sigma {sigma}"] = score(noisy)
    for sigma in (0.5, 0.8, 1.2):
        spoiled[f"real blurred, sigma {sigma} px"] = score(blur(other, sigma))

    model = keras.saving.load_model(args.model)
    guided, guide_step = {}, None
    if args.guide:
        guided = dict(
            guide=keras.saving.load_model(args.guide),
            guide_scale=args.guide_scale,
            guidance_interval=check_interval(
                args.guidance_interval, model.schedule.timesteps, True, guide=True
            ),
        )
        guide_step = optimizer_steps(guided["guide"])
    samples = np.asarray(
        model.generate(
            args.num, sampler=args.sampler, steps=args.steps, seed=args.seed, **guided
        )
    )
    sharpened = samples + (samples - blur(samples, 1.0))
    scored = {
        "samples": score(samples),
        "samples, unsharp mask (1 px, amount 1)": score(sharpened),
    }

    def readings(images):
        out = heads.predict(images.astype("float32"), verbose=0)
        petals = np.argmax(out["petals"], axis=1) + MIN_PETALS
        return petals, out["attributes"]

    flowers = kd.datasets.synthetic_flowers(
        args.train_images, IMAGE_SIZE, seed=args.train_seed
    )
    cut = _split_range(args.train_images, "train", VALIDATION_FRACTION)[1]
    copies = copying(
        {"samples": samples, "real": other},
        flowers[:cut] * 2 - 1,
        flowers[cut:] * 2 - 1,
    )
    real_petals, real_attributes = readings(other)
    sample_petals, sample_attributes = readings(samples)
    counts = range(MIN_PETALS, MAX_PETALS + 1)
    result = {
        "model": args.model,
        "optimizer_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if model.optimizer is not None
        else None,
        "sampler": args.sampler,
        "sample_steps": args.steps,
        "guide": args.guide,
        "guide_step": guide_step,
        "guide_scale": args.guide_scale if args.guide else None,
        "guidance_interval": list(guided["guidance_interval"]) if guided else None,
        "num_images": args.num,
        "real_images": args.real,
        "fid_spoiled_real": spoiled,
        "fid_samples": scored,
        "petal_counts": {
            "count": list(counts),
            "real": [int(np.sum(real_petals == c)) for c in counts],
            "samples": [int(np.sum(sample_petals == c)) for c in counts],
        },
        "train_images": args.train_images,
        "train_seed": args.train_seed,
        "nearest_image": copies,
        "attribute_std": {
            name: {
                "real": round(float(real_attributes[:, i].std()), 3),
                "samples": round(float(sample_attributes[:, i].std()), 3),
            }
            for i, name in enumerate(TARGET_NAMES)
        },
    }
    for name, value in {**spoiled, **scored}.items():
        print(f"{name:45s} FID {value:8.2f}")
    print("petals", *counts, sep="\t")
    print("real", *result["petal_counts"]["real"], sep="\t")
    print("samples", *result["petal_counts"]["samples"], sep="\t")
    for name in ("size", "position_y", "position_x", "petal_red", "inner_ring"):
        std = result["attribute_std"][name]
        print(f"std of {name:12s} real {std['real']:.2f}  samples {std['samples']:.2f}")
    for name, values in copies.items():
        print(
            f"nearest image, {name}: "
            + ", ".join(f"{k} {v}" for k, v in values.items())
        )
    if args.out:
        with atomic_path(args.out) as path, open(path, "w") as file:
            json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()
