"""Regenerate the results page from pytest-benchmark JSON files.

    python benchmarks/make_table.py benchmarks/results/*.json -o docs/benchmarks.md

Each JSON file (written by `pytest benchmarks/ --benchmark-json=...`) becomes one
section: the machine, the load it ran under, the command, every measurement and
the ratios measured side by side. Files written by `benchmarks/quality.py`
become the quality section: FID per recipe at equal wall time, with the floor
and the baselines measured in the same run. Files written by
`benchmarks/quality_curve.py` become the quality-against-time section: a table
of FID per budget and sampler, and its plot (`images/quality-curve-<file>.png`
beside the page).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402

HEADER = """# Benchmarks

Throughput of training and sampling on each Keras backend, measured with
[pytest-benchmark](https://pytest-benchmark.readthedocs.io) by the suite in
`benchmarks/`. Every number on this page is generated from the JSON files in
`benchmarks/results/` by `benchmarks/make_table.py`; regenerate it with the
commands below.

## Running the suite

On a CPU, one backend at a time, at the default small sizes (a 32×32 U-Net with
widths 32/64/96/128, batch 16; sampling 4 images with 100 DDPM steps), each
benchmark compiled first and then timed over 3 rounds:

```bash
pip install -e ".[bench,jax,torch,tensorflow]"
KERAS_BACKEND=jax python -m pytest benchmarks/ --benchmark-only \\
    --conditions "quiet machine" --records benchmarks/results/cpu-jax.json
python benchmarks/make_table.py benchmarks/results/*.json -o docs/benchmarks.md
```

`--records` rewrites its JSON file after every benchmark, so a run cut short
still leaves what it measured; `--conditions` states the load the machine was
under, and is printed with the results. pytest-benchmark's own
`--benchmark-json` files work with `make_table.py` as well.

`--full` switches to the 64×64 flowers U-Net (widths 64/128/256/512, 46.9 M
parameters), batches 64 and 256, and a 4×8 grid sampled with 1000 DDPM steps.
On an NVIDIA GPU machine with JAX and PyTorch, `benchmarks/run_gpu.sh` installs
the package offline, runs the full configuration on both backends in bfloat16 and
float32, and writes the JSON files and this page; `bash benchmarks/run_gpu.sh
--dry-run` checks all of it on a CPU in a few minutes. Options such as
`--image-size`, `--batch`, `--policy`, `--jit` and `--rounds` narrow a run
(`python -m pytest benchmarks/ --help`).

## How to read the tables

- **img/s**: images per second, the median of the timed rounds. Training rounds
  are one `fit` epoch of several batches; sampling rounds produce one batch.
- **GFLOP/img**: FLOPs per image counted from the network's layers by
  `kd.models.count_flops` (agrees with XLA's cost analysis within 3 %): a
  training step counts 3 forward passes, a sampled image one forward pass per
  step.
- **utilisation**: achieved GFLOP/s over the peak of a large matmul measured in
  the same run, at the same dtype (float32, or bfloat16 for `mixed_bfloat16`).
- **Ratios** compare variants measured side by side in the same run:
    - *train overhead*: a bare forward + backward + AdamW step of the same
      network on ready-made inputs (`bare_fit`) over `DiffusionModel.fit`
      (`diffusion_fit`). Above 1 is the cost of drawing noise and timesteps, the
      schedule lookups, the loss and the EMA update.
    - *sampling overhead*: the same number of calls of the compiled network alone
      (`bare_calls`) over the library's sampling loop (`compiled`).
    - *sampling speed-up*: the compiled loop over a straightforward Python loop
      that calls the network eagerly once per step (`eager`).
    - *mixed_bfloat16 ÷ float32*: the speed-up of the mixed policy.
    - *vs diffusers*: keras-ddpm's GFLOP/s over the peer's, measured in the
      same run at the same image size, batch (and sampling steps): training
      (`diffusion_fit`) against diffusers' `UNet2DModel` trained by a plain
      PyTorch loop (random timesteps, `DDPMScheduler.add_noise`, ε-MSE, AdamW;
      no EMA), and DDIM sampling (`ddim`) against `DDIMScheduler` stepping the
      same network. The peer mirrors the benchmarked U-Net (same widths, two
      residual blocks per level, no attention, 8 groups) but has three blocks
      per up level, so its images cost more: GFLOP/s, each counted from its own
      layers the same way (2 per multiply-add, biases, 8 per GroupNorm
      element), is the fair rate, and the img/s ratio is printed beside it.
      Targets: ≥ 1.0 for training, ≥ 1.2 for sampling.

## The peer baseline

`benchmarks/test_peers.py` times diffusers beside the library when diffusers
is installed (`pip install -e ".[bench-peers]"`; it is skipped, with that
reason, otherwise). The issue-sized comparison, one backend at a time:

```bash
KERAS_BACKEND=tensorflow python -m pytest benchmarks/ --benchmark-only \\
    -k "diffusion_fit or bare_fit or test_sampling and ddim or peer" \\
    --policy float32 --sample-batch 16 --sampling-steps 50 \\
    --conditions "quiet machine" --records benchmarks/results/peers-epyc-avx512-cpu-tensorflow.json
```

Compare ratios, not rates across files: on a shared 2-core machine the same
diffusers step ran at 112 to 139 GFLOP/s within half an hour, so only the two
sides of one run share their conditions. On PyTorch, add `--jit false true`
to time `torch.compile` as well (about 3.6 minutes of compiling per variant).

The latest runs, on two cores of an AMD EPYC with AVX-512, batch 16, float32,
one backend after another (`peers-epyc-avx512-cpu-*.json`, 2026-12-04):

| backend | training, keras-ddpm ÷ diffusers (GFLOP/s) | img/s ratio | sampling, DDIM 50 | img/s ratio |
|---|---|---|---|---|
| TensorFlow, graph; XLA | 0.71; 0.77 | 0.94; 1.02 | 0.77; 0.76 | 1.03; 1.01 |
| PyTorch, eager; `torch.compile` | 0.62; 0.83 | 0.83; 1.10 | 0.49; 0.52 | 0.65; 0.69 |
| JAX (XLA) | 0.41 | 0.55 | 0.73 | 0.97 |

The peer's network does a third more work per image (three residual blocks
per up level against two, on wider concatenations), in larger convolutions
that run closer to the machine's peak, so keras-ddpm trains about as many
images per second as diffusers on TensorFlow while its GFLOP/s ratio stays
below 0.8; the targets (≥ 1.0 training, ≥ 1.2 sampling) are not met on this
machine. `torch.compile` (`compile(jit_compile=True)` on PyTorch) lifts the
PyTorch backend past 0.8, at the cost of minutes of compiling. (The
PyTorch row predates the change of "Keras' per-call work on PyTorch"
below; with it, eager PyTorch passes 0.8 without compiling: see the rerun
below the 64×64 table.) The training step's own overhead over the bare network step stayed within 10 % on
TensorFlow (0.96, 1.02) and PyTorch (1.03, 0.97); on JAX it was 1.19 in this
run (0.98 the day before), and six more rounds of each right after gave
medians of 58 to 62 images/s against 63 (1.03 to 1.09).

At 64×64 (the same command with `--image-size 64`: the same widths and
batch, 2026-12-06, TensorFlow, PyTorch, then JAX with jaxlib's default
flags and with the YNNPACK list emptied (below),
`peers-64-epyc-avx512-cpu-*.json`; diffusers trained 25.8, 26.1, 27.9 and
27.4 images/s in them; the PyTorch row was measured again with this
version's `Conv2D`, where diffusers trained 28.2):

| backend, 64×64 | training, keras-ddpm ÷ diffusers (GFLOP/s) | img/s ratio | sampling, DDIM 50 | img/s ratio |
|---|---|---|---|---|
| TensorFlow, graph; XLA | 0.87; 0.78 | 1.11; 0.99 | 1.02; 0.90 | 1.29; 1.14 |
| PyTorch, eager | 0.86 (0.88 before) | 1.09 (1.11) | 0.87 (0.85) | 1.10 (1.07) |
| JAX, default flags; YNNPACK list emptied | 0.45; 0.59 | 0.57; 0.75 | 0.63; 0.78 | 0.80; 0.99 |

At this size the PyTorch backend passes its 0.8 target without
`torch.compile`, and keras-ddpm trains more images per second than diffusers
on both backends; TensorFlow's graph mode beats its XLA here, where XLA won
at 32×32 (the recipe's `jit_compile="auto"` times both on a TensorFlow CPU
and keeps the faster). The GFLOP/s targets (≥ 1.0 training, ≥ 1.2
sampling) are still not met. The training step's overhead over the bare
step: 0.89 and 1.02 on TensorFlow, 1.07 on PyTorch, 1.02 and 1.04 on JAX.
JAX stays the slowest backend at 64×64 too (16.0 and 20.5 images/s against
28.5 for TensorFlow's graph), with or without YNNPACK.

The PyTorch rows again, with the blocks' direct sublayer calls (see
"Keras' per-call work on PyTorch" below): the same command at 32×32 (with
`--jit false true`) and at 64×64, 2026-12-07, on the slower host of the
`-slow-` files, where every rate is about half the faster host's
(`peers-epyc-avx512-slow-cpu-torch.json`,
`peers-64-epyc-avx512-slow-cpu-torch.json`; diffusers trained 49.1 and
12.8 images/s in them):

| PyTorch, this version | training ÷ diffusers (GFLOP/s) | img/s ratio | sampling, DDIM 50 | img/s ratio |
|---|---|---|---|---|
| 32×32, eager; `torch.compile` | 0.81; 0.72 | 1.09; 0.96 | 0.75; 0.70 | 1.00; 0.93 |
| 64×64, eager | 0.92 | 1.16 | 0.96 | 1.22 |

Eager PyTorch now passes its 0.8 training target at both sizes, and at
32×32 it beat `torch.compile` (which made 0.83 on the faster host before
the change; why it lost here was not looked into). The training step's
overhead over the bare step was 1.06 (eager) and 1.07 (compiled) at
32×32, 0.99 at 64×64. Sampling at 64×64 makes 1.22 times diffusers'
images per second, but its GFLOP/s ratio, 0.96, is still short of 1.2,
and that target is out of reach on this CPU: diffusers' DDIM sampling ran
at 136 and 148 GFLOP/s in these runs, 89 and 94 % of PyTorch's own
matrix-product peak measured beside it (153 and 157), so 1.2 times its
rate (163 and 178 GFLOP/s) is more than that peak. With the peer that
close to the machine's limit, the ratio can only approach 1.0, by cutting
what is not convolution.

### Where a training step's time goes

`benchmarks/profile_step.py` profiles the same training step on the PyTorch
backend beside diffusers' (both eager, in the same framework) with
`torch.profiler` and sorts each operator's own CPU time into categories; the
tables are under "Training step profiles: results" below (two cores of an
AMD EPYC with AVX-512, 2026-12-06, `profile-64-…` and `profile-32-…`):

```bash
KERAS_BACKEND=torch python benchmarks/profile_step.py --image-size 64 \\
    --conditions "quiet machine" \\
    --out benchmarks/results/profile/profile-64-epyc-avx512-cpu-torch.json
```

- Convolutions are most of both steps (78 % of keras-ddpm's operator time at
  64×64, 82 % of diffusers'), and keras-ddpm's run at least as fast per
  FLOP: 396 against 366 GFLOP/s at 64×64, 352 against 350 at 32×32. The
  channels-last path of the library's `Conv2D` leaves no layout work to
  recover there.
- Everything else costs keras-ddpm about as many milliseconds as it costs
  diffusers, although keras-ddpm's network has fewer layers and a fifth
  (64×64) to a quarter (32×32) fewer FLOPs: 97 against 105 ms per step at
  64×64 and 42 against 38 at 32×32, plus at least 10 and 19 ms outside any
  operator (Keras' layer calls in Python; diffusers' loop shows none). Such
  costs do not shrink with the network's FLOPs, and a GFLOP/s ratio charges
  them to the smaller network: the same run's wall times, 453 against 552
  ms per step at 64×64 (1.22 times diffusers' images per second), are 0.96
  of its GFLOP/s, and 153 against 157 ms at 32×32 (1.02 times) are 0.76.
  `torch.compile`, which removes the Python part, took 32×32 to 0.83 (the
  table above).
- GroupNorm is the one category where the channels-last layout costs:
  PyTorch's CPU kernel takes 2.1 ms forward and backward for a (16, 32, 64,
  64) tensor in channels-last memory against 1.1 ms in channels-first
  memory (0.47 against 0.40 ms at 32×32 with 64 channels, equal at 8×8), so
  keras-ddpm's GroupNorm costs 30 ms per step at 64×64 against diffusers'
  23 for more layers. Copying to channels-first memory and back around it
  costs as much as it would save.

TensorFlow's graph mode has no such profile here; pricing parts of the same
step at 64×64 by taking them out (an exploratory script, not kept; medians
of five 8-step epochs, `jit_compile=False`) put the library's GroupNorm at
about 70 ms of a 517 ms step (447 ms with each GroupNorm replaced by its
input) and SiLU at about 33 ms (484 ms without), about twice what they cost
on PyTorch. Two rewrites of the GroupNorm did not beat it: its computation
compiled by XLA inside the graph (550 against 546 ms in the same pair of
runs) and a hand-written gradient with fewer passes (519 and 537 against
510 and 542 ms).

The two profiles already have this version's change to the library's
`Conv2D`:
each convolution's bias goes into PyTorch's convolution kernel (which adds
it and sums its gradient in the same pass), and the stride-2 downsampler
takes the channels-last path as well (Keras' path copied its input twice,
padded it and copied its output). Against the previous version, in wall-time rounds
alternating with diffusers', the change was within the noise: keras-ddpm's step
took 0.81 and 0.81 of diffusers' before and 0.82 and 0.81 after at 64×64,
0.98 and 0.96 before and 0.96 and 0.95 after at 32×32 (two processes of
five rounds each per side); the suite's rerun at 64×64 (the table above)
moved from 0.88 to 0.86.

The suite's own ratios come out a little lower than these scripts' on
PyTorch: the same alternating rounds of 4 steps at 64×64 run inside a
pytest process took keras-ddpm 483 and 488 ms per step against 464 and 459
in a plain Python process, while diffusers' step took about the same in
both (560 and 556 against 573 and 560 ms). The cause was not found: not
the cyclic garbage collector (frozen or off), not pytest's warning capture,
and not the benchmarks' `conftest.py` (a test file in
an empty folder did the same).

**Keras' per-call work on PyTorch.** Every `Layer.__call__` does work
of its own before it reaches the layer's `call`: it converts the inputs, opens a name scope, settles the autocast
scope and the call context and checks the build. On two cores of an AMD
EPYC with AVX-512 that is about 60 µs of Python a call (a `Dropout(0.0)`
took 59 µs through `__call__` and nothing through `call`), and the
benchmark network's forward pass made 162 such calls (55 convolutions, 37
group normalizations, 20 dense layers, 18 residual blocks and 18 dropouts
of rate 0 among them). Where PyTorch runs eagerly that is paid on every
forward pass; TensorFlow and JAX pay it only while tracing. Inside a
composite layer's `call` the work is already done by its own `__call__`,
so the library's blocks now call their built sublayers' `call` directly
(`keras_ddpm/layers/sublayers.py`: quantized, rematerialized or unbuilt
sublayers still go through `__call__`) and skip a dropout of rate 0. The
forward pass of that network at batch 16 took 122.5, 106.2 and 107.0 ms
before and 93.8, 93.5 and 94.6 ms after (medians of 15, three processes
per side in turns; an exploratory script, not kept). The throughput
suite, run on PyTorch in turns before and after the change
(`benchmarks/results/sublayer-calls/`, 2026-12-07, the suite's command
with `--records` there):

| PyTorch, 32×32, batch 16 | training img/s (diffusers) | ÷ diffusers (GFLOP/s) | DDIM 50 img/s (diffusers) | ÷ diffusers |
|---|---|---|---|---|
| before, rounds 1–3 | 46.7, 45.0, 46.1 (55.0, 51.2, 47.3) | 0.64, 0.66, 0.73 | 2.40, 2.35, 2.28 (3.33, 3.18, 3.10) | 0.54, 0.55, 0.55 |
| after, rounds 1–3 | 49.7, 61.5, 61.2 (50.8, 48.3, 50.9) | 0.73, 0.95, 0.90 | 2.88, 3.35, 3.24 (3.00, 2.98, 3.43) | 0.72, 0.84, 0.71 |
| 64×64, before; after (one round each) | 13.9; 14.3 (13.4; 13.8) | 0.82; 0.81 | 0.92; 1.05 (0.88; 0.83) | 0.82; 1.00 |

At 32×32 the PyTorch backend trained 33 % more images per second (median
of the three rounds, 61.2 against 46.1) and sampled 38 % more (3.24
against 2.35), and passed its training target (≥ 0.8 of diffusers) in two
of the three rounds; at 64×64, where a step is four times the arithmetic,
training was within the noise and sampling gained 14 %. The same rounds
also show how far one run's ratio moves on this machine: diffusers' own
training ran at 47 to 55 images/s.

**The optimizer's update on PyTorch.** Keras' PyTorch `Adam` updates the
weights in ten multi-tensor operations (`AdamW` adds its decay as an
eleventh), which a CPU runs tensor by tensor. The library's PyTorch
training step now gives the ten to PyTorch's fused Adam kernel (see the
backends guide). `benchmarks/optimizer_update.py` times both in one
process, in alternating rounds, on the benchmark network's 224 weights (4.1
M parameters), on the slower host of the `-slow-` files
(`benchmarks/results/fused-adam/update-*`, 2026-12-07):

