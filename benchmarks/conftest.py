"""Options, parametrisation and the in-run baselines of the throughput benchmarks.

    KERAS_BACKEND=jax python -m pytest benchmarks/ --benchmark-only
    KERAS_BACKEND=jax python -m pytest benchmarks/ --benchmark-only --full

The backend comes from `KERAS_BACKEND`. Each benchmark is parametrised by image
size, batch size, dtype policy and `jit_compile`; the default sizes run on a
laptop CPU in minutes, `--full` uses the 64×64 flowers U-Net.
"""

import datetime
import json
import os
import platform
import sys

import keras
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402
import report  # noqa: E402

import keras_ddpm as kd  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16")
# jit_compile values measured by default per backend: TensorFlow has two
# competitive paths on a CPU; JAX is always XLA; Keras runs PyTorch eagerly.
DEFAULT_JIT = {"tensorflow": (False, True), "jax": (True,), "torch": (False,)}
RECORDS = []


def pytest_addoption(parser):
    group = parser.getgroup("keras-ddpm benchmarks")
    group.addoption("--full", action="store_true", help="64×64 flowers U-Net sizes")
    group.addoption("--image-size", type=int, help="override the image size")
    group.addoption("--batch", type=int, nargs="+", help="override the batch sizes")
    group.addoption("--sample-batch", type=int, help="override the sampling batch size")
    group.addoption("--widths", type=int, nargs="+", help="override the U-Net widths")
    group.addoption("--policy", nargs="+", choices=POLICIES, help="dtype policies")
    group.addoption(
        "--jit",
        nargs="+",
        choices=("true", "false"),
        help="jit_compile values (default: the competitive ones of the backend)",
    )
    group.addoption("--sampling-steps", type=int, help="DDPM steps when sampling")
    group.addoption(
        "--eager-steps",
        type=int,
        help="time only this many steps of the eager loop and scale (default: all)",
    )
    group.addoption("--train-steps", type=int, help="training steps per timed round")
    group.addoption("--rounds", type=int, help="timed rounds per benchmark")
    group.addoption(
        "--skip-eager", action="store_true", help="skip the eager sampling baseline"
    )
    group.addoption(
        "--records",
        help="also rewrite this JSON file after every benchmark (survives a timeout)",
    )
    group.addoption(
        "--conditions",
        default="not stated",
        help="the load the machine ran under, recorded with the results",
    )


class Settings:
    def __init__(self, config):
        get = config.getoption
        full = get("full")
        self.backend = keras.backend.backend()
        self.image_size = get("image_size") or (64 if full else 32)
        self.widths = tuple(
            get("widths") or (harness.FULL_WIDTHS if full else harness.SMALL_WIDTHS)
        )
        self.batches = tuple(get("batch") or ((64, 256) if full else (16,)))
        self.sample_batch = get("sample_batch") or (32 if full else 4)
        self.policies = tuple(get("policy") or POLICIES)
        jit = get("jit")
        self.jit = tuple(v == "true" for v in jit) if jit else DEFAULT_JIT[self.backend]
        self.sampling_steps = get("sampling_steps") or (1000 if full else 100)
        self.eager_steps = get("eager_steps")
        self.train_steps = get("train_steps") or (8 if full else 4)
        self.rounds = get("rounds") or 3
        self.skip_eager = get("skip_eager")
        self.conditions = get("conditions")
        self.records = get("records")
        self.command = harness.recorded_command(
            self.backend, config.invocation_params.args, os.environ
        )
        self.matmul_size = 2048 if harness.device_name().startswith("cpu") else 8192


def pytest_configure(config):
    config._ddpm_settings = Settings(config)


def pytest_generate_tests(metafunc):
    settings = metafunc.config._ddpm_settings
    if "peer_batch" in metafunc.fixturenames:
        ids = [f"b{b}" for b in settings.batches]
        metafunc.parametrize("peer_batch", settings.batches, ids=ids)
    names = ("policy", "jit_compile")
    if not set(names) <= set(metafunc.fixturenames):
        return
    cases = [(p, j) for p in settings.policies for j in settings.jit]
    ids = [f"{p}-jit{int(j)}" for p, j in cases]
    if "batch" in metafunc.fixturenames:
        cases = [(b,) + c for b in settings.batches for c in cases]
        ids = [f"b{b}-{i}" for b in settings.batches for i in ids]
        names = ("batch",) + names
    metafunc.parametrize(names, cases, ids=ids)


