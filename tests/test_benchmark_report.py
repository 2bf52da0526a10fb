"""The ratios the benchmark suite prints and publishes are computed right."""

import argparse
import importlib.util
import shlex
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_ddpm as kd

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="pure Python: runs once, under the TensorFlow backend",
)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _record(kind, variant, policy, images_per_s):
    return {
        "kind": kind,
        "variant": variant,
        "backend": "jax",
        "image_size": 32,
        "batch": 16,
        "policy": policy,
        "jit_compile": True,
        "images_per_s": images_per_s,
        "flops_per_image": 3e9,
        "gflops": 100.0,
        "peak_gflops": 300.0,
        "utilisation": 1 / 3,
    }


def test_ratios_compare_variants_and_policies_of_one_configuration():
    report = _load("report")
    records = [
        _record("train", "diffusion_fit", "float32", 10.0),
        _record("train", "bare_fit", "float32", 11.0),
        _record("train", "diffusion_fit", "mixed_bfloat16", 25.0),
        _record("sample", "compiled", "float32", 2.0),
        _record("sample", "bare_calls", "float32", 2.1),
        _record("sample", "eager", "float32", 0.5),
    ]
    ratios = {
        text.split(":")[0]: value for text, _, value in report.variant_ratios(records)
    }
    assert ratios == pytest.approx(
        {"train overhead": 1.1, "sampling overhead": 1.05, "sampling speed-up": 4.0}
    )
    policies = {what: value for what, _, value in report.policy_ratios(records)}
    assert policies == pytest.approx({"train/diffusion_fit": 2.5})
    table = report.results_table(records)
    assert table.count("\n") == len(records) + 1 and "33 %" in table


def test_make_table_writes_the_page_from_json(tmp_path):
    import json

    make_table = _load("make_table")
    records = [
        _record("train", "diffusion_fit", "float32", 10.0),
        _record("train", "bare_fit", "float32", 12.0),
    ]
    data = {
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}},
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [{"extra_info": {**r, "device": "cpu"}} for r in records],
    }
    (tmp_path / "run.json").write_text(json.dumps(data))
    page = tmp_path / "benchmarks.md"
    make_table.main([str(tmp_path / "run.json"), "-o", str(page)])
    text = page.read_text()
    assert "Test CPU" in text and "| 1.20 |" in text
    with pytest.raises(SystemExit, match="no keras-ddpm benchmark records"):
        (tmp_path / "empty.json").write_text(json.dumps({"benchmarks": []}))
        make_table.main([str(tmp_path / "empty.json"), "-o", str(page)])


def test_peer_ratios_pair_each_library_record_with_the_peer_of_its_size():
    report = _load("report")

    def with_gflops(record, gflops, **changes):
        return {**record, "gflops": gflops, **changes}

    peer = {"backend": "diffusers 0.0 (torch eager)", "policy": "float32"}
    records = [
        with_gflops(_record("train", "diffusion_fit", "float32", 20.0), 50.0),
        with_gflops(_record("train", "diffusion_fit", "mixed_bfloat16", 40.0), 80.0),
        with_gflops(_record("train", "diffusers_fit", "float32", 25.0), 62.5, **peer),
        # Another batch size: its peer is missing, so it gets no ratio.
        with_gflops(_record("train", "diffusion_fit", "float32", 9.0), 40.0, batch=8),
        with_gflops(
            _record("sample", "ddim", "float32", 1.0), 60.0, sampling_steps=100
        ),
        with_gflops(
            _record("sample", "diffusers_ddim", "float32", 1.0),
            50.0,
            sampling_steps=100,
            **peer,
        ),
        # The same batch at other steps is not the ddim record's peer.
        with_gflops(
            _record("sample", "diffusers_ddim", "float32", 1.0),
            10.0,
            sampling_steps=50,
            **peer,
        ),
    ]
    rows = report.peer_ratios(records)
    found = {
        (config["policy"], text.split(",")[1].strip()[:6]): v
        for text, config, v in rows
    }
    assert found == pytest.approx(
        {
            ("float32", "train:"): 50.0 / 62.5,
            ("mixed_bfloat16", "train:"): 80.0 / 62.5,
            ("float32", "sample"): 60.0 / 50.0,
        }
    )
    assert any("img/s ratio 0.80" in text for text, _, _ in rows)
    assert "vs diffusers" in report.ratios_table(records)