| PyTorch, medians | Keras' path | fused route |
|---|---|---|
| `AdamW.apply`, 15 rounds | 22.7 ms | 8.3 ms |
| `fit` step, 32×32, batch 16, 15 rounds of 6 steps | 274.8 ms | 263.9 ms |
| `fit` step, 64×64, batch 16, 7 rounds of 6 steps | 930.2 ms | 929.9 ms |

What is left of the update is Keras' own work around it (its decay pass,
reading each variable's value). At 32×32 the step lost about what the
update lost (11 of 14 ms); at 64×64, where a step takes 0.93 s, the 15 ms
were lost in the noise. The suite, in rounds alternating with the
version before (`benchmarks/results/fused-adam/peers-32-*`, the suite's
command with `-k "diffusion_fit or bare_fit or peer"` and `--records`
there):

| PyTorch, 32×32, batch 16 | training img/s (diffusers) | ÷ diffusers (GFLOP/s) |
|---|---|---|
| before, rounds 1–3 | 53.1, 55.2, 47.8 (51.8, 53.9, 41.7) | 0.77, 0.77, 0.86 |
| after, rounds 1–3 | 61.2, 60.2, 54.1 (41.8, 49.9, 47.4) | 1.10, 0.91, 0.85 |

The medians moved from 53.1 to 60.2 images/s and from 0.77 to 0.91 of
diffusers, far more than the 4 % of the step timed above: diffusers' rate
moved from 42 to 54 images/s between rounds, so one round's ratio (1.10 in
the first) says little, and the step's own timing is the change to expect.
The suite's full run on this version, with sampling
(`peers-32-after-sampling-…`, `peers-64-after-…` there), gave 0.93 for
training at 32×32 (1.24 times diffusers' images per second) and 0.90 at
64×64 (1.15), with sampling at 0.65 and 0.87 (0.86 and 1.10 in images per
second).

**The optimizer's update on TensorFlow.** Keras' TensorFlow `Adam` builds
the update of each weight from about twenty small operations; the
library's TensorFlow training step gives it to TensorFlow's
`ResourceApplyAdam` kernel, one operation per weight (see the backends
guide). The same script under `KERAS_BACKEND=tensorflow` times both, the
update inside a `tf.function` and the `fit` step in graph mode, and the
first epoch of each side, which traces and compiles the step (after a
third network's first epoch, which takes what the process pays once), on the
slower host (`update-32-…-tensorflow.json` and, with `--widths 16 32 64
--batch 8 --steps 24`, a network of the recipe's widths with two blocks,
`update-32-w16-b8-…-tensorflow.json`, 2026-12-07):

| TensorFlow, medians of 15 rounds | Keras' path | one kernel per weight |
|---|---|---|
| `AdamW.apply`, suite network (224 weights) | 23.9 ms | 13.2 ms |
| `fit` step, suite network, 32×32, batch 16 | 306.0 ms | 303.5 ms |
| first epoch (trace, compile, 6 steps), suite network | 26.9 s | 17.4 s |
| `AdamW.apply`, widths 16/32/64 | 9.6 ms | 8.3 ms |
| `fit` step, widths 16/32/64, batch 8 | 94.0 ms | 90.5 ms |
| first epoch (24 steps), widths 16/32/64 | 21.3 s | 15.5 s |

A step takes 1 to 4 % less time, and the first epoch of a new model, which
traces and compiles its step and which every recipe run and each of its
timing children pays, 6 to 10 s less (one first epoch per side, Keras' path
first).

On JAX, much of its gap to the other backends was XLA's own choice, not
the library's. jaxlib 0.10
hands some dots, elementwise operations and reductions of a CPU program to the
YNNPACK library by default (the list `--xla_cpu_experimental_ynn_fusion_type`),
and for these U-Nets that is slower than the code XLA writes itself. With the
list emptied, `XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=`, two runs
side by side on two cores of an AMD EPYC with AVX-512 (2026-12-06, the same
command, `peers-epyc-avx512-cpu-jax-default-flags.json` then
`peers-epyc-avx512-cpu-jax-no-ynn-fusion.json`; diffusers trained 97.2 and
96.8 images/s in them):

| JAX, 32×32, batch 16 | training: img/s | ÷ diffusers (GFLOP/s) | sampling, DDIM 50: img/s | ÷ diffusers |
|---|---|---|---|---|
| jaxlib's default flags | 63.4 | 0.49 | 5.39 | 0.67 |
| `--xla_cpu_experimental_ynn_fusion_type=` | 84.7 | 0.66 | 7.86 | 1.01 |

The benchmark's network took 196 to 198 ms per `fit` step with the list
emptied (three processes) against 269 and 284 ms with the default flags (two).
The recipe's network (widths 16/32/64, batch 8) took 67 to 69 ms per step in
six of nine processes with the list emptied, but 88 ms in the other three, the
default flags' speed (84 to 88 ms in five); TensorFlow with XLA took 54 to 58
ms in the same hour, and TensorFlow 2.21's XLA did not change with the flag.
The setting is the user's: a library cannot set XLA's flags for a process that
may already have started JAX, and the gain was measured on this CPU and jaxlib
only (the backends guide shows how to set it). The throughput suite's recorded
command names `XLA_FLAGS` when set.

Earlier runs, on the same machine class (`peers-cpu-*.json`) and on two cores
of an AMD EPYC with AVX2 only (`peers-epyc-avx2-cpu-*.json`):

| backend | AVX-512: training | sampling, DDIM 50 | AVX2: training | sampling |
|---|---|---|---|---|
| TensorFlow (graph; XLA) | 0.80; 0.79 | 0.86; 1.08 | 0.26 (0.52)¹; 0.56 | 0.90; 0.78 |
| PyTorch | 0.66 | 0.55 | 0.72 | 0.62 |
| JAX (XLA) | 0.59 | 0.61 | 0.38 | 0.60 |

¹ TensorFlow's graph-mode training rounds took either about 2.6 s or about
5.2 s (four steps each, the same work); the median gives 0.26, the fastest
round 0.52. This was first put down to the machine. It was the benchmark's
input: the harness gave `fit` numpy arrays, which Keras wraps in a `tf.data`
pipeline with autotuning, and at an epoch's start that pipeline stalled the
first step by 1.1–1.5 s in about a third of epochs (9 of 29 epochs of 8
steps; none of 29 with autotuning off). A round is one short epoch, so the
stall decided the median. The harness now feeds TensorFlow's `fit` from a
pipeline without autotuning, as `kd.datasets.load` builds it; in one session
on the AVX-512 machine that took graph-mode training from 0.39 of diffusers
(`peers-numpy-fit-epyc-avx512-cpu-tensorflow.json`) to 0.80, with its
overhead over the bare step from 1.93 to 1.00.

Under XLA, TensorFlow drew the training noise through a slow CPU path:
`tf.random.stateless_normal` with its default `alg="auto_select"` takes 4.6
ms for a (8, 32, 32, 3) draw compiled with XLA, 0.36 ms when asked for Philox
by name, which gives the same numbers. The library now asks by name (training
noise, sampler noise, inpainting); the training recipe's step (widths
16/32/64, batch 8, XLA) went from 36.5 to 31.5 ms at best, where a bare step
of the same network takes 27.5 ms. On PyTorch, the EMA update became one
multi-tensor interpolation over all weights (7 → 1.3 ms a step for the
224-weight U-Net above), within the noise of this benchmark.

## Quality per wall-clock minute

`benchmarks/quality.py` trains recipes of `kd.training.train` on
`synthetic_flowers` (32×32) for the same wall-clock budget each, samples with
the EMA weights, and scores FID under the shipped flowers encoder
(`kd.metrics.flowers_encoder`) against held-out real flowers (a seed the
training set never uses). In the same run it scores the floor (other real
flowers, at the same sample size), a full-covariance Gaussian fitted to the
training pixels, and uniform noise. `small` changes the network of
`defaults`; each row below it changes one thing of `small`. The recipe's
defaults are the row that won on both seeds. Each change is stated against the
configuration it names, so a file that skips a row still reads right. Every
row has two seeds; the spread is the larger minus the smaller FID. These rows,
like the quality curves, score the trained model alone; the recipe's final
pictures are also guided by its half-way state (see Autoguidance below):

```bash
KERAS_BACKEND=tensorflow python benchmarks/quality.py --minutes 3 --num 256 \\
    --sampler dpm_solver --steps 20 --conditions "quiet machine" \\
    --out benchmarks/results/quality-cpu-tensorflow.json
python benchmarks/make_table.py benchmarks/results/*.json -o docs/benchmarks.md
```

A change that costs nothing per step (a loss weight, an EMA momentum) is
better compared at equal steps: `--epochs 7` (1,428 steps, about what the
main job buys in its 8.5 minutes) trains every run for the same number of
epochs instead of minutes, so the machine's speed at the time, which on a
shared machine moved a run's steps by half, does not enter the comparison. A repeat of a configuration and seed is
listed as a second run of that seed ("FID per run (seed)"). Newer files also
score the same samples (same noise) drawn with the raw, not averaged, weights
("raw weights"), which says whether the EMA helps at that budget. Files
scored with `--num 1024` also give the mean FID of each run's first 256
samples, comparable with the files scored at 256.

What the FID is made of, measured with the main job's model (the default
recipe, 4,453 steps at batch 8, FID 21.7 under DPM-Solver++ 20) by
`benchmarks/fid_anatomy.py runs/flowers/model.keras` (results in
`benchmarks/results/fid-anatomy/`): the feature space is very sensitive to
fine texture (real flowers with added Gaussian noise of σ = 0.05 score 3.2,
σ = 0.1 score 52; blurred with σ = 0.8 pixels 2.8, with 1.2 pixels 14), but
the samples' distance is mostly structure. Read through the encoder's heads,
the samples' petal counts pile up at 6–9 (none at 11 or 12) where the real ones
spread evenly over 4–12, and their flower sizes vary much less than the real
ones (standard deviation 0.32 against 0.58 in the head's units); an unsharp
mask on the samples only takes FID from 21.7 to 19.0. Until the network places
petals, no loss weighting or EMA setting has moved FID by more than the seed
spread: an earlier quality curve (batch 16, widths 32/64/96, a constant
learning rate) stayed near 23 up to about 1,600 steps and fell only beyond
(16 at 3,100 steps, 10 at 6,000).

The main job with the cosine decay, from a fresh clone on two cores of an AMD
EPYC with AVX-512 (12,808 steps in its 8.5 minutes,
`anatomy-main-job-cosine-epyc-avx512-cpu-tensorflow.json`), scores 11.4, and
11.5 after the unsharp mask: its samples have no texture problem left that
the mask fixes. Structure remains: petal counts still pile up at 7–9 (of 256
samples 6 have four petals and 1 twelve, of 256 real flowers 36 and 23), and
flower sizes vary less than the real ones (0.41 against 0.58). With
self-attention at 16×16 as well (the default since `cosine-attn16`), the
main job from a fresh clone on the same machine (14,149 steps,
`anatomy-main-job-attn16-epyc-avx512-cpu-tensorflow.json`) scores 8.1: its
petal counts spread wider (48 of 256 samples have four to six petals, 87
of 256 real flowers, 36 of the previous main job's samples) and its sizes
vary more (0.47), but the counts still crowd 8–10. With two residual blocks
per level (the default since `attn16-depth2`), the main job from a fresh
clone (8,456 steps, `anatomy-main-job-depth2-epyc-avx512-cpu-tensorflow.json`)
scores 7.3 (7.9 after the unsharp mask); 42 of its 256 samples have four to
six petals, 159 have eight to ten (real: 80), and sizes vary as before (0.48).
With `fit` running 8 steps per call on TensorFlow, the main job from a fresh
clone (8,757 steps,
`anatomy-main-job-steps-per-call-epyc-avx512-cpu-tensorflow.json`) scores
6.9 (7.9 after the unsharp mask); 52 of its samples have four to six petals,
141 eight to ten, and sizes vary as before (0.47). The same model scores 6.7
to 8.2 on four other sets of 256 samples: a difference of about 1 between
two runs at this sample size is within the yardstick's own noise.
With the EMA momentum at 0.995 (the default since `depth2-ema0.995`), the
main job from a fresh clone (8,388 steps,
`anatomy-main-job-ema0.995-epyc-avx512-cpu-tensorflow.json`) scores 8.6,
and 8.4 on 1,024 samples
(`rescore-main-job-ema0.995-1024-samples-epyc-avx512-cpu-tensorflow.json`):
just above the benchmark's runs of the previous default (5.9 to 8.3 on
1,024 samples) and 1.0 above the previous main job's model (7.4 on 1,024). 195 of its 256
samples have seven to ten petals (real: 112), and sizes vary as before
(0.45). With the final pictures guided by the model halfway through training
(autoguidance, the default since then), the main job from a fresh clone
(8,412 steps, guide at step 4,940,
`anatomy-main-job-autoguidance-epyc-avx512-cpu-tensorflow.json`) scores 4.6
guided and 7.1 unguided (256 samples; 4.0 and 6.2 on 1,024,
`rescore-main-job-autoguidance-*`): 140 of 256 guided samples have seven to
ten petals (unguided: 174), 67 four to six (unguided: 47), and sizes vary
almost as much as the real ones (0.54 against 0.58; unguided 0.495).
Guiding only the timesteps up to 700 at scale 5, the main job (8,677 steps,
`*-main-job-guidance-interval-*`) scored 2.25 on 256 samples and 1.98 on
1,024 (6.1 alone); with today's default, up to 600 at scale 5, the main job
(8,717 steps, `*-main-job-cut600-*`) scored 2.10 and 2.10 (5.6 alone, 1.92
up to 700 on the same model: 3.8 times the floor of 0.56 on 1,024 samples),
and 1.74 on 1,024 guided at timesteps 150 to 600 at scale 7
(`rescore-main-job-cut600-low150-*`). A later main job from a fresh clone
(7,963 steps, `*-main-job-low150-*`), drawn with that setting, scores 2.65
on 1,024 samples with the default (4.8 times the floor; 2.87 with 150 to
600 at scale 7, 8.5 alone).

FID cannot tell a model that copies its training images from one that
generalises, so `fid_anatomy.py` also finds each image's nearest training
image (of the recipe's training split, mirrored ones included) and its
nearest validation image, against as many training images drawn at random.
The 8,717-step main job's model, guided by default (`fid_anatomy.py
runs/flowers/model.keras --guide runs/flowers/guide.keras --num 1024`,
`anatomy-main-job-copying-*`), does not copy: the median
root-mean-square distance (pixels in [0, 1]) is 0.133 to the training images
and 0.133 to the validation images, and 46 % of samples are nearer the
training images, where 1,024 other real flowers give 0.130, 0.131 and 50 %.

The quality curves below are one seed per budget on the same machine. With
the recipe as it stood before attention at 16×16 (`b8x-cosine`,
`curve-epyc-avx512-cpu-tensorflow.json`), FID keeps falling with time: 19.1
after 2 minutes (2,912 steps), 14.7 after 5 (8,118), 11.3 after 10 (18,262)
and 7.0 after 20 (37,657) under DPM-Solver++ 20 steps. With attention at
16×16 and 8×8 (the default until `attn16-depth2`,
`curve-attn16-epyc-avx512-cpu-tensorflow.json`):
16.7 after 2 minutes (2,507 steps), 14.9 after 5 (7,309) and 9.6 after 10
(16,012). With today's default, two residual blocks per level as well
(`curve-depth2-epyc-avx512-cpu-tensorflow.json`): 33.5 after 2 minutes
(1,110 steps: compiling the deeper network and timing XLA take a large part
of so short a budget), 15.6 after 5 (4,479) and 5.9 after 10 (10,195). The
deeper network loses below about 5 minutes and wins from the main job's 8.5
on. Doubling the time takes off about a third of the FID or more: the recipe
is nowhere near its limit at 10 minutes, and 3× the floor (about 1.3) is
beyond what 2 cores buy in that time.

## Quality against training time

`benchmarks/quality_curve.py` trains the main job's recipe (`keras-ddpm train`
with its defaults) once per wall-clock budget, from scratch, as `keras-ddpm
train --minutes M` would: the learning rate's cosine decay follows each run's
own budget, so each point is what a user with that much time gets. After
each run it samples 256 images with every sampler at its default number of
steps and scores them as above, with the floor and the baselines from the
same run. (Files without `"runs": "independent"` come from an earlier version
that trained once and resumed from a checkpoint at each budget, with a
constant learning rate.)

```bash
KERAS_BACKEND=tensorflow python benchmarks/quality_curve.py --budgets 2 5 10 20 \\
    --num 256 --conditions "quiet machine" \\
    --out benchmarks/results/quality-curve/curve-epyc-avx512-cpu-tensorflow.json
python benchmarks/make_table.py benchmarks/results/*.json \\
    benchmarks/results/quality-curve/*.json -o docs/benchmarks.md
```

## Autoguidance

`benchmarks/autoguidance.py` trains the main job's recipe (its defaults, 8.5
minutes) once per seed, keeping the EMA weights at every epoch end, and
samples the final model alone and guided by its own earlier state
([autoguidance](guides/autoguidance.md)): guides from a quarter, half and
three quarters of the budget at scale 2, and the half-way guide (the one the
recipe keeps as `guide.keras`) at scales 1.5 to 3. A guide "at f" is the
model at the first epoch end after f × 8.5 minutes of `fit`. Every setting
samples from the same noise. Real flowers spread their petal counts evenly
over 4 to 12: a third at 4–6, four ninths at 7–10, two ninths at 11–12.
Results: "Quality results" below.

In the first file (`autoguidance-8.5min-…`), the run's own `guide.keras`
came one epoch earlier than the 50 % row (step 4,531): the recipe then took
half of the time left to `fit` after building and timing; it now takes the
50 % row's rule. Over two seeds at 1,024 samples, the half-way guide at
scale 2 took FID from 6.62 and 8.03 to 5.35 and 5.55 (mean 7.33 to 5.45,
and the seeds' spread from 1.4 to 0.2), the best mean of the settings
tried there.

The three `autoguidance-interval…` files score that guide over an interval
of timesteps only (`generate(guidance_interval=...)`: the model alone at
the other steps), each with new runs and its own model-alone and
every-step rows. Leaving the noisiest steps unguided let larger scales pay:
guiding timesteps 0 to 700 at scale 5 scored 2.37 and 2.35 (mean 2.36,
4.2 times the floor) where the model alone scored 7.99 and scale 2 at every
step 5.49 in the same runs, the best mean of the 13 interval and scale
pairs tried; `generate`'s defaults with a guide, and the recipe's, follow
it. In the last file, seed 0 trained fewer steps (7,746): a one-minute test
run overlapped its training.

The `autoguidance-keep…` files come from two runs trained once and kept
(`--keep`): the first file trained and scored them, the others rescored
the saved runs (`--rescore`: the same models, no new training; at 20 steps
the model alone scores the same in every file) over high cuts of 500 to
700 and scales of 4 to 8, guides from 30 % to 70 % of the budget, and 30
and 40 sampling steps. Guiding timesteps 0 to 600 at scale 5 scored 1.35
and 1.93 (mean 1.64, 2.9 times the floor) against 1.49 and 1.94 at 0 to
700; scale 6 tied (1.61) and lost on a third model (the main job's,
`rescore-main-job-guidance-interval-0-600-scale*` in
`benchmarks/results/fid-anatomy/`), so
`generate`'s default became 0 to 0.6 T at scale 5. The half-way guide
stayed the best age, and more sampling steps changed little. With that
default, other samplers did worse on the same runs: Heun with 10 steps
(19 network evaluations) 3.58 and 4.95, DDPM with 50 steps 2.04 and 2.36,
against 1.35 and 1.93 for DPM-Solver++ with 20.

The `autoguidance-keep-low…` files rescored the same runs with the last
steps unguided: low ends of 50 to 200 (the 20 steps visit 999, 949, …,
49, so 150 leaves the last three unguided), high ends of 600 to 700 and
scales of 5 to 8. Guiding timesteps 150 to 600 at scale 7 scored 1.21 and
1.44 (mean 1.33) against 1.35 and 1.93 for the default, and 1.74 against
2.10 on the main job's model (step 8,717). On the two models held out from
that choice it lost: 2.87 against 2.65 on a later main job's and 2.22
against 1.87 on a third kept seed (`autoguidance-keep-seed2-…`, seed 2,
8,131 steps), so the default stays 0 to 0.6 T at scale 5 (the autoguidance
guide has the whole table).

The `autoguidance-data…` files train the recipe on another number of
`synthetic_flowers` (`--num-images`; the recipe trains on 80 % of them),
scored with the default guidance. Neither direction beat the recipe's 4,096
(1.35 and 1.93 on seeds 0 and 1, `autoguidance-keep-cuts-…`): 16,384 images
scored 3.33 and 3.17 (8.27 and 8.47 alone) at about as many steps (8,008
and 8,646), and 2,048 images scored 1.97 and 2.29 (9.17 and 8.29 alone), in
fewer steps (7,188 and 7,988: twice the epochs, each ending with a
validation pass and a checkpoint). Rendering 16,384 flowers also takes
about 29 s before training starts. 8,192 images, between the two that lost,
scored 1.69 and 1.45 (6.88 and 6.40 alone; 8,926 and 9,030 steps), a tie
with 4,096 on two seeds (means 1.57 and 1.64), so a third seed decided:
5.08 guided (6.04 alone, `autoguidance-data8k-seed2-…`) against 4,096's
1.87 on seed 2, a guide that made the model worse at nearly every petal
count. Over the three seeds 8,192 images average 2.74 against 1.72.
Min-SNR-γ loss weighting with γ = 5 (`--min-snr-gamma 5`,
`autoguidance-minsnr5-…`; Hang et al. 2023, last tried before the recipe
had v-prediction, attention and autoguidance) made the model alone better
on both seeds (5.90 and 7.26 against 6.30 and 8.24) and the guided
pictures much worse (2.35 and 3.97 against 1.35 and 1.93, in 8,508 and
7,859 steps), as the zero start of attention outputs did: the recipe keeps
the unweighted loss.

The `…-epyc-avx512-slow-…` files ran on a second 2-core AMD EPYC with
AVX-512 whose host was about half as fast: the recipe's step took 0.099 s
with XLA, against 0.052 s for the files above, so 8.5 minutes made 3,921
and 4,522 steps instead of about 8,700, and the recipe scored 11.50 and 11.38 guided
(17.72 and 14.50 alone; `autoguidance-recipe-8.5min-…-slow-…`). There one
residual block per level (`--block-depth 1`, 0.050 s per step) made twice
the steps and won both seeds by far: 3.84 and 8.49 (12.84 and 13.36
alone). Trained 13.7 minutes on that machine, to make about the steps
8.5 minutes make on the faster one, one block scored 2.30 and 4.77 (8.06 and 9.35 alone),
and two blocks, trained as long there (`autoguidance-recipe-13.7min-…`,
whose step took 0.083 s by then), 2.98 and 2.05 in 7,851 and 7,418 steps
(8.46 and 7.85 alone); on the faster machine two blocks scored 1.35, 1.93
and 1.87. So the better depth follows the steps the budget buys, and the
recipe's `block_depth="auto"` (the default since) chooses it: one block
unless the minutes left hold 12,000 steps of the timed one-block step.
Run again with that default (`autoguidance-auto-8.5min-…`, one block chosen
on both seeds, 8,195 and 8,364 steps), the one-block recipe scored 10.04
and 12.23 guided (14.40 and 14.32 alone): over its four 8.5-minute runs
there the guided FID spans 3.84 to 12.23 (mean 8.65, two blocks 11.44),
the unguided one 12.84 to 14.40 (mean 13.73, two blocks 16.11).
How long must that host train to reach the faster one's 8.5-minute
pictures? With the defaults and 20 minutes (`autoguidance-auto-20min-…`;
`auto` chose two blocks on both seeds, whose steps averaged 0.10 to 0.11 s
there), 10,000 and 10,978 steps scored 2.52 and 2.02 guided (mean 2.27,
4.1 times the floor; 7.81 and 5.28 alone): better than 13.7 minutes of two
blocks (mean 2.52), still short of the faster machine's 8.5 minutes (1.35
to 1.93) and of the 3× floor (1.67). Would more sampling steps help
models this good? The same two models drawn with 40 DPM-Solver++ steps
instead of 20 (`autoguidance-auto-20min-steps-40-…`, rescored, same
starting noise) scored 2.17 and 2.72 guided (20 steps: 2.52 and 2.02) and
7.81 and 5.47 alone (7.81 and 5.28): one run better, one worse, the mean
worse (2.44 against 2.27), at twice the sampling time; the recipe keeps 20.
Files that do not name the depth and predate `auto` ran two blocks (one
before the recipe's depth became 2); newer ones say what `auto` chose.
Two blocks at the 8×8 level only (`--block-depth 1 1 2`, one count per
level; `autoguidance-depth112-…`) cost 16 % more per step than one block
everywhere (64.2 against 55.5 ms, timed in turns in one process) and keep
776 k of the two-block network's 852 k parameters, but scored 15.26 guided
and 16.98 alone in 6,255 steps on seed 0, worse than every one-block run;
its seed 1 was stopped when the host slowed by half.
Are the guide's age and scale, chosen on the faster machine's two-block
runs, right for these one-block runs too? Rescored without new training
(`autoguidance-depth1-scales-…`, `autoguidance-auto-scales-…`, the
`…-scales-6-7-…` pair, `autoguidance-depth1-guide-ages-…` and
`autoguidance-auto-guide-ages-…`, over the four one-block runs at 8.5
minutes, guided at timesteps 0 to 600): scales 2, 3 and 4 scored worse
than 5 on every run (means 11.57, 9.91 and 9.04 against 8.65), scale 6
tied it (3.92, 8.66, 9.90 and 12.32 against 3.84, 8.49, 10.04 and 12.23;
mean 8.70) and scale 7 lost every run (mean 9.24), so the scores peak at
5 for one block as for two; guides at 35 % of the budget lost on
every run (mean 12.52) and at 65 % on three of the four (mean 10.39, 11.88
against 12.23 on the fourth). The mean of the snapshots from 40 % to 60 %
lost all four (mean 9.40). The recipe's half-way guide at scale 5 stays;
which snapshot guides moves a run's score by up to 4.4, which is much of the
spread between runs of one setting.
AdamW weight decay 0
(`--weight-decay 0`; the recipe's is Keras' 0.004) won one seed and lost
the other there: 7.63 and 13.04 against 11.50 and 11.38. FID does not tell whether a model copies
its training images, as copies of real flowers score at the floor;
`fid_anatomy.py` also measures each sample's distance to its nearest
training image against the nearest image of the validation split (see
"What the FID is made of" above). Batch 16 (`--batch-size 16`,
`autoguidance-batch16-…`), which the recipe left for batch 8 before
autoguidance, lost too: 2.51 and 3.02 (8.18 and 9.48 alone) in 4,820 steps
against batch 8's 1.35 and 1.93 in 8,749 and 9,078. An EMA momentum of
0.999 (`--ema-momentum 0.999`, `autoguidance-ema0.999-…`) split the seeds:
1.74 and 1.37 (7.44 and 6.58 alone), worse on seed 0 and better on seed 1,
and 1.92 on seed 2 (`autoguidance-ema0.999-seed2-…`) against 1.87 for the
kept seed 2: a mean of 1.68 over three seeds against 1.72, a tie; 0.995
stays.

A longer average for the guide alone (Karras et al. tuned the guide's EMA
length apart from the main model's) is free to try, on kept runs: the
`autoguidance-keep-guide-windows-…` file rescored the three kept runs with the
guide averaged over the EMA snapshots at the epoch ends from 40 % to 60 % of
the budget (4 or 5 snapshots, 1,200 to 1,600 steps apart) and from 30 % to 70
% (9 snapshots; `--interval-fractions 0.4:0.6 0.3:0.7`), at the default
guidance. From 40 % to 60 % it scored 0.98 on seed 0 against 1.35, but 2.05
and 1.96 on seeds 1 and 2 against 1.93 and 1.87 (a mean of 1.66 against 1.72),
and the wider window won seed 0 by less (1.30) and lost the others (2.24 and
2.04): the guide stays the single snapshot at half of the budget.

A U-Net on 2×2 patches (`--patch-size 2`: `build_unet(patch_size=2)`, a
`PixelUnshuffle` before the stem and a `PixelShuffle` after the output
convolution) drops the 32×32 level: with widths 32/64 (`--widths 32 64`;
attention at 16×16 and 8×8 as in the recipe, 867,276 parameters against
851,683) its step is about 1.3 times faster (42.6 against 51.5 ms at batch
8, best of three epochs, 0.188 against 0.258 GFLOP per forward pass) and it
trained 11,484 and 11,580 steps on seeds 0 and 1 against 8,749 and 9,078,
but scored 3.92 and 5.76 with the default guidance against 1.35 and 1.93
(11.56 and 12.18 alone against 6.30 and 8.24; `autoguidance-patch2-…`): the
full-resolution level is worth more than the steps it costs, and the recipe
keeps `patch_size=1`. Beside the recipe's samples from the same noise, its
petals have ragged edges and its images a visible 2×2 blockiness. Widths
32/64/96 on patches (attention at 8×8 and 4×4, 2.25 M parameters, 37 ms per
step) did not train at the recipe's learning rate: its samples are noise
(`autoguidance-patch2-32-64-96-…`, FID 523), and in checks of one epoch on
2,048 images its loss stayed at 0.55, where it fell to 0.48 without
attention at 4×4 and, in two epochs, to 0.37 at a learning rate of 5e-4.
Attention at 4×4 is the trouble, not the patches: a network at full
resolution with a fourth level (widths 16/32/64/64, attention at 16×16, 8×8
and 4×4, 1.40 M parameters, 6,872 steps) failed the same way on seed 0
(`autoguidance-level4x4-…`, FID 573; seed 1 was stopped), while in
one-epoch checks on 2,048 images it learned on seed 1, on JAX with seed 0,
and in one of two identical calls with seed 0 on TensorFlow: at the
recipe's learning rate such networks learn or not by chance. The recipe's
own network (attention at 16×16 and 8×8) has not failed this way in any run
on this page. Starting the output projection of every attention block at
zero (`zero_init_attention=True`, `--zero-init-attention on`; as the
original DDPM code starts it, so that each block first passes its input
through) cures it: the patched 32/64/96 network learned in the same
one-epoch check (validation loss 0.357 against 0.543), and the
four-level network on seed 0 learned in the full run (7,345 steps, FID
12.72 alone; `autoguidance-level4x4-zero-attention-…`). But it lost to the
recipe's three levels (7.29 guided against 1.35), so the fourth level was
not run on seed 1. On the recipe's own network the zero start scored
better alone (5.92 and 6.21 against 6.30 and 8.24, 8,693 and 8,067 steps)
and worse with the default guidance (2.17 and 2.23 against 1.35 and 1.93;
`autoguidance-zero-attention-…`), and no other guide scale rescued it
(rescored: 2.58 and 2.86 at scale 3, 2.29 and 2.35 at 4, 2.17 and 2.07 at
6, 2.24 and 2.02 at 7; `autoguidance-zero-attention-scales-…`,
`autoguidance-zero-attention-high-scales-…`; the best mean, 2.12 at 6,
against 1.61 for the recipe's network at 6): the main job's pictures are
guided, so the recipe keeps `zero_init_attention=False`. Networks with
attention at 4×4 should turn it on.

```bash
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 1 --num 1024 --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 1 --num 1024 --fractions 0.5 --scales 2 2.5 --intervals 100:800 \\
    --interval-scales 2 2.5 3 --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-interval-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 1 --num 1024 --fractions 0.5 --scales 2 --intervals 100:800 0:800 \\
    --interval-scales 3 4 5 --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-interval-scales-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 1 --num 1024 --fractions 0.5 --scales 2 --intervals 0:800 0:700 \\
    --interval-scales 5 6.5 8 --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-interval-high-scales-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 1 --num 1024 --fractions --scales 2 --intervals 0:700 \\
    --interval-scales 5 --keep ag-runs --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-keep-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 --num 1024 --fractions --scales --intervals 0:500 0:600 0:700 \\
    --interval-scales 4 5 6 \\
    --out benchmarks/results/autoguidance/autoguidance-keep-cuts-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 --num 1024 --fractions --scales --intervals 0:600 0:650 \\
    --interval-scales 6 7 8 \\
    --out benchmarks/results/autoguidance/autoguidance-keep-cuts-high-scales-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 --num 1024 --fractions --scales --intervals 0:700 \\
    --interval-scales 5 --interval-fractions 0.3 0.4 0.6 0.7 \\
    --out benchmarks/results/autoguidance/autoguidance-keep-ages-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 --num 1024 --steps 30 --fractions --scales --intervals 0:700 \\
    --interval-scales 5 \\
    --out benchmarks/results/autoguidance/autoguidance-keep-steps30-8.5min-epyc-avx512-cpu-tensorflow.json
# and the same with --steps 40 for autoguidance-keep-steps40-….json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 --num 1024 --sampler heun --steps 10 --fractions --scales \\
    --intervals 0:600 --interval-scales 5 \\
    --out benchmarks/results/autoguidance/autoguidance-keep-heun10-8.5min-epyc-avx512-cpu-tensorflow.json
# and the same with --sampler ddpm --steps 50 for autoguidance-keep-ddpm50-….json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 2 --num 1024 --steps 40 --fractions --scales --intervals 0:600 \\
    --interval-scales 5 \\
    --out benchmarks/results/autoguidance/autoguidance-keep-dpm40-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 --num 1024 --fractions --scales --intervals 50:600 100:600 200:600 \\
    --interval-scales 5 6 --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-keep-low-8.5min-epyc-avx512-cpu-tensorflow.json
# then --intervals 50:650 50:700 --interval-scales 6 7 (autoguidance-keep-low-scales-…),
# --intervals 100:600 100:650 150:600 --interval-scales 5 6 7 (…-keep-low-100-150-…)
# and --intervals 150:600 200:600 150:650 --interval-scales 7 8 (…-keep-low-150-200-…)
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 2 --num 1024 --fractions --scales --intervals 0:600 150:600 \\
    --interval-scales 5 7 --keep ag-runs --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-keep-seed2-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 1 --num-images 16384 --num 1024 --fractions --scales \\
    --intervals 0:600 --interval-scales 5 --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-data16k-8.5min-epyc-avx512-cpu-tensorflow.json
# and the same with --num-images 2048 for autoguidance-data2k-….json, with
# --num-images 8192 for autoguidance-data8k-….json (--seeds 2:
# autoguidance-data8k-seed2-….json), with --min-snr-gamma 5 for
# autoguidance-minsnr5-….json, and with
# --batch-size 16 (or --ema-momentum 0.999) instead of --num-images for
# autoguidance-batch16-….json (autoguidance-ema0.999-….json; with --seeds 2,
# autoguidance-ema0.999-seed2-….json); on the slower machine, the same
# without --num-images for autoguidance-recipe-8.5min-…-slow-….json, with
# --weight-decay 0 for autoguidance-wd0-…, --block-depth 1 for
# autoguidance-depth1-8.5min-…, --block-depth 1 --minutes 13.7 for
# autoguidance-depth1-13.7min-…, --block-depth 2 --minutes 13.7 for
# autoguidance-recipe-13.7min-…, the defaults (--block-depth auto) for
# autoguidance-auto-8.5min-… (with --minutes 20 for autoguidance-auto-20min-…),
# and --block-depth 1 1 2 for
# autoguidance-depth112-8.5min-… (its seed 1 stopped: the host slowed by half)
# The same kept one-block runs (--keep depth1-runs, auto-runs), rescored:
# --interval-scales 2 3 4 for autoguidance-{depth1,auto}-scales-…, 6 7 for
# autoguidance-{depth1,auto}-scales-6-7-…, and
# --interval-fractions 0.35 0.65 0.4:0.6 for autoguidance-{depth1,auto}-guide-ages-…
# (the 20-minute runs, --keep auto20-runs, rescored with --steps 40 for
# autoguidance-auto-20min-steps-40-…)
# (with --rescore depth1-runs or auto-runs, --minutes 8.5, --fractions
# --scales --intervals 0:600, and --interval-scales 5 for the ages)
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --rescore ag-runs \\
    --seeds 0 1 2 --num 1024 --fractions --scales --intervals 0:600 \\
    --interval-scales 5 --interval-fractions 0.5 0.4:0.6 0.3:0.7 \\
    --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-keep-guide-windows-8.5min-epyc-avx512-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 --num 1024 --fractions --scales --intervals 0:600 \\
    --interval-scales 5 --widths 32 64 --patch-size 2 \\
    --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-patch2-8.5min-epyc-avx512-cpu-tensorflow.json
# and the same with --seeds 1 for autoguidance-patch2-seed1-….json, and with
# --widths 32 64 96 for autoguidance-patch2-32-64-96-….json; and with
# --widths 16 32 64 64 --attention-levels 1 2 3 (no --patch-size) for
# autoguidance-level4x4-….json
KERAS_BACKEND=tensorflow python benchmarks/autoguidance.py --minutes 8.5 \\
    --seeds 0 1 --num 1024 --fractions --scales --intervals 0:600 \\
    --interval-scales 5 --zero-init-attention on --keep zero-attention-runs \\
    --conditions "quiet machine" \\
    --out benchmarks/results/autoguidance/autoguidance-zero-attention-8.5min-epyc-avx512-cpu-tensorflow.json
# then --rescore zero-attention-runs with --interval-scales 3 4 for
# autoguidance-zero-attention-scales-….json and 6 7 for
# autoguidance-zero-attention-high-scales-….json; and --seeds 0 with
# --widths 16 32 64 64 --attention-levels 1 2 3 --zero-init-attention on for
# autoguidance-level4x4-zero-attention-….json
python benchmarks/make_table.py benchmarks/results/*.json \\
    benchmarks/results/quality-curve/*.json benchmarks/results/autoguidance/*.json \\
    benchmarks/results/profile/*.json -o docs/benchmarks.md
```

## Class-conditional flowers: guidance

`benchmarks/guidance.py` trains the main job's recipe for the same time with
and without class labels (the petal colour families of `synthetic_flowers`),
then scores samples at guidance scales 1, 2, 3 and 5: the share judged to be
the asked class by `kd.metrics.flower_colours`, and FID as above; with
`--intervals` also guided only over intervals of timesteps. Its results
(`benchmarks/results/guidance/`) and the tables are in the
[class-conditional guide](guides/class-conditional.md#how-well-it-works-guidance-against-quality).
With today's recipe (one seed, 8,845 steps, 1,024 samples), guiding the
timesteps up to 700 at scale 5 reached the class accuracy of scale 2 at
every step (96 %) at FID 9.3 against 10.1; unguided, 6.7 at 71 %:

```bash
KERAS_BACKEND=tensorflow python benchmarks/guidance.py --minutes 8.5 \\
    --out benchmarks/results/guidance/guidance-cpu-tensorflow.json
KERAS_BACKEND=tensorflow python benchmarks/guidance.py --minutes 8.5 \\
    --num 1024 --scales 1 2 3 --intervals 0:600 0:700 --interval-scales 3 5 \\
    --no-unconditional --conditions "quiet machine" \\
    --out benchmarks/results/guidance/guidance-interval-8.5min-epyc-avx512-cpu-tensorflow.json
```
"""

# What `quality.py` records of a larger sample set's first 256 samples.
FIRST_256 = "fid_first_256"

CHANGES = {
    "defaults": "the recipe's defaults before this benchmark: widths 32/64/128, "
    "two residual blocks per level (3.3 M parameters), learning rate 1e-3",
    "small": "defaults with widths 32/64/96 and one residual block per level "
    "(1.4 M parameters)",
    "small-lr2e-3": "small with learning rate 2e-3 (after 100 warmup steps): "
    "the recipe's defaults until lr2e-3-w16",
    "small-cosine": "small with 100 warmup steps and a cosine decay to 0 over "
    "the budget (its length timed on a copy of the model first)",
    "small-lognormal": "small with log-normal training noise levels "
    '(`noise_levels="lognormal"`)',
    "small-batch32": "small with batch 32 instead of 16",
    "small-minsnr": "small with min-SNR-γ loss weighting, γ = 5",
    "lr2e-3-ema0.9995": "small-lr2e-3 with EMA momentum 0.9995 instead of 0.999",
    "lr2e-3-cosine": "small-lr2e-3 with a cosine decay of the learning rate to 0 "
    "over the budget (its length timed on a copy of the model first)",
    "lr2e-3-minsnr": "small-lr2e-3 with min-SNR-γ loss weighting, γ = 5",
    "lr2e-3-w16": "small-lr2e-3 with half the widths, 16/32/64 (0.53 M "
    "parameters, about a third of the FLOPs per image): the recipe's "
    "defaults until w16-batch8",
    "lr2e-3-w24": "small-lr2e-3 with widths 24/48/72",
    "w16-lr4e-3": "lr2e-3-w16 with learning rate 4e-3 (after 100 warmup steps)",
    "w16-batch8": "lr2e-3-w16 with batch 8 instead of 16, a graph without "
    "XLA: the recipe's defaults until b8-auto-jit",
    "b8-ema0.995": "w16-batch8 with EMA momentum 0.995 instead of 0.999",
    "b8-auto-jit": "w16-batch8 with the recipe's measured choice of XLA (XLA "
    "on this CPU) and no tf.data autotuning stalls: the recipe's defaults "
    "until b8x-cosine",
    "b8x-cosine": "b8-auto-jit with a cosine decay of the learning rate to 0 "
    "at the end of the run (along the clock of a time budget): the recipe's "
    "defaults until cosine-attn16",
    "b8x-lognormal": "b8-auto-jit with log-normal training noise levels "
    '(`noise_levels="lognormal"`)',
    "b8x-4levels": "b8-auto-jit with a fourth level, widths 16/32/64/128 "
    "(2.1 M parameters), attention at 4×4",
    "b8x-cosine-lognormal": "b8-auto-jit with the cosine decay and log-normal "
    "noise levels together",
    "b4x-cosine": "b8x-cosine (the defaults since) with batch 4",
    "cosine-w32": "b8x-cosine with widths 32/64/96 (1.4 M parameters)",
    "cosine-attn16": "b8x-cosine with self-attention at 16×16 as well as 8×8 "
    "(0.54 M parameters): the recipe's defaults until attn16-depth2",
    "cosine-lr4e-3": "b8x-cosine with a peak learning rate of 4e-3",
    "attn16-w24": "cosine-attn16 with widths 24/48/96 (1.2 M parameters)",
    "attn16-depth2": "cosine-attn16 with two residual blocks per level "
    "(0.85 M parameters): the recipe's defaults until depth2-ema0.995",
    "depth2-minsnr": "attn16-depth2 with min-SNR-γ loss weighting, γ = 5",
    "depth2-zeroinit": "attn16-depth2 with every residual block's second "
    "convolution started at zero (`zero_init_residual=True`)",
    "depth2-scaleshift": "attn16-depth2 with adaptive group normalization "
    "(`scale_shift=True`): the time embedding scales and shifts each residual "
    "block's normalised features (0.89 M parameters)",
    "attn16-depth3": "attn16-depth2 with three residual blocks per level "
    "(1.2 M parameters)",
    "depth2-beta0.99": "attn16-depth2 with AdamW's `beta_2` 0.99 instead of 0.999",
    "depth2-epsilon": "attn16-depth2 predicting the noise ε instead of v",
    "depth2-ema0.995": "attn16-depth2 with EMA momentum 0.995 instead of 0.999: "
    "**the recipe's defaults now**",
    "defaults-lr2e-3": "the earlier network (widths 32/64/128, two blocks per "
    "level) with learning rate 2e-3 after 100 warmup steps",
}


def load_kind(data):
    """What a results file holds: "curve", "autoguidance", "profile", None (quality.py) or records."""
    if data.get("kind") == "quality_curve":
        return "curve"
    if data.get("kind") in ("autoguidance", "profile"):
        return data["kind"]
    if "runs" in data and "baselines" in data:
        return None
    return [b["extra_info"] for b in data["benchmarks"] if b.get("extra_info")]


def load(path):
    with open(path) as f:
        data = json.load(f)
    return data, load_kind(data)


def budget_words(run):
    """How long one `quality.py` run trained, in words."""
    if run.get("epoch_budget"):
        return (
            f"{run['epoch_budget']} epochs of training (the same optimizer steps "
            "for every run)"
        )
    return f"{run['minutes']:g} min of training (model building and `fit`)"


def mean_score(runs, key):
    """Mean of `key` over `runs` (e.g. "fid_raw_weights"), or None unless every run has it."""
    scores = [run.get(key) for run in runs]
    return None if None in scores else sum(scores) / len(scores)


def cell(mean):
    """A table cell for `mean_score`."""
    return "not measured" if mean is None else f"{mean:.2f}"


def quality_section(path, data):
    """The ablation table of one `quality.py` file: FID per configuration over seeds."""
    machine = data["machine"]
    runs = data["runs"]
    first = runs[0]
    floor = data["baselines"]["floor"]
    # Files scored at more samples also score the first 256 of them.
    compared = mean_score(runs, FIRST_256) is not None
    lines = [
        f"### {machine['backend']} on {machine['processor']}, {machine['cores']} cores "
        f"({os.path.basename(path)})",
        "",
        f"- Load: {machine.get('conditions') or 'not recorded'}.",
        f"- Each run: {budget_words(first)}, then {first['num_images']} samples "
        f"({first['sampler']}, {first['sample_steps']} steps) against "
        f"{data['real_images']} held-out real flowers.",
        "",
        "| yardstick | FID |",
        "|---|---|",
        f"| floor: other real flowers ({first['num_images']}) | {floor:.2f} |",
        f"| Gaussian fitted to the training pixels | {data['baselines']['gaussian']:.1f} |",
        f"| uniform noise | {data['baselines']['noise']:.0f} |",
        "",
        "| configuration | change | optimizer steps | FID (mean over runs) | "
        "FID per run (seed) | spread | × floor | raw weights: FID (mean) |"
        + (" first 256 samples: FID (mean) |" if compared else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if compared else ""),
    ]
    present = list(dict.fromkeys(run["config"] for run in runs))
    order = [name for name in CHANGES if name in present]
    order += [name for name in present if name not in CHANGES]
    for name in order:
        mine = [run for run in runs if run["config"] == name]
        fids = [run["fid"] for run in mine]
        steps = "/".join(str(run["optimizer_steps"]) for run in mine)
        mean = sum(fids) / len(fids)
        lines.append(
            f"| {name} | {CHANGES.get(name, '')} | {steps} | {mean:.2f} | "
            + ", ".join(f"{run['fid']:.2f} ({run['seed']})" for run in mine)
            + f" | {max(fids) - min(fids):.2f} | {mean / floor:.1f} | "
            + cell(mean_score(mine, "fid_raw_weights"))
            + " |"
            + (f" {cell(mean_score(mine, FIRST_256))} |" if compared else "")
        )
    lines.append("")
    return "\n".join(lines)


def _petal_groups(counts):
    """Petal counts 4..12 as the three groups the tables give: 4–6, 7–10, 11–12."""
    return f"{sum(counts[:3])} / {sum(counts[3:7])} / {sum(counts[7:])}"


def _guide_setting(score):
    """`(fraction, scale, interval)` of one autoguidance score; interval () for none."""
    interval = tuple(score.get("guidance_interval") or ())  # absent in older files
    fraction = score["guide_fraction"]
    if isinstance(fraction, list):  # a window of snapshots, averaged
        fraction = tuple(fraction)
    return fraction, score["guide_scale"], interval


# What `autoguidance.py` may change in the recipe: (run key, name, default).
RECIPE_CHANGES = (
    ("dataset_images", "Images of `synthetic_flowers` (80 % trained on)", 4096),
    ("batch_size", "Batch size", 8),
    ("ema_momentum", "EMA momentum", 0.995),
    ("widths", "U-Net widths", (16, 32, 64)),
    ("block_depth", "Residual blocks per level", "auto"),
    ("attention_levels", "Attention levels", "(the two lowest-resolution levels)"),
    ("patch_size", "Patch size", 1),
    ("zero_init_attention", "Zero start of attention outputs", False),
    ("min_snr_gamma", "Min-SNR-γ loss weighting with γ =", "none"),
    ("weight_decay", "AdamW weight decay", 0.004),
    ("global_clipnorm", "Gradient clipping to global norm", "none"),
)


def _recipe_value(value):
    """A recipe setting as the page shows it: 4,096, 0.995, 16/32/64, on/off or text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return "/".join(f"{v:,}" for v in value) or "none"
    return f"{value:,}"


def autoguidance_section(path, data):
    """The table of one `autoguidance.py` file: FID per guide and scale, over seeds."""
    machine = data["machine"]
    runs = data["runs"]
    floor = data["baselines"]["floor"]
    num = data["num_images"]
    compared = all(FIRST_256 in score for run in runs for score in run["scores"])
    lines = [
        f"### Autoguidance: {machine['backend']} on {machine['processor']}, "
        f"{machine['cores']} cores ({os.path.basename(path)})",
        "",
        f"- Load: {machine.get('conditions') or 'not recorded'}.",
        f"- Each run: {runs[0]['minutes']:g} min of training, then {num} samples "
        f"({data['sampler']}, {data['sample_steps']} steps) against "
        f"{data['real_images']} held-out real flowers; floor (other real "
        f"flowers, {num}) {floor:.2f}, Gaussian fitted to the training pixels "
        f"{data['baselines']['gaussian']:.1f}.",
        "- Optimizer steps per run (seed): "
        + ", ".join(f"{run['optimizer_steps']} ({run['seed']})" for run in runs)
        + "; the run's own `guide.keras` at step "
        + ", ".join(str(run["recipe_guide_step"]) for run in runs)
        + ".",
    ]
    for key, name, default in RECIPE_CHANGES:  # absent in older files
        values = {_recipe_value(run[key]) for run in runs if run.get(key) is not None}
        if values:
            shown = ", ".join(sorted(values))
            lines.append(
                f"- {name} {shown}, not the recipe's default {_recipe_value(default)}."
            )
    if all(run.get("block_depth") in (None, "auto") for run in runs) and all(
        "block_depth_used" in run for run in runs
    ):  # older files ran two blocks, the default then
        lines.append(
            "- Residual blocks per level as `auto` chose them: "
            + ", ".join(f"{run['block_depth_used']} ({run['seed']})" for run in runs)
            + "."
        )
    rescored = data.get("rescored_runs")  # absent in older files
    if rescored:
        lines.append(
            "- Rescored: the runs `--keep` saved in "
            f"`{os.path.basename(os.path.normpath(rescored))}` (the same models "
            "as the file that trained them; no new training)."
        )
    lines += [
        "",
        "| guide (share of the budget: step per seed) | scale | FID (mean) | "
        "FID per run (seed) | × floor | petals 4–6 / 7–10 / 11–12 (all runs) |"
        + (" first 256 samples: FID (mean) |" if compared else ""),
        "|---|---|---|---|---|---|" + ("---|" if compared else ""),
    ]
    for setting in [_guide_setting(score) for score in runs[0]["scores"]]:
        mine = [
            (run, score)
            for run in runs
            for score in run["scores"]
            if _guide_setting(score) == setting
        ]
        fids = [score["fid"] for _, score in mine]
        mean = sum(fids) / len(fids)
        fraction, scale, interval = setting
        if fraction is None:
            guide = "none (the model alone)"
        elif isinstance(fraction, tuple):
            guide = (
                f"mean of the snapshots from {fraction[0]:.0%} to {fraction[1]:.0%}: "
                + "/".join(
                    f"{score['guide_step'][0]}–{score['guide_step'][-1]}"
                    for _, score in mine
                )
            )
        else:
            guide = f"{fraction:.0%}: " + "/".join(
                str(score["guide_step"]) for _, score in mine
            )
        if interval:
            guide += f", only at timesteps {interval[0]:g}–{interval[1]:g}"
        counts = [sum(c) for c in zip(*(score["petal_counts"] for _, score in mine))]
        lines.append(
            f"| {guide} | {scale:g} | {mean:.2f} | "
            + ", ".join(f"{score['fid']:.2f} ({run['seed']})" for run, score in mine)
            + f" | {mean / floor:.1f} | {_petal_groups(counts)} |"
            + (
                f" {cell(mean_score([score for _, score in mine], FIRST_256))} |"
                if compared
                else ""
            )
        )
    lines.append("")
    return "\n".join(lines)


def curve_stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _blocks_words(depth):
    """'N residual blocks per level, ' for a recorded block depth, else ''."""
    if depth is None:
        return ""
    if depth == "auto":
        return "residual blocks per level chosen by `auto` per budget, "
    return f"{depth} residual block{'s' if depth != 1 else ''} per level, "


def attention_words(recipe):
    """ ", attention at 16×16 and 8×8" for a curve file's recorded levels, else ""."""
    levels = recipe.get("attention_levels")
    if not levels:  # None: files written before the levels were recorded
        return ""
    sizes = [recipe["image_size"] >> level for level in levels]
    return ", attention at " + " and ".join(f"{n}×{n}" for n in sizes)


def curve_section(path, data, plot):
    """The table of one `quality_curve.py` file: FID per budget and sampler."""
    machine = data["machine"]
    floor = data["baselines"]["floor"]
    budgets = data["budgets"]
    if not budgets:
        raise SystemExit(f"{path}: no budget was scored in this file.")
    samplers = [(row["sampler"], row["steps"]) for row in budgets[0]["scores"]]
    recipe = data["recipe"]
    lines = [
        f"### {machine['backend']} on {machine['processor']}, {machine['cores']} cores "
        f"({os.path.basename(path)})",
        "",
        f"- Load: {machine.get('conditions') or 'not recorded'}.",
        f"- Recipe: `kd.training.train` defaults (widths "
        f"{'/'.join(str(w) for w in recipe.get('widths', []))}, "
        f"{_blocks_words(recipe.get('block_depth'))}batch "
        f"{recipe.get('batch_size')}, learning rate {recipe.get('learning_rate')}"
        f"{attention_words(recipe)}"
        f"{', adaptive group normalization' if recipe.get('scale_shift') else ''}); "
        f"{data['num_images']} samples per sampler against {data['real_images']} "
        "held-out real flowers.",
        f"- Floor (other real flowers): {floor:.2f}; Gaussian fitted to the training "
        f"pixels: {data['baselines']['gaussian']:.1f}; uniform noise: "
        f"{data['baselines']['noise']:.0f}.",
        "",
        "| training minutes | optimizer steps | "
        + " | ".join(f"{name}-{steps}" for name, steps in samplers)
        + " | best × floor |",
        "|---|---|" + "---|" * len(samplers) + "---|",
    ]
    for entry in budgets:
        fids = {(row["sampler"], row["steps"]): row["fid"] for row in entry["scores"]}
        cells = [f"{fids[key]:.2f}" if key in fids else "" for key in samplers]
        blocks = entry.get("block_depth")  # recorded where `auto` chose it
        lines.append(
            f"| {entry['minutes']:g} | {entry['optimizer_steps']}"
            + (f" ({blocks} block{'s' if blocks != 1 else ''})" if blocks else "")
            + " | "
            + " | ".join(cells)
            + f" | {min(fids.values()) / floor:.1f} |"
        )
    seconds = {
        (row["sampler"], row["steps"]): row["sample_seconds"]
        for row in budgets[-1]["scores"]
    }
    lines += [
        "",
        f"Seconds to sample the {data['num_images']} images, at the last budget: "
        + ", ".join(
            f"{name}-{steps} {seconds[(name, steps)]:g}" for name, steps in samplers
        )
        + ".",
        "",
        f"![FID against training minutes]({plot})",
        "",
    ]
    return "\n".join(lines)


def curve_plot(data, path):
    """FID against training minutes, one line per sampler, the floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = data["budgets"]
    minutes = [entry["minutes"] for entry in budgets]
    figure, axes = plt.subplots(figsize=(6, 4))
    for row in budgets[0]["scores"]:
        key = (row["sampler"], row["steps"])
        fids = [
            next(r["fid"] for r in entry["scores"] if (r["sampler"], r["steps"]) == key)
            for entry in budgets
        ]
        axes.plot(minutes, fids, marker="o", label=f"{key[0]}, {key[1]} steps")
    axes.axhline(
        data["baselines"]["floor"], color="black", linestyle="--", label="floor"
    )
    axes.axhline(
        data["baselines"]["gaussian"], color="grey", linestyle=":", label="Gaussian fit"
    )
    axes.set_yscale("log")
    axes.set_xlabel("training minutes")
    axes.set_ylabel(f"FID, flowers encoder ({data['num_images']} samples)")
    machine = data["machine"]
    axes.set_title(
        f"{machine['backend']} on {machine['processor']}, {machine['cores']} cores",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def profile_section(path, data):
    """A `profile_step.py` file: where one training step's time goes, per side."""
    settings = data["settings"]
    lines = [
        f"### Training step profile, {settings['image_size']}×{settings['image_size']}, "
        f"batch {settings['batch']} ({os.path.basename(path)})",
        "",
        f"- Machine: {data['machine']['processor']}, {data['machine']['cores']} cores; "
        f"load: {data['machine'].get('conditions') or 'not recorded'}.",
        f"- keras-ddpm on PyTorch (eager) beside {settings['peer']}, widths "
        f"{'/'.join(map(str, settings['widths']))}, {settings['steps']} steps "
        f"profiled per side; wall times are medians of {settings['rounds']} "
        "epochs without the profiler.",
        f"- Command: `{data['command']}`",
        "",
        report.profile_table(data),
        "",
    ]
    return "\n".join(lines)


def section(path, data, records):
    # The peer's records name their own framework; the section is the library's.
    first = next(
        (r for r in records if not r["variant"].startswith("diffusers")), records[0]
    )
    cpu = data.get("machine_info", {}).get("cpu", {}).get("brand_raw", "unknown CPU")
    cores = data.get("machine_info", {}).get("cpu", {}).get("count")
    when = data.get("datetime", "")[:16].replace("T", " ")
    lines = [
        f"## {first['backend']} on {first['device']} ({os.path.basename(path)})",
        "",
        f"- Machine: {cpu}"
        + (f", {cores} logical cores" if cores else "")
        + f"; measured {when} UTC.",
        f"- Load: {first.get('conditions') or 'not recorded'}.",
        f"- Command: `{first.get('command', 'not recorded')}`",
        "",
        report.results_table(records),
        "",
        report.ratios_table(records),
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "json",
        nargs="+",
        help="JSON files of the benchmark suite, quality.py, quality_curve.py, "
        "autoguidance.py or profile_step.py",
    )
    parser.add_argument("-o", "--output", default="docs/benchmarks.md")
    args = parser.parse_args(argv)
    sections, quality, curves, profiles = [], [], [], []
    for path in sorted(args.json):
        data, records = load(path)
        if records == "curve":
            plot = f"images/quality-curve-{curve_stem(path)}.png"
            curve_plot(data, os.path.join(os.path.dirname(args.output), plot))
            curves.append(curve_section(path, data, plot))
            continue
        if records is None:
            quality.append(quality_section(path, data))
            continue
        if records == "autoguidance":
            quality.append(autoguidance_section(path, data))
            continue
        if records == "profile":
            profiles.append(profile_section(path, data))
            continue
        if not records:
            raise SystemExit(f"{path}: no keras-ddpm benchmark records in this file.")
        sections.append(section(path, data, records))
    text = HEADER + "\n## Results\n\n" + "\n".join(sections)
    if profiles:
        text += "\n## Training step profiles: results\n\n" + "\n".join(profiles)
    if quality:
        text += "\n## Quality results\n\n" + "\n".join(quality)
    if curves:
        text += "\n## Quality against training time: results\n\n" + "\n".join(curves)
    tmp = args.output + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.output)
    print(f"wrote {args.output} from {len(sections)} file(s)")


if __name__ == "__main__":
    main()