@pytest.fixture(scope="session")
def settings(request):
    return request.config._ddpm_settings


@pytest.fixture(scope="session")
def matmul_peak(settings):
    """GFLOP/s of a large matmul at a dtype, measured once per dtype in this run."""
    cache = {}

    def peak(policy):
        dtype = "bfloat16" if policy == "mixed_bfloat16" else "float32"
        if dtype not in cache:
            cache[dtype] = harness.measure_matmul_peak(dtype, settings.matmul_size)
        return cache[dtype]

    return peak


@pytest.fixture(scope="session")
def flops_per_image(settings):
    """Forward FLOPs per image of the benchmarked U-Net, counted from its layers."""
    cache = {}

    def count(image_size):
        if image_size not in cache:
            net = harness.build_network(image_size, settings.widths)
            cache[image_size] = kd.models.count_flops(net)["total"]
        return cache[image_size]

    return count


@pytest.fixture
def record(benchmark, settings, matmul_peak):
    """Time `run` with pytest-benchmark and store images/s, GFLOP/s and utilisation.

    Utilisation is against the matmul peak of the Keras backend at `policy`,
    or against `peak` (GFLOP/s) when given, as for the peer, which has its own.
    """

    def measure(
        run,
        *,
        kind,
        variant,
        images,
        flops,
        policy,
        jit_compile,
        batch,
        peak=None,
        **extra,
    ):
        benchmark.pedantic(run, rounds=settings.rounds, warmup_rounds=1, iterations=1)
        seconds = benchmark.stats.stats.median
        peak = peak or matmul_peak(policy)
        images_per_s = images / seconds
        gflops = flops * images_per_s / 1e9
        info = {
            "kind": kind,
            "variant": variant,
            "backend": settings.backend,
            "device": harness.device_name(),
            "image_size": settings.image_size,
            "widths": list(settings.widths),
            "batch": batch,
            "policy": policy,
            "jit_compile": jit_compile,
            "images_per_s": images_per_s,
            "flops_per_image": flops,
            "gflops": gflops,
            "peak_gflops": peak,
            "utilisation": gflops / peak,
            "conditions": settings.conditions,
            "command": settings.command,
            **extra,
        }
        benchmark.extra_info.update(info)
        RECORDS.append(info)
        if settings.records:
            write_records(settings.records)
        return info

    return measure


def _cpu_name():
    """The CPU's model name and core count where Linux tells them, else the machine."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [
                line.split(":", 1)[1].strip()
                for line in f
                if line.startswith("model name")
            ]
    except OSError:
        names = []
    if names:
        return f"{names[0]} ({os.cpu_count()} cores)"
    return platform.processor() or platform.machine()


def write_records(path):
    """The records so far, in the layout of pytest-benchmark's JSON that make_table reads."""
    data = {
        "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine_info": {
            "cpu": {"brand_raw": _cpu_name()},
            "node": platform.node(),
        },
        "benchmarks": [{"extra_info": r} for r in RECORDS],
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)


def pytest_terminal_summary(terminalreporter):
    if not RECORDS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("keras-ddpm throughput")
    for r in RECORDS:
        write(
            f"{r['kind']:6} {r['variant']:13} {r['policy']:14} jit={r['jit_compile']!s:5} "
            f"batch={r['batch']:<4} {r['images_per_s']:9.2f} img/s "
            f"{r['gflops']:9.1f} GFLOP/s  {100 * r['utilisation']:5.1f} % of "
            f"{r['peak_gflops']:.0f} GFLOP/s matmul peak"
        )
    lines = report.summary_lines(RECORDS)
    if lines:
        terminalreporter.section("keras-ddpm ratios (measured side by side)")
        for line in lines:
            write(line)