def test_make_table_writes_the_quality_curve_table_and_plot(tmp_path):
    import json

    make_table = _load("make_table")

    def scores(fid):
        return [
            {"sampler": "dpm_solver", "steps": 20, "sample_seconds": 3.0, "fid": fid},
            {"sampler": "ddim", "steps": 50, "sample_seconds": 7.0, "fid": 2 * fid},
        ]

    data = {
        "kind": "quality_curve",
        "machine": {
            "backend": "tensorflow",
            "processor": "Test CPU",
            "cores": 2,
            "conditions": "quiet",
        },
        "recipe": {
            "image_size": 32,
            "widths": [32, 64, 96],
            "block_depth": 2,
            "attention_levels": [1, 2],
            "scale_shift": True,
            "batch_size": 16,
            "learning_rate": 0.002,
        },
        "seed": 0,
        "num_images": 256,
        "real_images": 2000,
        "baselines": {"floor": 0.5, "gaussian": 75.0, "noise": 500.0},
        "budgets": [
            {
                "minutes": 2,
                "wall_seconds": 130,
                "optimizer_steps": 500,
                "status": "completed",
                "scores": scores(20.0),
            },
            {
                "minutes": 5,
                "wall_seconds": 200,
                "optimizer_steps": 1300,
                "status": "completed",
                "scores": scores(10.0),
            },
        ],
    }
    (tmp_path / "curve.json").write_text(json.dumps(data))
    page = tmp_path / "docs" / "benchmarks.md"
    make_table.main([str(tmp_path / "curve.json"), "-o", str(page)])
    text = page.read_text()
    assert "| 2 | 500 | 20.00 | 40.00 | 40.0 |" in text
    assert "| 5 | 1300 | 10.00 | 20.00 | 20.0 |" in text
    assert "dpm_solver-20 3, ddim-50 7" in text
    assert "(widths 32/64/96, 2 residual blocks per level, batch 16," in text
    assert (
        "learning rate 0.002, attention at 16×16 and 8×8, "
        "adaptive group normalization)" in text
    )
    plot = tmp_path / "docs" / "images" / "quality-curve-curve.png"
    assert plot.stat().st_size > 1000 and "images/quality-curve-curve.png" in text
    # A curve of `block_depth="auto"` gives each budget's choice.
    data["recipe"]["block_depth"] = "auto"
    data["budgets"][0]["block_depth"], data["budgets"][1]["block_depth"] = 1, 2
    (tmp_path / "curve.json").write_text(json.dumps(data))
    make_table.main([str(tmp_path / "curve.json"), "-o", str(page)])
    text = page.read_text()
    assert "| 2 | 500 (1 block) | 20.00 |" in text
    assert "| 5 | 1300 (2 blocks) | 10.00 |" in text
    assert "(widths 32/64/96, residual blocks per level chosen by `auto` per" in text


def test_quality_table_names_each_runs_seed_and_an_epoch_budget():
    make_table = _load("make_table")

    def run(config, seed, fid, steps):
        return {
            "config": config,
            "seed": seed,
            "minutes": None,
            "epoch_budget": 7,
            "optimizer_steps": steps,
            "num_images": 256,
            "sampler": "dpm_solver",
            "sample_steps": 20,
            "fid": fid,
        }

    data = {
        "machine": {"backend": "tensorflow", "processor": "Test CPU", "cores": 2},
        "real_images": 2000,
        "baselines": {"floor": 0.5, "gaussian": 75.0, "noise": 500.0},
        "runs": [
            run("small-lr2e-3", 0, 20.0, 1428),
            run("small-lr2e-3", 0, 18.0, 1428),
            run("lr2e-3-minsnr", 1, 15.0, 1428),
        ],
    }
    text = make_table.quality_section("q.json", data)
    assert "7 epochs of training (the same optimizer steps for every run)" in text
    # A repeat of one seed is shown as such, not as a second seed.
    assert "| 1428/1428 | 19.00 | 20.00 (0), 18.00 (0) | 2.00 | 38.0 |" in text
    assert "| 15.00 (1) | 0.00 | 30.0 |" in text
    assert "first 256 samples" not in text  # scored at 256: no extra column

    # Runs scored at 1,024 samples also show the mean of their first 256.
    for run_, first in zip(data["runs"], (21.0, 19.0, 16.5)):
        run_["num_images"] = 1024
        run_["fid_first_256"] = first
    text = make_table.quality_section("q.json", data)
    assert "| first 256 samples: FID (mean) |" in text
    assert "| 1428/1428 | 19.00 | 20.00 (0), 18.00 (0) | 2.00 | 38.0 |" in text
    assert text.count("| 20.00 |") == 1 and "| 16.50 |" in text
    # A file where one run lacks it gets no column rather than a wrong mean.
    del data["runs"][2]["fid_first_256"]
    assert "first 256" not in make_table.quality_section("q.json", data)


def test_autoguidance_table_gives_each_guide_and_scale_over_seeds():
    make_table = _load("make_table")

    def score(fraction, scale, step, fid, counts, interval=None):
        record = {
            "guide_fraction": fraction,
            "guide_step": step,
            "guide_scale": scale,
            "fid": fid,
            "fid_first_256": fid + 1.0,
            "petal_counts": counts,
        }
        if interval is not None:  # files before the interval rows have no key
            record["guidance_interval"] = interval
        return record

    flat = [1] * 9
    data = {
        "kind": "autoguidance",
        "machine": {"backend": "tensorflow", "processor": "Test CPU", "cores": 2},
        "sampler": "dpm_solver",
        "sample_steps": 20,
        "num_images": 1024,
        "real_images": 2000,
        "baselines": {"floor": 0.5, "gaussian": 75.0, "noise": 500.0},
        "runs": [
            {
                "seed": seed,
                "minutes": 8.5,
                "optimizer_steps": 8000 + seed,
                "recipe_guide_step": 4000 + seed,
                "scores": [
                    score(None, 1.0, None, 8.0 - seed, [0, 0, 1, 2, 3, 4, 5, 0, 0]),
                    score(0.5, 2.0, 4000 + seed, 4.0 + seed, flat),
                    score(0.5, 2.0, 4000 + seed, 3.0 + seed, flat, [100.0, 800.0]),
                    score(
                        [0.4, 0.6], 5.0, [3600, 4400 + seed], 2.0 + seed, flat, [0, 600]
                    ),
                ],
            }
            for seed in (0, 1)
        ],
    }
    assert make_table.load_kind(data) == "autoguidance"
    text = make_table.autoguidance_section("a.json", data)
    assert "8000 (0), 8001 (1); the run's own `guide.keras` at step 4000, 4001." in text
    assert "| none (the model alone) | 1 | 7.50 | 8.00 (0), 7.00 (1) | 15.0 |" in text
    # Petal groups 4–6 / 7–10 / 11–12, summed over the runs.
    assert "| 2 / 28 / 0 | 8.50 |" in text
    assert (
        "| 50%: 4000/4001 | 2 | 4.50 | 4.00 (0), 5.00 (1) | 9.0 | 6 / 8 / 4 |" in text
    )
    # The same guide and scale over an interval is a row of its own.
    assert (
        "| 50%: 4000/4001, only at timesteps 100–800 | 2 | 3.50 | 3.00 (0), 4.00 (1) |"
        in text
    )
    # A guide averaged over a window of snapshots names the window and its steps.
    assert (
        "| mean of the snapshots from 40% to 60%: 3600–4400/3600–4401, only at "
        "timesteps 0–600 | 5 | 2.50 | 2.00 (0), 3.00 (1) |" in text
    )
    assert "Rescored" not in text and "not the recipe's default" not in text
    # Runs trained on another dataset size say so.
    for run in data["runs"]:
        run["dataset_images"] = 16384
    text = make_table.autoguidance_section("a.json", data)
    assert (
        "- Images of `synthetic_flowers` (80 % trained on) 16,384, not the "
        "recipe's default 4,096." in text
    )
    assert "Batch size" not in text
    data["runs"][0]["batch_size"] = data["runs"][1]["batch_size"] = 16
    data["runs"][0]["ema_momentum"] = data["runs"][1]["ema_momentum"] = 0.999
    text = make_table.autoguidance_section("a.json", data)
    assert "- Batch size 16, not the recipe's default 8." in text
    assert "- EMA momentum 0.999, not the recipe's default 0.995." in text
    assert "U-Net widths" not in text and "Patch size" not in text
    data["runs"][0]["widths"] = data["runs"][1]["widths"] = [32, 64]
    data["runs"][0]["patch_size"] = data["runs"][1]["patch_size"] = 2
    text = make_table.autoguidance_section("a.json", data)
    assert "- U-Net widths 32/64, not the recipe's default 16/32/64." in text
    assert "- Patch size 2, not the recipe's default 1." in text
    assert "Attention levels" not in text
    for run in data["runs"]:
        run["attention_levels"] = [1, 2, 3]
    text = make_table.autoguidance_section("a.json", data)
    assert (
        "- Attention levels 1/2/3, not the recipe's default (the two "
        "lowest-resolution levels)." in text
    )
    assert "Zero start" not in text
    for run in data["runs"]:
        run["zero_init_attention"] = True
    text = make_table.autoguidance_section("a.json", data)
    assert "- Zero start of attention outputs on, not the recipe's default off." in text
    assert "Min-SNR" not in text
    for run in data["runs"]:
        run["min_snr_gamma"] = 5.0
    text = make_table.autoguidance_section("a.json", data)
    assert (
        "- Min-SNR-γ loss weighting with γ = 5.0, not the recipe's default none."
        in text
    )
    assert "as `auto` chose them" not in text  # not recorded: an older file
    for run in data["runs"]:
        run["block_depth_used"] = 1 + run["seed"]
    text = make_table.autoguidance_section("a.json", data)
    assert "- Residual blocks per level as `auto` chose them: 1 (0), 2 (1)." in text
    for run in data["runs"]:
        run["block_depth"], run["weight_decay"] = 1, 0.0
    text = make_table.autoguidance_section("a.json", data)
    assert "- Residual blocks per level 1, not the recipe's default auto." in text
    assert "as `auto` chose them" not in text  # the depth was given
    assert "- AdamW weight decay 0.0, not the recipe's default 0.004." in text
    # A file that rescored saved runs names their folder.
    data["rescored_runs"] = "/somewhere/kept-runs/"
    text = make_table.autoguidance_section("a.json", data)
    assert "the runs `--keep` saved in `kept-runs`" in text


def test_autoguidance_keeps_a_run_and_reads_it_back(tmp_path, monkeypatch, capsys):
    from tests.helpers import tiny_compiled_model

    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports quality.py
    autoguidance = _load("autoguidance")
    model = tiny_compiled_model()
    rng = np.random.default_rng(0)
    snapshots = [
        {
            "seconds": seconds,
            "step": step,
            "weights": [rng.normal(size=v.shape) for v in model.ema_weights],
        }
        for seconds, step in ((10.0, 40), (20.0, 80))
    ]
    facts = {"seed": 3, "minutes": 0.5, "optimizer_steps": 80}
    folder = tmp_path / "seed-3"
    with pytest.raises(FileNotFoundError, match="expected a run saved by --keep"):
        autoguidance.load_run(folder)
    autoguidance.save_run(folder, model, snapshots, facts)
    loaded, guide, read, read_facts = autoguidance.load_run(folder)
    assert read_facts == facts
    assert [(s["seconds"], s["step"]) for s in read] == [(10.0, 40), (20.0, 80)]
    for kept, back in zip(snapshots, read):
        for a, b in zip(kept["weights"], back["weights"]):
            np.testing.assert_array_equal(a, b)
    for a, b, c in zip(model.weights, loaded.weights, guide.weights):
        a, b, c = (keras.ops.convert_to_numpy(v) for v in (a, b, c))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert autoguidance.snapshot_at(read, 0.5, 0.5)["step"] == 80  # 15 s into 30
    with pytest.raises(ValueError, match="no epoch ended after 0.9"):
        autoguidance.snapshot_at(read, 0.9, 0.5)
    # A guide: one snapshot, or the mean of those in a window of the budget.
    weights, step = autoguidance.guide_weights(read, 0.5, 0.5)
    assert step == 80
    for a, b in zip(weights, snapshots[1]["weights"]):
        np.testing.assert_array_equal(a, b)
    weights, steps = autoguidance.guide_weights(read, [0.3, 0.7], 0.5)  # 9-21 s
    assert steps == [40, 80]
    for a, first, second in zip(
        weights, snapshots[0]["weights"], snapshots[1]["weights"]
    ):
        np.testing.assert_allclose(a, (first + second) / 2, rtol=1e-6)
    _, steps = autoguidance.guide_weights(read, [0.5, 0.7], 0.5)  # 15-21 s
    assert steps == [80]
    with pytest.raises(ValueError, match="no epoch ended between 0.1 and 0.2"):
        autoguidance.guide_weights(read, [0.1, 0.2], 0.5)
    assert autoguidance.fraction_argument("0.5") == 0.5
    assert autoguidance.fraction_argument("0.4:0.6") == [0.4, 0.6]
    for text in ("0.6:0.4", "1.5", "0", "half", "0.1:0.2:0.3"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a share"):
            autoguidance.fraction_argument(text)
    # A dataset size is for new runs only.
    with pytest.raises(SystemExit):
        autoguidance.main(
            ["--rescore", str(tmp_path), "--num-images", "64", "--out", "x"]
        )
    assert "--num-images (how new runs train) cannot go with --rescore" in (
        capsys.readouterr().err
    )
    # So is a network: widths and attention levels are lists (none: no attention).
    with pytest.raises(SystemExit):
        autoguidance.main(
            ["--rescore", str(tmp_path), "--out", "x", "--widths", "32", "64"]
            + ["--patch-size", "2", "--attention-levels"]
            + ["--zero-init-attention", "on"]
        )
    assert (
        "--widths, --attention-levels, --patch-size, --zero-init-attention (how "
        "new runs train) cannot go with --rescore" in capsys.readouterr().err
    )
    # A switch takes on or off, like the command line's.
    with pytest.raises(SystemExit):
        autoguidance.main(["--zero-init-attention", "yes", "--out", "x"])
    assert "expected on or off, got 'yes'" in capsys.readouterr().err


def test_fid_anatomy_measures_copying_by_nearest_images(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports quality.py
    anatomy = _load("fid_anatomy")
    rng = np.random.default_rng(0)
    references = rng.uniform(-1, 1, size=(6, 4, 5, 3))
    # Copies and mirrored copies are at 0; a uniform shift c is at RMS c,
    # the same brute-force distance numpy gives.
    shifted = references[2] + 0.25
    images = np.stack([references[4], references[1][:, ::-1], shifted])
    distances = anatomy.nearest_rms(images, references, chunk=2)
    np.testing.assert_allclose(distances[:2], 0.0, atol=1e-6)
    flat = np.concatenate([references, references[:, :, ::-1]]).reshape(12, -1)
    brute = np.sqrt(np.min(np.mean((flat - shifted.reshape(1, -1)) ** 2, axis=1)))
    np.testing.assert_allclose(distances[2], brute, rtol=1e-9)
    assert brute <= 0.25 + 1e-12
    # Samples that copy the training split are closer to it than to the
    # validation split; fresh draws from the same distribution are not.
    train = rng.uniform(-1, 1, size=(40, 4, 4, 3))
    validation = rng.uniform(-1, 1, size=(10, 4, 4, 3))
    fresh = rng.uniform(-1, 1, size=(30, 4, 4, 3))
    out = anatomy.copying({"copies": train[:30], "fresh": fresh}, train, validation)
    assert out["copies"]["median_to_all_train"] == 0.0
    assert out["copies"]["median_to_train"] < out["copies"]["median_to_validation"]
    assert out["fresh"]["median_to_all_train"] > 0.1
    assert 0.2 < out["fresh"]["share_closer_to_train"] < 0.8


def test_the_recorded_command_names_xla_flags_when_they_are_set():
    harness = _load("harness")
    args = ["benchmarks/", "--benchmark-only", "-k", "peer or bare_fit"]
    plain = harness.recorded_command("jax", args, {"HOME": "/root"})
    assert plain == (
        "KERAS_BACKEND=jax python -m pytest benchmarks/ --benchmark-only "
        "-k 'peer or bare_fit'"
    )
    flags = "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_enable_fast_math=true"
    flagged = harness.recorded_command("jax", args, {"XLA_FLAGS": flags})
    assert flagged == f"XLA_FLAGS='{flags}' {plain}"
    # A shell reads it back into the same environment and arguments.
    words = shlex.split(flagged)
    assert words[0] == f"XLA_FLAGS={flags}"
    assert words[-len(args) :] == args


def test_profile_step_sorts_operators_and_the_page_shows_the_profile(
    tmp_path, monkeypatch, capsys
):
    import json

    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports harness, peers, ...
    profile = _load("profile_step")
    expected = {
        "aten::convolution_backward": "convolution",
        "aten::mkldnn_convolution": "convolution",
        "aten::native_group_norm_backward": "group norm",
        "aten::silu_backward": "SiLU",
        "aten::addmm": "matrix products",
        "aten::_softmax": "matrix products",
        "aten::cat": "concatenation and copies",
        "aten::copy_": "concatenation and copies",
        "aten::constant_pad_nd": "concatenation and copies",
        "aten::upsample_nearest2d_backward": "concatenation and copies",
        "aten::add": profile.OTHER,
        "aten::lerp_": profile.OTHER,
    }
    assert {name: profile.category(name) for name in expected} == expected
    # Profiling needs the PyTorch backend (these tests run under TensorFlow).
    with pytest.raises(SystemExit):
        profile.main(["--out", str(tmp_path / "p.json")])
    assert "set KERAS_BACKEND=torch" in capsys.readouterr().err

    def side(conv, wall):
        ops = dict.fromkeys([*profile.CATEGORIES, profile.OTHER], 1.0)
        ops["convolution"] = conv
        return {
            "wall_ms_per_step": wall,
            "op_ms_per_step": ops,
            "outside_ops_ms_per_step": wall - sum(ops.values()),
            "conv_gflop_per_image_forward": 1.0,
            "conv_gflops": 123.4,
        }

    data = {
        "kind": "profile",
        "machine": {"processor": "Test CPU", "cores": 2, "conditions": "quiet"},
        "settings": {
            "image_size": 64,
            "batch": 16,
            "widths": [32, 64],
            "steps": 6,
            "rounds": 5,
            "peer": "diffusers 0.0 (torch eager)",
        },
        "command": "KERAS_BACKEND=torch python benchmarks/profile_step.py --out p.json",
        "sides": {"keras-ddpm": side(300.0, 400.0), "diffusers": side(350.0, 420.0)},
    }
    (tmp_path / "profile.json").write_text(json.dumps(data))
    page = tmp_path / "benchmarks.md"
    _load("make_table").main([str(tmp_path / "profile.json"), "-o", str(page)])
    text = page.read_text()
    assert "Training step profile, 64×64, batch 16" in text
    assert "| ms per training step | keras-ddpm | diffusers |" in text
    assert "| convolution | 300.0 | 350.0 |" in text
    assert "| all operators | 305.0 | 355.0 |" in text
    assert "| not in any operator (lower bound) | 95.0 | 65.0 |" in text
    assert "| convolution GFLOP/s | 123 | 123 |" in text


def test_the_page_names_every_recipe_option_with_the_recipes_default(monkeypatch):
    import keras_ddpm as kd

    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports quality.py
    autoguidance = _load("autoguidance")
    make_table = _load("make_table")
    shown = {key: default for key, _, default in make_table.RECIPE_CHANGES}
    recorded = {autoguidance.RECORDED_AS.get(n, n) for n in autoguidance.RECIPE_OPTIONS}
    assert recorded == set(shown)
    for key, default in shown.items():
        if key in kd.training.DEFAULTS and key != "attention_levels":
            value = kd.training.DEFAULTS[key]
            expected = "none" if value is None else value
            assert default == (tuple(expected) if key == "widths" else expected), key


def test_results_record_the_block_depth_of_every_level():
    quality = _load("quality")
    kwargs = dict(widths=(8, 16, 16), attention_levels=(), groups=4)
    build = kd.models.build_unet
    assert quality.block_depths(build(8, block_depth=2, **kwargs)) == 2
    assert quality.block_depths(build(8, block_depth=(1, 1, 2), **kwargs)) == [1, 1, 2]


def test_optimizer_update_alternates_rounds_and_needs_its_backends(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports harness, quality
    update = _load("optimizer_update")
    order, clock = [], [0.0]
    monkeypatch.setattr(update.harness.time, "perf_counter", lambda: clock[0])

    def call(name, seconds):
        def run():
            order.append(name)
            clock[0] += seconds

        return run

    times = update.harness.alternating_medians(
        {"a": call("a", 1.0), "b": call("b", 3.0)}, rounds=3
    )
    assert order == ["a", "b"] * 3
    assert times == {"a": 1.0, "b": 3.0}
    # Timing needs PyTorch or TensorFlow: JAX has no route of its own.
    monkeypatch.setattr(update.keras.backend, "backend", lambda: "jax")
    with pytest.raises(SystemExit):
        update.main(["--out", str(tmp_path / "u.json")])
    err = capsys.readouterr().err
    assert "on the PyTorch or TensorFlow backend: set KERAS_BACKEND=torch or" in err
    assert not (tmp_path / "u.json").exists()
