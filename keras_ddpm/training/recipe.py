import contextlib
import functools
import inspect
import itertools
import os
import shutil
import signal
import sys
import threading
import time
import types

import keras
import numpy as np

from keras_ddpm import callbacks, datasets, distribute, models, schedules, viz
from keras_ddpm.callbacks.budget_cosine_decay import has_float_rate
from keras_ddpm.callbacks.step_counter import optimizer_steps
from keras_ddpm.datasets.loader import training_images
from keras_ddpm.models import autoguidance
from keras_ddpm.models.diffusion_model import DiffusionModel
from keras_ddpm.models.guidance_interval import check_interval
from keras_ddpm.models.objective import NOISE_LEVELS
from keras_ddpm.models.unet import check_shape, level_depths
from keras_ddpm.training import step_timing
from keras_ddpm.training.training_result import TrainingResult
from keras_ddpm.utils import (
    atomic_path,
    check_choice,
    check_float,
    check_free_space,
    check_image_size,
    check_int,
    check_writable_folder,
)

# Without `epochs` or `minutes`, a run trains for this many minutes.
DEFAULT_MINUTES = 8.5
# With a time budget, each epoch's validation loss is taken on this many batches.
BUDGET_VALIDATION_BATCHES = 8
# Steps timed per setting when `jit_compile="auto"` is measured (after the
# first call, which traces and compiles).
JIT_TIMED_STEPS = 24
# On TensorFlow, `fit` runs this many training steps per call of its compiled
# train function (`steps_per_execution`): a call of the recipe's XLA step
# costs several milliseconds beyond the step itself on 2 cores of an AMD EPYC
# with AVX-512, about 6 % of the step at batch 8 (21.2 s against 20.0 s per
# 409-step epoch).
STEPS_PER_EXECUTION = 8
# `intra_op_threads="auto"`: the share of a budget the child processes that
# time the thread settings may take in all (at most
# `step_timing.CHILD_TIMEOUT`).
CHILD_SHARE = 0.25
# `block_depth="auto"` under a time budget: two residual blocks per level when
# the budget left after building and timing holds at least this many steps
# of the one-block network at its timed speed, else one. The one-block
# network is the one timed: it compiles in half the time (timing it with and
# without XLA took 36 s, the two-block network 83 s, on 2 cores of a slow
# AMD EPYC host), and where one block is chosen, the timed model trains on.
# Measured with the recipe's defaults on 2 CPU cores (guided FID, 1,024
# samples, seeds 0 and 1): where 8.5 minutes held about 9,500 one-block
# steps (0.050 s each), one block scored better on average (3.84, 8.49,
# 10.04 and 12.23 in four runs against 11.50 and 11.38); where the time
# held about 15,700 (13.7 minutes there), two blocks scored 2.98 and 2.05
# against one block's 2.30 and 4.77, and about as many on a faster host
# (8.5 minutes) 1.35 and 1.93.
AUTO_DEPTH_STEPS = 12000
# The final pictures: a 4×8 grid, sampled 8 at a time to bound memory.
GRID_IMAGES = 32
SAMPLE_BATCH = 8
# A conditional run's final pictures: classifier-free guidance at this scale,
# and classes.png with one row of this many samples per class (at most
# CLASS_ROWS classes).
GUIDANCE_SCALE = 2.0
# An unconditional run's final pictures: autoguidance by the model as it
# was at this share of the training (`guide.keras`), at `guide_scale`.
GUIDE_AT = 0.5
# The error of a training split too small for one batch (the last, partial
# batch is dropped).
NO_BATCH = (
    "The training split (80 % of the images) holds no full batch of "
    "{batch_size} images: lower `batch_size` or give more `num_images`."
)
PER_CLASS = 8
CLASS_ROWS = 16


class _BudgetProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar for a run that the clock ends: its epoch lines
    read "Epoch 4 (until the time budget is spent)", not "Epoch 4/1000000"."""

    def set_params(self, params):
        super().set_params(params)
        self.epochs = 1  # Keras then prints no "Epoch n/N" line of its own

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if self.verbose:
            print(f"Epoch {epoch + 1} (until the time budget is spent)")


def _no_empty_folder_left(function):
    """`function(output_dir, ...)`, removing the folders it made for
    `output_dir` (its parents too) if it fails before writing a file in them:
    the folder is made early, to fail early where it cannot be written."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        arguments = inspect.signature(function).bind(*args, **kwargs)
        arguments.apply_defaults()
        made = _first_missing(os.path.abspath(arguments.arguments["output_dir"]))
        try:
            return function(*args, **kwargs)
        except BaseException:
            if made is not None and os.path.isdir(made):
                if not any(files for _, _, files in os.walk(made)):
                    shutil.rmtree(made)
            raise

    return run


def _first_missing(folder):
    """The outermost of `folder` and its parents that does not exist, or None."""
    if os.path.exists(folder):
        return None
    parent = os.path.dirname(folder)
    while parent != folder and not os.path.exists(parent):
        folder, parent = parent, os.path.dirname(parent)
    return folder


@_no_empty_folder_left
def train(
    output_dir="runs/flowers",
    dataset="synthetic_flowers",
    *,
    data_dir=None,
    image_size=32,
    num_images=None,
    epochs=None,
    batch_size=8,
    widths=(16, 32, 64),
    block_depth="auto",
    attention_levels=None,
    zero_init_residual=False,
    scale_shift=False,
    zero_init_attention=False,
    patch_size=1,
    schedule="cosine",
    timesteps=1000,
    prediction="v",
    learning_rate=2e-3,
    beta_2=0.999,
    weight_decay=0.004,
    global_clipnorm=None,
    learning_rate_schedule="cosine",
    warmup_steps=100,
    min_snr_gamma=None,
    noise_levels="uniform",
    ema_momentum=0.995,
    conditional=False,
    label_dropout=0.1,
    guidance_scale=GUIDANCE_SCALE,
    guide_scale=autoguidance.DEFAULT_SCALE,
    guide_interval=None,
    sampler="dpm_solver",
    sample_steps=20,
    seed=0,
    grid_every=0,
    devices=1,
    minutes=None,
    jit_compile="auto",
    intra_op_threads="auto",
    resume=False,
    overwrite=False,
    verbose=1,
):
    """Train a diffusion model from scratch (or resume one) and write a run folder.

    The recipe of `keras-ddpm train`, with the same defaults (the command reads
    them from `DEFAULTS`, which is this signature): a U-Net
    (`kd.models.build_unet`) in a `DiffusionModel` with warmed-up EMA weights,
    AdamW, an 80/20 train/validation split of `dataset`, and these callbacks:
    a `Checkpoint` per epoch into `output_dir/checkpoints`, a `HistoryFile`,
    `TerminateOnNonFinite` and, with `grid_every`, a `SampleGrid`. At the end it
    writes into `output_dir`: `model.keras`, `samples.png` (4×8 samples),
    `denoise.gif`, `denoise_strip.png`, `history.json` and `loss.png` (when
    matplotlib is installed). It prints one line per stage.

    An unconditional run also keeps the model as it was halfway through
    training (`GUIDE_AT`), in `guide.keras` (a `kd.callbacks.GuideSnapshot`),
    and draws its final pictures with autoguidance at `guide_scale`: each
    step at a timestep in `guide_interval` pushes the model's prediction
    away from that earlier, weaker version's
    (`DiffusionModel.generate(guide=...)`). Sample the same way
    later with `keras-ddpm sample --guide runs/flowers/guide.keras`. A guide
    taken at the final step (a one-epoch run, say) would change nothing: it
    is removed and the pictures are unguided. A new run in the folder removes
    an older run's `guide.keras`; a resumed run keeps its guide when half of
    its epochs were done before it, else takes a new one (with a time
    budget, half-way through the new budget).

    With `conditional=True` the model learns the dataset's classes
    (`kd.datasets.load(..., labels=True)`: the petals' colour family of
    `synthetic_flowers`, the species or breeds of the TFDS datasets, the
    sub-folders of a folder) with classifier-free guidance's label dropout,
    and saves their names. Its final pictures are guided at `guidance_scale`:
    `samples.png` cycles through the classes along each row, and
    `classes.png` has one row of 8 samples per class (the first 16 classes).

    The defaults (the network size, learning rate and warmup were chosen by
    FID at equal wall time: the benchmarks page's quality table) train for 8.5
    minutes. Ctrl-C (SIGINT, also a notebook's interrupt) ends
    training after the current batch (on TensorFlow, the current call of up
    to 8) with a checkpoint; a second one aborts.
    `resume=True` continues from the newest checkpoint in the folder, with its
    weights, EMA weights, optimizer state and epoch (the architecture arguments
    are then taken from the checkpoint). On TensorFlow, `fit` runs
    `STEPS_PER_EXECUTION` (8) steps per call of its compiled train function,
    which saves a call's cost per step (the batch callbacks run once per
    call); the saved model does not keep this setting.

    Args:
        output_dir: str, the run folder (created). Defaults to `"runs/flowers"`.
        dataset: `"synthetic_flowers"`, a TFDS name (`"oxford_flowers102"`,
            `"oxford_iiit_pet"`, ...) or a folder of images; see
            `kd.datasets.load`. Defaults to `"synthetic_flowers"`.
        data_dir: str, the TFDS data directory. Defaults to None (TFDS' own).
        image_size: int, image height and width. Defaults to 32.
        num_images: int, the size of `synthetic_flowers` (None: 4096), or a cap
            on other datasets (None: all). Defaults to None.
        epochs: int or None, the total number of epochs (a resumed run counts
            the ones done before); with `minutes`, a cap on them. Defaults to
            None: as many as fit in `minutes`.
        batch_size: int, images per step, a multiple of `devices`. Defaults to 8:
            on 2 CPU cores it trains about as many images per second as 16 in
            twice the optimizer steps, and beat 16 on both seeds at equal wall
            time (FID 20.0 and 16.6 against 20.5 and 19.0 after 8.5 minutes).
            On a GPU, raise it (64 or more) with the learning rate.
        widths: sequence of int, the U-Net's level widths. Defaults to
            `(16, 32, 64)`: at equal wall time on 2 CPU cores it beat
            `(32, 64, 96)` on both seeds (FID 21.0 and 19.0 against 24.1 and
            24.4 after 8.5 minutes), taking about twice the steps.
        block_depth: int >= 1, residual blocks per level, a sequence of
            such ints (one per level of `widths`), or `"auto"`: with
            a time budget (`minutes`, or the default one), the one-block
            network is built and its step timed (the XLA timing's, on a
            TensorFlow CPU; else a short `fit` of 25 or more steps), which
            the budget covers; it trains on if the minutes left hold fewer
            than `AUTO_DEPTH_STEPS` (12,000) of its steps, else the
            two-block network is built instead (with the same XLA setting),
            and a line says what was chosen. Without a budget (`epochs`
            alone), two. Defaults to `"auto"`. Which depth wins depends on
            the steps the budget buys (guided FID, 1,024 samples, two
            seeds, 2 CPU cores): where 8.5 minutes held about 9,500
            one-block steps (0.050 s each), one block scored better on
            average (3.84, 8.49, 10.04 and 12.23 in four runs against 11.50
            and 11.38 for two blocks, which made half the steps); where
            13.7 minutes held about 15,700, two blocks scored 2.98 and 2.05
            against one block's 2.30 and 4.77, and on a faster machine,
            about as many in 8.5 minutes, 1.35 and 1.93.
            Unguided, two blocks beat one on both seeds there (FID 7.0 and
            8.3 against 8.7 and 8.7, 256 samples), in about 40 % fewer
            steps, and one block won runs of a few minutes (FID 16.7
            against 33.5 after 2 minutes, seed 0). Widths 24/48/96 at one
            block lost to two blocks of 16/32/64 (9.5 and 12.5 against 7.0
            and 8.3).
        attention_levels: sequence of int, the levels with self-attention
            (0 is full resolution; empty for none). Defaults to None: the two
            lowest-resolution levels (16×16 and 8×8 for the default network
            at 32×32; the only level of a one-level network). At equal wall
            time on 2 CPU cores this beat attention at 8×8 alone on both
            seeds (FID 8.7 and 8.7 against 11.7 and 9.4 after 8.5 minutes),
            in about 12 % fewer steps. With attention at 4×4 (a fourth
            level at 32×32, or a third on 2×2 patches) the default learning
            rate was unreliable: some runs never learned (the loss stayed
            near 0.55 from the first steps), depending on the seed and the
            backend; a lower `learning_rate` (5e-4) learned, and so did
            such a network with `zero_init_attention=True` (which the
            default network does not need).
        zero_init_residual: bool, start each residual block's second
            convolution at zero (see `kd.models.build_unet`). Defaults to
            False: at equal wall time on 2 CPU cores the zero start lost
            both seeds (FID 9.1 and 11.2 against 7.0 and 8.3 after 8.5
            minutes).
        scale_shift: bool, condition the residual blocks on the time
            embedding by adaptive group normalization (see
            `kd.models.build_unet`) rather than by addition. Defaults to
            False: at equal wall time on 2 CPU cores it won two seeds of
            three (FID 5.4, 8.1 and 9.0 against 7.0, 8.3 and 7.7 after 8.5
            minutes), a mean within the spread of repeated runs.
        zero_init_attention: bool, start each attention block's output
            projection at zero (see `kd.models.build_unet`); turn it on
            for attention at 4×4 (see `attention_levels`). Defaults to
            False: at equal wall time on 2 CPU cores the zero start scored
            better alone (FID 5.92 and 6.21 against 6.30 and 8.24 after 8.5
            minutes) but worse with the default autoguidance (2.17 and 2.23
            against 1.35 and 1.93), and the final pictures are guided.
        patch_size: int >= 1, run the U-Net on `patch_size × patch_size`
            patches of the images (see `kd.models.build_unet`); the
            levels of `widths` then start at `image_size / patch_size`.
            Defaults to 1: at equal wall time on 2 CPU cores, widths
            `(32, 64)` on 2×2 patches took about 1.3 times the steps but
            lost both seeds (FID 3.92 and 5.76 against 1.35 and 1.93
            after 8.5 minutes, with the default autoguidance). See
            `attention_levels` on attention at 4×4.
        schedule: str, a name of `kd.schedules`. Defaults to `"cosine"`.
        timesteps: int, the diffusion steps T. Defaults to 1000.
        prediction: str, what the network predicts: `"epsilon"`, `"x0"` or
            `"v"`. Defaults to `"v"`.
        learning_rate: float, AdamW's (peak) learning rate. Defaults to 2e-3.
        beta_2: float in (0, 1), AdamW's decay rate of its second-moment
            estimate: 0.999 averages the squared gradients over about 1,000
            steps, 0.99 over about 100. Defaults to 0.999: at equal wall
            time on 2 CPU cores 0.99 won two seeds of three (FID 5.5, 7.1
            and 6.7 against 5.9, 8.3 and 6.0, 1,024 samples), a mean within
            the spread of repeated runs. A resumed run keeps the optimizer
            it saved, with its `beta_2`.
        weight_decay: float >= 0, AdamW's decoupled weight decay: each step
            shrinks every weight by `learning_rate * weight_decay` of itself.
            Defaults to 0.004 (Keras' default): 0 won one seed and lost the
            other at 8.5 minutes on 2 CPU cores (guided FID 7.63 and 13.04
            against 11.50 and 11.38, 1,024 samples). A resumed run keeps
            the optimizer it saved, with its weight decay.
        global_clipnorm: float > 0 or None, rescale each step's gradients so
            that their global norm is at most this. Defaults to None (no
            clipping; the recipe's gradient norms stay near 0.2 to 0.4 after
            its first epoch, so a clip at 1.0 would seldom act). A resumed
            run keeps the clipping it saved.
        learning_rate_schedule: `"constant"`, or `"cosine"`: a cosine decay
            to 0 at the end of the run (the last step of `epochs`, or the
            end of the `minutes` budget, along its clock). Both start with
            `warmup_steps` of linear warmup. Defaults to `"cosine"`: at
            equal steps on 2 CPU cores it beat the constant rate on both
            seeds (FID 17.4 and 15.8 against 18.1 and 17.1 after 6,141 steps).
        warmup_steps: int >= 0, steps of linear warmup from 0 to
            `learning_rate`. Defaults to 100.
        min_snr_gamma: float > 0 or None, min-SNR-γ loss weighting (Hang et
            al. 2023; see `DiffusionModel`). Defaults to None.
        noise_levels: `"uniform"` or `"lognormal"`, the training noise-level
            distribution (see `DiffusionModel`). Defaults to `"uniform"`.
        ema_momentum: float, the EMA momentum (with warmup). Defaults to
            0.995 (an average over about 200 steps): with the learning rate
            decaying to 0, the raw weights of the recipe's network and its
            variants after 8.5 minutes on 2 CPU cores scored a better FID
            than their 0.999 average in 20 of 22 runs (by 0.42 on average),
            and the same as their 0.995 average (by 0.05 and 0.01, two runs).
        conditional: bool, train a class-conditional model on the dataset's
            labels. Defaults to False.
        label_dropout: float in [0, 1), the share of training labels replaced
            by the null label (conditional runs). Defaults to 0.1.
        guidance_scale: float, the classifier-free guidance scale of a
            conditional run's final pictures. Defaults to 2.0.
        guide_scale: float, the autoguidance scale of an unconditional run's
            final pictures, guided by the model at the first epoch end after
            half of its training: half the epochs' steps when `epochs` is
            given, else half the time budget spent in `fit` (half of what
            `fit` has left when building and timing took more than half).
            1 turns autoguidance off and writes no `guide.keras`. Defaults to
            5.0 (`generate`'s), with `guide_interval`'s default: after 8.5
            minutes on 2 CPU cores, guided by the model of step 4,940 at
            timesteps up to 600 and scale 5, the recipe's FID on 1,024
            samples went from 6.30 and 8.24 alone to 1.35 and 1.93 (two
            seeds; 1.49 and 1.94 up to 700), tied with scale 6 for the best
            mean of the cuts 500 to 700 and scales 4 to 8 tried (the
            benchmarks page's autoguidance tables).
        guide_interval: None or a pair of timesteps `(low, high)`: the
            autoguidance of the final pictures guides only the steps at
            timesteps between them (`generate(guidance_interval=...)`), the
            model alone the others; `(0, timesteps)` guides every step.
            None: `generate`'s default, timesteps 0 to 0.6 T (0 to 600).
            Defaults to None.
        sampler: str, a name of `kd.samplers`, for the final pictures and the
            model's default. Defaults to `"dpm_solver"` (DPM-Solver++ 2M):
            at 20 steps its FID was within 3 % of DDPM with every timestep on
            a trained flowers model (the "Samplers and steps" guide).
        sample_steps: int, sampling steps of the final pictures and of the
            grids. Defaults to 20.
        seed: int, seed of the data order, the weights and the samples.
            Defaults to 0.
        grid_every: int, write a grid of samples every this many epochs into
            `output_dir/samples`; 0 never. Defaults to 0.
        devices: int, data-parallel devices (`kd.distribute.device_scope`).
            Defaults to 1.
        minutes: float > 0 or None, a wall-clock budget for training: a
            `kd.callbacks.TimeLimit` stops training cleanly at the budget,
            with a checkpoint, the history and the final pictures as at any
            end (`epochs`, if given, still caps the run). The `"cosine"`
            decay then follows the clock (`kd.callbacks.BudgetCosineDecay`):
            it reaches 0 when the budget is spent, however many steps the
            machine managed. The budget starts
            after the data are loaded and does not include the final
            pictures; each epoch's validation loss is then taken on its first
            8 batches. None trains for `epochs`, or when `epochs` is None too
            for 8.5 minutes (the same wall time on any machine; a slower one
            takes fewer steps). Defaults to None.
        jit_compile: `"auto"`, True or False: compile the train step with
            XLA. `"auto"` is `DiffusionModel.compile`'s choice, except on a
            TensorFlow CPU with one device, where the faster of the two is
            measured: a second model is built with the other setting, each
            takes its first training batches (`JIT_TIMED_STEPS` after its
            first call, which traces and compiles), and the slower model is
            dropped; a budget covers this. On 2 cores of an AMD EPYC, XLA
            ran the default network's step 1.4 times as fast with AVX2 and
            1.5 times with AVX-512 (0.047 against 0.070 s at batch 8).
            Sampling (the final pictures) always runs as the model was
            compiled (a graph without XLA on a TensorFlow CPU), and a resumed
            run takes `DiffusionModel.compile`'s choice. Defaults to `"auto"`.
        intra_op_threads: `"auto"`, None or an int >= 1: TensorFlow's threads
            per operation, which it fixes when it starts. `"auto"`, in a
            process whose TensorFlow has not started yet, on a CPU, with one
            device, for a new run: the train step (the first network built,
            unconditional, on random images) is timed in child processes
            started side by side (`kd.training.step_timing`, one per
            setting) with TensorFlow's default threads
            (with and without XLA under `jit_compile="auto"`) and with one
            thread per operation (without XLA), and the run takes the
            fastest; this replaces `jit_compile`'s own timing, the budget
            covers it, and the times are cached per machine and
            configuration (`kd.training.step_timing.cache_path()`), so a
            second run reads them. Where one thread per operation wins, two
            operations run side by side instead of one on two threads: on 2
            cores of an AMD EPYC with AVX-512 the recipe's one-block step
            took 0.048 s that way against 0.052 s with XLA and 0.053 s
            without (in one run; 0.047, 0.053 and 0.065 s in another).
            Elsewhere (another backend, a GPU, `jit_compile=True`,
            `TF_NUM_INTRAOP_THREADS` set, or TensorFlow already running)
            `"auto"` leaves the threads alone. None leaves them alone always;
            an int sets them (TensorFlow only; it must not have started).
            Defaults to `"auto"`.
        resume: bool, continue from the newest checkpoint of `output_dir`
            (a new run when there is none). The run keeps the checkpoint's
            network, noise schedule, objective, EMA and optimizer settings:
            giving any of `widths`, `block_depth`, `attention_levels`,
            `zero_init_residual`, `scale_shift`, `zero_init_attention`,
            `patch_size`, `schedule`, `timesteps`, `prediction`, `beta_2`,
            `weight_decay`, `global_clipnorm`, `min_snr_gamma`,
            `noise_levels`, `ema_momentum` or `label_dropout` other than the
            checkpoint has it is an error, as are another `image_size` or
            `conditional`. A model whose rate decayed along
            a budget goes on at `learning_rate`, or, with `minutes` and the
            cosine schedule, decays again over the new budget (no warmup).
            Defaults to False.
        overwrite: bool, let a new run replace the run that `output_dir`
            holds (its `model.keras` or checkpoints): the old checkpoints and
            `model.keras` are deleted when training starts (not before: a
            run that fails while it loads data or times its step leaves
            them) and the other files written anew. Defaults to False: a new run into such a
            folder stops with an error before anything is timed or written,
            so that a finished run is not lost (a second run's checkpoints
            would also be pruned in favour of the first run's, which count
            more steps). Excludes `resume`.
        verbose: int, `fit`'s verbosity: 0, 1 (progress bars, also over
            the final pictures' images) or 2.
            Defaults to 1.

    Returns:
        A `TrainingResult`: the model, the history and the run's `status`
        (`"completed"`, `"interrupted"` or `"non_finite"`).

    Raises:
        ValueError: for an argument out of range, `batch_size` not a multiple
            of `devices`, an unknown dataset, schedule, sampler or prediction,
            or an image size the U-Net cannot halve `len(widths) - 1` times;
            an int `intra_op_threads` on another backend, or where
            TensorFlow has started with another setting.
        OSError: if `output_dir` cannot be written or its disk lacks the room
            for the checkpoints (checked before training).

    Example:

    ```python
    import keras_ddpm as kd

    result = kd.training.train(
        "runs/tiny", image_size=8, num_images=40, batch_size=8, widths=(8, 16),
        block_depth=1, timesteps=50, epochs=1, sample_steps=3, verbose=0,
    )
    result.status           # 'completed'
    result.history["loss"]  # one value per epoch
    ```

    References:
        - [Ho et al., 2020. Denoising Diffusion Probabilistic
          Models](https://arxiv.org/abs/2006.11239)
    """
    check_int("epochs", epochs, low=1, allow_none=True)
    check_int("batch_size", batch_size, low=1)
    level_depths(block_depth, len(widths), words=("auto",))  # checked, kept
    check_int("grid_every", grid_every, low=0)
    check_int("devices", devices, low=1)
    check_float("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    guide_scale = check_float("guide_scale", guide_scale)
    check_int("timesteps", timesteps, low=2)  # as the schedule will
    check_int("sample_steps", sample_steps, low=1)
    guide_interval = check_interval(
        guide_interval, timesteps, guided=True, name="guide_interval", guide=True
    )
    check_float("beta_2", beta_2, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    check_float("weight_decay", weight_decay, low=0.0)
    check_float(
        "global_clipnorm",
        global_clipnorm,
        low=0.0,
        low_inclusive=False,
        allow_none=True,
    )
    check_choice("learning_rate_schedule", learning_rate_schedule, LR_SCHEDULES)
    check_int("warmup_steps", warmup_steps, low=0)
    check_choice("noise_levels", noise_levels, NOISE_LEVELS)
    check_float("minutes", minutes, low=0.0, low_inclusive=False, allow_none=True)
    if not isinstance(conditional, bool):
        raise ValueError(f"`conditional` must be True or False, got {conditional!r}.")
    check_float("label_dropout", label_dropout, 0.0, 1.0, high_inclusive=False)
    check_float("guidance_scale", guidance_scale)
    _check_guidance(conditional, label_dropout, guidance_scale, guide_scale)
    if jit_compile not in ("auto", True, False):
        raise ValueError(
            f"`jit_compile` must be 'auto', True or False, got {jit_compile!r}."
        )
    if intra_op_threads not in ("auto", None):
        if isinstance(intra_op_threads, (bool, str)) or not (
            isinstance(intra_op_threads, (int, np.integer)) and intra_op_threads >= 1
        ):
            raise ValueError(
                "`intra_op_threads` must be 'auto', None or an int >= 1, got "
                f"{intra_op_threads!r}."
            )
        intra_op_threads = int(intra_op_threads)
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "`intra_op_threads` sets TensorFlow's threads: leave it 'auto' or "
                f"None on {keras.backend.backend()}."
            )
    if epochs is None and minutes is None:
        minutes = DEFAULT_MINUTES
    if batch_size % devices:
        raise ValueError(
            f"`batch_size` {batch_size} must be a multiple of `devices` {devices}."
        )
    # The data's own errors before the run's folder exists, or a step is timed.
    with _named_conditional():
        known = training_images(dataset, num_images, conditional)
    if known is not None and known < batch_size:
        raise ValueError(NO_BATCH.format(batch_size=batch_size))
    output_dir = os.fspath(output_dir)
    check_writable_folder(output_dir)
    check_float(
        "ema_momentum", ema_momentum, 0.0, 1.0, high_inclusive=False, allow_none=True
    )
    if resume and overwrite:
        raise ValueError("`resume` and `overwrite` exclude each other: give one.")
    new_run = not (
        resume and callbacks.list_checkpoints(os.path.join(output_dir, "checkpoints"))
    )
    if new_run:
        _check_no_previous_run(output_dir, overwrite, resume)
        _check_sample_steps(sample_steps, timesteps, "`timesteps`")
        # The new network's shape, checked before a step is timed (in child
        # processes, which would otherwise fail on it); a resumed run keeps
        # its checkpoint's.
        check_shape(
            image_size,
            widths,
            1 if block_depth == "auto" else block_depth,
            _attention_levels(attention_levels, widths),
            patch_size,
        )
    architecture = dict(
        widths=widths,
        block_depth=_first_depth(block_depth, minutes),
        attention_levels=attention_levels,
        zero_init_residual=zero_init_residual,
        scale_shift=scale_shift,
        zero_init_attention=zero_init_attention,
        patch_size=patch_size,
        schedule=schedule,
        timesteps=timesteps,
        prediction=prediction,
        beta_2=beta_2,
        weight_decay=weight_decay,
        global_clipnorm=global_clipnorm,
        min_snr_gamma=min_snr_gamma,
        noise_levels=noise_levels,
        ema_momentum=ema_momentum,
        sampler=sampler,
        seed=seed,
        classes=None,  # known once the data are read
        label_dropout=label_dropout,
    )
    # TensorFlow fixes its threads when it starts: before the devices are listed
    # and the data are read.
    began = time.monotonic()
    measured = None
    if intra_op_threads == "auto" and devices == 1 and new_run:
        timeout = step_timing.CHILD_TIMEOUT
        if minutes is not None:
            timeout = min(timeout, minutes * 60.0 * CHILD_SHARE)
        measured = step_timing.choose(
            image_size,
            batch_size,
            _timing_architecture(architecture),
            jit_compile,
            timeout,
        )
    elif isinstance(intra_op_threads, int):
        step_timing.set_intra_op_threads(intra_op_threads)
    measuring = time.monotonic() - began
    try:
        scope = distribute.device_scope(devices)
    except ValueError as error:  # name this function's argument, not device_scope's
        raise ValueError(str(error).replace("`count`", "`devices`")) from None
    data = dict(
        image_size=image_size,
        batch_size=batch_size,
        seed=seed,
        num_images=num_images,
        data_dir=data_dir,
        labels=conditional,
    )
    with _named_conditional():
        train_data = datasets.load(dataset, split="train", **data)
    batches = int(train_data.cardinality())
    if batches < 0:  # unknown (a folder's images, say): read up to one batch
        light = dict(cache=False, shuffle=False, augment=False)
        first = datasets.load(dataset, split="train", **light, **data).take(1)
        batches = len(list(first))
    if batches == 0:
        raise ValueError(NO_BATCH.format(batch_size=batch_size))
    validation_data = datasets.load(
        dataset, split="validation", augment=False, cache=minutes is None, **data
    )
    # A budget covers the timing in child processes, building, timing and fit.
    started = time.monotonic() - measuring
    if minutes is not None:  # a loss curve, not the whole split, at every epoch
        # Taken, then cached whole: a partly read cache is dropped with a
        # warning at every epoch.
        validation_data = validation_data.take(BUDGET_VALIDATION_BATCHES).cache()

    with scope:
        checkpoints = os.path.join(output_dir, "checkpoints")
        restored = callbacks.Checkpoint.restore(checkpoints) if resume else None
        if restored is not None:
            model, initial_epoch = restored
            _steps_per_call(model, STEPS_PER_EXECUTION)
            _check_resumed_size(model, image_size, checkpoints)
            given = dict(architecture, block_depth=block_depth)  # not yet resolved
            _check_resumed_arguments(model, given, checkpoints)
            _check_sample_steps(
                sample_steps, model.schedule.timesteps, "the checkpoint's timesteps"
            )
            if (model.num_classes is not None) != conditional:
                kind = "class-conditional" if model.num_classes else "unconditional"
                raise ValueError(
                    f"The checkpoints in {checkpoints} are of a {kind} model: "
                    f"resume with `conditional`={model.num_classes is not None}."
                )
            if epochs is None:  # a budget alone: the time limit ends the run
                epochs = initial_epoch + 10**6
            newest = callbacks.list_checkpoints(checkpoints)[0][0]
            print(
                f"Resuming from {newest} ({_count(initial_epoch, 'epoch')} done): the "
                "network, noise schedule and prediction target are the "
                "checkpoint's."
            )
        else:
            if resume:
                print(f"No checkpoint in {checkpoints}: starting a new run.")
            architecture["classes"] = train_data.class_names if conditional else None
            if minutes is not None:
                # No step count to plan: the time limit ends the run, and a
                # cosine decay follows its clock (`BudgetCosineDecay`).
                epochs = epochs or 10**6
                # Under the decay's callback the rate starts at 0 (the XLA
                # timing's steps then leave the weights alone).
                learning = (
                    0.0
                    if learning_rate_schedule == "cosine"
                    else _learning_rate(learning_rate, "constant", warmup_steps, 1)
                )
                print(f"Time budget: {minutes:.1f} min, training until it is spent.")
            else:
                # The XLA timing's steps train too (a cosine decay then
                # still ends at 0 on the last step).
                timing = (
                    _timing_steps(STEPS_PER_EXECUTION)
                    if jit_compile == "auto"
                    and measured is None
                    and _measures_jit(devices)
                    else 0
                )
                learning = _learning_rate(
                    learning_rate,
                    learning_rate_schedule,
                    warmup_steps,
                    epochs * _count_batches(train_data) + timing,
                )
            model = _new_model(image_size, learning_rate=learning, **architecture)
            # Before the timing in this process: a full disk fails at once.
            _check_space(output_dir, model)
            sampling_jit = model.jit_compile
            step = None  # seconds per training step, where timed
            if measured is not None:  # in child processes, as this model
                _use_xla(model, measured.jit_compile)
                step = measured.seconds
            elif jit_compile != "auto":
                _use_xla(model, jit_compile)
            elif _measures_jit(devices):
                rival = _new_model(image_size, learning_rate=learning, **architecture)
                _use_xla(rival, True)
                model, step = _faster({False: model, True: rival}, train_data)
            if block_depth == "auto" and minutes is not None:
                if step is None:
                    step = _fit_step_seconds(model, train_data)
                left = max(minutes * 60.0 - (time.monotonic() - started), 0.0)
                depth = _auto_depth(step, left)
                if depth != architecture["block_depth"]:
                    architecture["block_depth"] = depth
                    jit = model.jit_compile  # as chosen for one block
                    model = _new_model(
                        image_size, learning_rate=learning, **architecture
                    )
                    _use_xla(model, jit)
                    _check_space(output_dir, model)  # more weights now
            initial_epoch = 0
        if restored is not None:
            _check_space(output_dir, model)
        parameters = model.network.count_params()
        length = (
            _count(epochs, "epoch")
            if minutes is None or epochs < 10**6
            else _count(minutes, "minute")
        )
        print(
            f"keras-ddpm: {parameters:,} parameters, backend {keras.backend.backend()}, "
            f"{dataset} at {image_size}x{image_size}, {length} -> {output_dir}"
        )

        if overwrite:  # the replaced run's model, only once training starts
            for path, *_ in callbacks.list_checkpoints(checkpoints):
                os.remove(path)
            replaced = os.path.join(output_dir, "model.keras")
            if os.path.exists(replaced):
                os.remove(replaced)
        checkpoint = callbacks.Checkpoint(checkpoints)
        history = callbacks.HistoryFile(os.path.join(output_dir, "history.json"))
        non_finite = callbacks.TerminateOnNonFinite(verbose=False)
        run_callbacks = [non_finite, checkpoint, history]
        decays = minutes is not None and learning_rate_schedule == "cosine"
        if restored is not None and has_float_rate(model.optimizer) and not decays:
            # A run that decayed along a budget left its rate near 0.
            model.optimizer.learning_rate = learning_rate
        if minutes is not None:
            remaining = max(minutes - (time.monotonic() - started) / 60.0, 1e-3)
            # Before the checkpoint, so that the stopped epoch is saved.
            run_callbacks.insert(
                0, callbacks.TimeLimit(remaining, verbose=bool(verbose))
            )
            if epochs >= 10**6:  # no epoch count to show: the clock ends the run
                run_callbacks.append(_BudgetProgbar())
        if decays and has_float_rate(model.optimizer):
            # A resumed run decays again over its new budget, without warmup.
            run_callbacks.insert(
                0,
                callbacks.BudgetCosineDecay(
                    learning_rate,
                    remaining,
                    warmup_steps=warmup_steps if restored is None else 0,
                ),
            )
        guide_path = os.path.join(output_dir, "guide.keras")
        snapshot = None  # the guide's callback, where this run takes one
        if restored is None and os.path.exists(guide_path):
            os.remove(guide_path)  # an older run's guide must not pass for this one's
        if model.num_classes is None and guide_scale != 1.0:
            after = {}
            if epochs < 10**6:
                # Half of the run's epochs, a resumed run's earlier ones included.
                batches = _count_batches(train_data)
                after["after_steps"] = (
                    int(GUIDE_AT * epochs * batches) - initial_epoch * batches
                )
            if minutes is not None:
                # Half the budget, counted in `fit` (which the building and
                # timing before it shorten), unless `fit` has less left.
                half = GUIDE_AT * minutes
                after["after_minutes"] = (
                    half if half < remaining else GUIDE_AT * remaining
                )
            if after.get("after_steps", 0) >= 0:  # else an earlier session took it
                snapshot = callbacks.GuideSnapshot(guide_path, **after)
                run_callbacks.append(snapshot)
        if grid_every > 0:
            run_callbacks.append(
                callbacks.SampleGrid(
                    os.path.join(output_dir, "samples"),
                    every_n_epochs=grid_every,
                    sampler=sampler,
                    steps=sample_steps,
                )
            )
        if initial_epoch < epochs:
            with _stop_on_sigint(checkpoint):
                model.fit(
                    train_data,
                    validation_data=validation_data,
                    epochs=epochs,
                    initial_epoch=initial_epoch,
                    callbacks=run_callbacks,
                    verbose=verbose,
                    shuffle=False,  # the dataset shuffles itself
                )
        if restored is None:
            model.jit_compile = sampling_jit  # the final pictures, and model.keras
        _steps_per_call(model, 1)

        def result(status, message=None, files=()):
            return TrainingResult(
                model,
                history.history,
                output_dir,
                status=status,
                message=message,
                checkpoint=checkpoint.last_path,
                files=files,
            )

        if checkpoint.last_path is None and non_finite.step is None:
            # A budget spent inside the first epoch: keep what was trained.
            checkpoint.set_model(model)
            checkpoint.save(epochs_completed=initial_epoch)
        if non_finite.step is not None:
            if (
                snapshot is not None
                and snapshot.saved_step is not None
                and snapshot.saved_step >= non_finite.step
            ):
                os.remove(guide_path)  # taken after the loss diverged
            kept = callbacks.list_checkpoints(checkpoints)
            kept = f"kept {kept[0][0]}" if kept else "no checkpoint was written"
            return result("non_finite", f"{non_finite.message} ({kept})")
        if checkpoint.stop_requested:
            return result("interrupted", "interrupted; a checkpoint was saved")
        files = _write_final_files(
            model,
            history.history,
            output_dir,
            dict(sampler=sampler, steps=sample_steps, seed=seed),
            guidance_scale,
            guide=(
                _usable_guide(model, guide_path)
                if model.num_classes is None and guide_scale != 1.0
                else None
            ),
            guide_scale=guide_scale,
            guide_interval=guide_interval,
            progress=verbose == 1,
        )
    return result("completed", files=files)


LR_SCHEDULES = ("constant", "cosine")


def _usable_guide(model, path):
    """`(guide model, its step)` of the run's `guide.keras`, or None (with a line why).

    A guide taken at the model's own last step (a run of one epoch, say) is
    the model itself and would change nothing: it is removed.
    """
    if not os.path.exists(path):
        print("Training ended before the guide's snapshot: sampling unguided.")
        return None
    guide = keras.saving.load_model(path)
    step = optimizer_steps(guide)
    if step >= optimizer_steps(model):
        os.remove(path)
        print(
            "The guide's snapshot is the final model (too short a run): "
            "sampling unguided."
        )
        return None
    return guide, step


DEFAULTS = types.MappingProxyType(
    {
        name: parameter.default
        for name, parameter in inspect.signature(train).parameters.items()
    }
)
"""The defaults of `train`, read from its signature (also those of `keras-ddpm train`)."""


def _new_model(
    image_size,
    *,
    widths,
    block_depth,
    attention_levels,
    zero_init_residual,
    scale_shift,
    zero_init_attention,
    patch_size,
    schedule,
    timesteps,
    prediction,
    learning_rate,
    beta_2,
    weight_decay,
    global_clipnorm,
    min_snr_gamma,
    noise_levels,
    ema_momentum,
    sampler,
    seed,
    classes,
    label_dropout,
):
    """A compiled `DiffusionModel` over a new U-Net, as `train` builds it.

    `classes`: None (unconditional) or the class names of a conditional model.
    """
    widths = tuple(widths)
    network = models.build_unet(
        image_size,
        widths=widths,
        block_depth=block_depth,
        attention_levels=_attention_levels(attention_levels, widths),
        zero_init_residual=zero_init_residual,
        scale_shift=scale_shift,
        zero_init_attention=zero_init_attention,
        patch_size=patch_size,
        num_classes=None if classes is None else len(classes),
    )
    conditioning = {}
    if classes is not None:
        conditioning = dict(
            num_classes=len(classes),
            class_names=list(classes),
            label_dropout=label_dropout,
        )
    model = DiffusionModel(
        network,
        schedule={"name": schedule, "timesteps": timesteps},
        prediction=prediction,
        min_snr_gamma=min_snr_gamma,
        noise_levels=noise_levels,
        ema_momentum=ema_momentum,
        ema_warmup=True,
        sampler=sampler,
        seed=seed,
        **conditioning,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate,
        beta_2=beta_2,
        weight_decay=weight_decay,
        global_clipnorm=global_clipnorm,
    )
    model.compile(optimizer=optimizer)
    _steps_per_call(model, STEPS_PER_EXECUTION)
    return model


def _first_depth(block_depth, minutes):
    """The block depth built first: `"auto"` is one under a budget (timed, then
    two if the budget holds enough of its steps), two without one."""
    if block_depth != "auto":
        return block_depth
    return 2 if minutes is None else 1


def _timing_architecture(architecture):
    """`architecture` (`_new_model`'s arguments) for the children, as JSON takes it.

    Sequences become lists; NumPy numbers stay (`step_timing` writes them).

    The network of an unconditional run: the classes are not known before the
    data are read, and a class embedding costs little of a step.
    """
    timed = dict(architecture, classes=None)
    for name in ("widths", "attention_levels", "block_depth"):
        value = timed[name]  # a sequence (a range, say) as a list; a number stays
        if value is not None and not isinstance(value, (int, np.integer)):
            timed[name] = [int(entry) for entry in value]
    return timed


def _attention_levels(attention_levels, widths):
    """The recipe's attention levels: as given, or by default the two lowest-resolution levels."""
    if attention_levels is None:
        return tuple(range(max(len(widths) - 2, 0), len(widths)))
    return tuple(attention_levels)


def _check_no_previous_run(output_dir, overwrite, resume):
    """Refuse a new run into a folder that holds one, unless `overwrite` lets it replace that run."""
    found = []
    if os.path.exists(os.path.join(output_dir, "model.keras")):
        found.append("model.keras")
    if callbacks.list_checkpoints(os.path.join(output_dir, "checkpoints")):
        found.append("checkpoints")
    if not found or overwrite:
        return
    if resume:  # a model, but no checkpoint to resume from
        raise ValueError(
            f"{output_dir!r} holds a model.keras but no checkpoint to resume "
            "from: replace it with `overwrite`, or choose another `output_dir`."
        )
    raise ValueError(
        f"{output_dir!r} already holds a run ({' and '.join(found)}): continue it "
        "with `resume`, replace it with `overwrite`, or choose another "
        "`output_dir`."
    )


def _check_resumed_size(model, image_size, checkpoints):
    """Fail, naming `image_size`, when the checkpoint's model makes other images."""
    size = tuple(model.image_shape[:2])
    if size != check_image_size(image_size):
        shown = f"{size[0]}" if size[0] == size[1] else f"{size}"
        raise ValueError(
            f"The checkpoints in {checkpoints} are of a {size[0]}x{size[1]} model: "
            f"resume with `image_size`={shown}."
        )


def _checkpoint_arguments(model):
    """The arguments of `train` that a resumed run takes from `model`, as it shows them.

    Those it does not show are left out: the network's with a network not
    built by `build_unet`, an optimizer's without that setting. Block depths
    are one int per level.
    """
    network = model.network
    # A loss-scaling optimizer (mixed float16) holds the settings in its inner one.
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    levels = []
    while any(layer.name == f"down_{len(levels)}" for layer in network.layers):
        levels.append(network.get_layer(f"down_{len(levels)}"))
    patches = [layer for layer in network.layers if layer.name == "patches"]
    shown = dict(
        timesteps=model.schedule.timesteps,
        prediction=model.prediction,
        min_snr_gamma=model.min_snr_gamma,
        noise_levels=model.noise_levels,
        ema_momentum=model.ema_momentum,
        schedule=type(model.schedule),
    )
    if model.num_classes:  # an unconditional model drops no labels
        shown["label_dropout"] = model.label_dropout
    for name in ("beta_2", "weight_decay", "global_clipnorm"):
        if hasattr(optimizer, name):
            shown[name] = getattr(optimizer, name)
    if levels:
        shown.update(
            widths=tuple(level.filters for level in levels),
            block_depth=tuple(level.block_depth for level in levels),
            attention_levels=tuple(
                i for i, level in enumerate(levels) if level.attention
            ),
            zero_init_residual=levels[0].zero_init,
            scale_shift=levels[0].scale_shift,
            zero_init_attention=levels[0].zero_init_attention,
            patch_size=patches[0].patch_size if patches else 1,
        )
    return shown


def _check_resumed_arguments(model, given, checkpoints):
    """Fail, naming them, where `train` was given settings other than the checkpoint's.

    A resumed run keeps its checkpoint's network, noise schedule, objective,
    EMA and optimizer settings; an argument left at its default is not
    compared (a run resumed without them keeps the checkpoint's).
    """

    def same(given, kept):
        if isinstance(given, float) or isinstance(kept, float):
            return given is not None and kept is not None and np.isclose(given, kept)
        return given == kept

    def normal(name, value):  # as `_checkpoint_arguments` shows it
        if value is None:
            return None
        if name == "block_depth":  # one per level of the checkpoint's network
            levels = len(kept.get("widths", given["widths"]))
            return level_depths(value, levels, words=("auto",))
        if name == "widths":
            return tuple(int(v) for v in value)
        if name == "attention_levels":
            return tuple(sorted({int(v) for v in value}))
        if name == "schedule":
            return type(schedules.get(value))
        if isinstance(value, (float, np.floating)):
            return float(value)
        return value

    kept = _checkpoint_arguments(model)
    differ = []
    for name, shown in kept.items():
        value = normal(name, given[name])
        if same(value, normal(name, DEFAULTS[name])):
            continue  # not given: the checkpoint's is kept
        if not same(value, shown):
            differ.append((name, given[name], shown))
    if differ:
        differ.sort(key=lambda entry: list(DEFAULTS).index(entry[0]))  # as in `train`
        names = [f"`{name}`" for name, *_ in differ]
        names = " and ".join([", ".join(names[:-1]), names[-1]] if names[1:] else names)
        values = "; ".join(
            f"{_shown(shown)}, not {_shown(value)}" for _, value, shown in differ
        )
        raise ValueError(
            f"A resumed run keeps the {names} of the checkpoints in {checkpoints} "
            f"({values}): drop {'it' if len(differ) == 1 else 'them'} to resume, or "
            "start a new run with `overwrite` or another `output_dir`."
        )


def _shown(value):
    """A setting as a user typed it: sequences as space-separated values, a class by name."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, (list, tuple, range)):
        return " ".join(str(v) for v in value)
    return str(value)


def _count(number, unit):
    """`number` `unit`s, in the singular for 1 ("1 epoch", "2.5 minutes")."""
    shown = str(number) if isinstance(number, (int, np.integer)) else f"{number:g}"
    return f"{shown} {unit}{'' if shown == '1' else 's'}"


def _check_sample_steps(sample_steps, timesteps, what):
    """Fail before training where the final pictures could not take `sample_steps`."""
    if sample_steps > timesteps:
        raise ValueError(
            f"`sample_steps` must lie in [1, {timesteps}] (at most {what}), got "
            f"{sample_steps}."
        )


def _check_space(output_dir, model):
    """Refuse a run whose files would not fit on `output_dir`'s disk.

    Two kept checkpoints, one being written, model.keras and guide.keras, each
    holding the weights, their EMA and two AdamW moments in float32.
    """
    check_free_space(output_dir, 5 * 4 * 4 * model.network.count_params())


def _steps_per_call(model, count):
    """Let `fit` run `count` steps per call of the train function on TensorFlow.

    The recipe sets `STEPS_PER_EXECUTION` for its own `fit` and 1 after it.
    Set on the model rather than compiled in, so that neither a saved model
    nor the one `train` returns carries it: PyTorch's trainer refuses it, and
    a user's own `fit` keeps one call (and one round of batch callbacks) per
    step. The compiled functions are dropped, since a traced one keeps the
    count it was traced with.

    Under a strategy of several replicas (`devices` > 1) it stays 1: Keras'
    train function for several steps per call fails there ("You must feed a
    value for placeholder tensor" from the loop's condition, seen on two
    logical CPU devices; Keras 3.15, TensorFlow 2.21), where one step per
    call trains.
    """
    if keras.backend.backend() == "tensorflow":
        if model.distribute_strategy.num_replicas_in_sync > 1:
            count = 1
        model.steps_per_execution = count
        model.train_function = model.test_function = None


@contextlib.contextmanager
def _named_conditional():
    """Data errors that name `datasets.load`'s `labels=True` name `conditional`."""
    try:
        yield
    except ValueError as error:
        raise ValueError(str(error).replace("labels=True", "`conditional`")) from None


def _check_guidance(conditional, label_dropout, guidance_scale, guide_scale):
    """Refuse the settings of the other kind of run than `conditional` says.

    Label dropout and classifier-free guidance need classes; autoguidance
    guides only an unconditional run. Left at their defaults, they are not
    given.
    """
    if conditional:
        if guide_scale not in (1.0, DEFAULTS["guide_scale"]):
            raise ValueError(
                "`guide_scale` (autoguidance) applies only to a run without "
                "`conditional`; a conditional run's final pictures take "
                "`guidance_scale`."
            )
        return
    given = [
        f"`{name}`"
        for name, value in (
            ("label_dropout", label_dropout),
            ("guidance_scale", guidance_scale),
        )
        if value != DEFAULTS[name]
    ]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise ValueError(
            f"{' and '.join(given)} {verb} only to a run with `conditional` "
            "(classifier-free guidance); an unconditional run's final pictures "
            "take `guide_scale` (autoguidance)."
        )


def _learning_rate(peak, schedule, warmup_steps, total_steps):
    """AdamW's learning rate: a float, or a warmup and optional cosine decay to 0."""
    if warmup_steps == 0 and schedule == "constant":
        return peak
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=peak,
        warmup_steps=warmup_steps,
        # alpha = 1 keeps the rate at its peak after the warmup: no decay.
        alpha=1.0 if schedule == "constant" else 0.0,
    )


def _count_batches(dataset):
    """Batches per epoch of a finite `tf.data` pipeline."""
    count = int(dataset.cardinality())
    return count if count > 0 else sum(1 for _ in dataset)


def _first_batches(train_data, count):
    """The first `count` batches of `train_data` as lists of numpy arrays.

    The whole epoch is read: a pipeline that caches fills its cache (which
    `fit` then reads) instead of discarding a partial one with a warning.
    """
    batches = []
    for batch in train_data:  # images, or (images, labels)
        if len(batches) < count:
            parts = batch if isinstance(batch, tuple) else [batch]
            batches.append([np.asarray(part) for part in parts])
    if not batches:
        raise ValueError(NO_BATCH.format(batch_size="`batch_size`"))
    # A split of fewer batches: repeat them, in turn.
    return list(itertools.islice(itertools.cycle(batches), count))


def _time_steps(models, batches):
    """`{key: (first-call seconds, median seconds per step after it)}` of `{key: model}`.

    Each model's train function runs its `steps_per_execution` steps per
    call, on the next of `batches`. The first call traces and compiles; the
    calls after it are timed in turns, one model after the other, so that a
    machine's slow spell falls on all of them alike.
    """
    data = _batches_dataset(batches)
    iterators = {key: iter(data) for key in models}
    per_call = {key: model.steps_per_execution for key, model in models.items()}
    first, times = {}, {key: [] for key in models}
    for key, model in models.items():
        begin = time.monotonic()
        _first_call(model, iterators[key])
        first[key] = time.monotonic() - begin
    for _ in range(1, len(batches) // max(per_call.values())):
        for key, model in models.items():
            begin = time.monotonic()
            _fit_step(model, iterators[key])
            times[key].append((time.monotonic() - begin) / per_call[key])
    return {key: (first[key], float(np.median(times[key]))) for key in models}


def _batches_dataset(batches):
    """A `tf.data` pipeline of `batches` (lists of numpy arrays, equal shapes).

    Its elements have the training split's structure: images, or (images,
    labels).
    """
    import tensorflow as tf

    # Equal shapes: the training split drops its last, smaller batch.
    columns = tuple(np.stack(part) for part in zip(*batches))
    return tf.data.Dataset.from_tensor_slices(
        columns if len(columns) > 1 else columns[0]
    )


def _first_call(model, iterator):
    """The train function's first call on `iterator`: it traces and compiles."""
    model._build_optimizer()  # else the first trace runs twice
    model.make_train_function()
    _fit_step(model, iterator)


def _fit_step(model, iterator):
    """One call of the train function on a `tf.data` iterator, as `fit` makes it.

    The call takes `model.steps_per_execution` steps, on as many batches.

    `fit` calls the model's train function on an iterator of the dataset's
    elements; `train_on_batch` calls the same step on `(x, None, None)`, a
    structure of its own, so after it `fit` traced and compiled the step
    once more (23 s with XLA for the recipe's network on 2 CPU cores). This
    step leaves the compiled function that `fit` then runs (the timing pays
    for that compile instead: 13 s saved in all).
    """
    logs = model.train_function(iterator)
    keras.ops.convert_to_numpy(logs["loss"])  # a number: the step has finished


def _measures_jit(devices):
    """Whether `jit_compile="auto"` is measured here: TensorFlow on CPUs, one device."""
    if keras.backend.backend() != "tensorflow" or devices != 1:
        return False
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


def _use_xla(model, on):
    """Compile `model`'s train step with XLA (True) or without (False) from now on."""
    model.jit_compile = bool(on)
    model.train_function = model.test_function = None


def _faster(candidates, train_data):
    """Of `{jit_compile: model}`, the faster model here and its seconds per step.

    Both take the same first batches of `train_data` as training steps; the
    kept one goes on from there.
    """
    per_call = max(model.steps_per_execution for model in candidates.values())
    batches = _first_batches(train_data, _timing_steps(per_call))
    timed = _time_steps(candidates, batches)
    best = min(timed, key=lambda key: timed[key][1])
    print(_jit_line(timed, best))
    return candidates[best], timed[best][1]


def _fit_step_seconds(model, train_data):
    """`model`'s median seconds per training step, timed in `fit` on any backend.

    `model` takes the first batches of `train_data` (a first call, which
    traces and compiles, then `JIT_TIMED_STEPS` or more) as training steps,
    in a `fit` of their own: the function it compiles is the one the run's
    `fit` goes on with, the batches having the same shapes.
    """
    per_call = model.steps_per_execution
    clock = _CallClock()
    model.fit(
        _batches_dataset(_first_batches(train_data, _timing_steps(per_call))),
        epochs=1,
        callbacks=[clock],
        verbose=0,
    )
    return float(np.median(np.diff(clock.times[1:]))) / per_call


class _CallClock(keras.callbacks.Callback):
    """The time at the end of each call of the train function (`on_train_batch_end`)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.monotonic())


def _auto_depth(step, seconds):
    """`block_depth="auto"`'s choice for `seconds` of training at `step` seconds a step.

    `step`: the one-block network's. Two blocks per level when `seconds`
    hold at least `AUTO_DEPTH_STEPS` such steps, else one; prints the line
    that says why.
    """
    steps = seconds / step
    depth = 2 if steps >= AUTO_DEPTH_STEPS else 1
    print(
        f"Block depth auto: about {steps:,.0f} one-block steps of {step:.3f} s "
        f"in the {seconds / 60.0:.1f} min left, "
        + (
            f"at least {AUTO_DEPTH_STEPS:,} -> two residual blocks per level."
            if depth == 2
            else f"under {AUTO_DEPTH_STEPS:,} -> one residual block per level."
        )
    )
    return depth


def _timing_steps(per_call):
    """Steps each model takes in `_faster`: a first call, then whole calls.

    The calls after the first take at least `JIT_TIMED_STEPS` steps.
    """
    return per_call * (1 + _timed_calls(per_call))


def _timed_calls(per_call):
    """Calls timed after the first: at least `JIT_TIMED_STEPS` steps in all."""
    return -(-JIT_TIMED_STEPS // per_call)


def _jit_line(timed, best):
    steps = ", ".join(
        f"{timed[key][1]:.3f} s {'with' if key else 'without'} XLA" for key in timed
    )
    return f"Train step on this CPU: {steps} -> {'XLA' if best else 'no XLA'}."


@contextlib.contextmanager
def _stop_on_sigint(checkpoint):
    """While active, the first SIGINT asks `checkpoint` to stop after this batch.

    Signal handlers can only be set from the main thread; in another thread
    SIGINT keeps its usual meaning.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        print(
            "\nInterrupted: finishing this batch and saving a checkpoint "
            "(Ctrl-C again to abort).",
            file=sys.stderr,
        )
        checkpoint.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_final_files(
    model,
    history,
    output_dir,
    sampling,
    guidance_scale,
    guide,
    guide_scale,
    guide_interval,
    progress,
):
    """Save the model, sample the final pictures and plot the losses; their paths.

    `sampling`: the `sampler`, `steps` and `seed` of `generate`; `guide`:
    `(guide model, its step)` or None; `guide_interval`: its timesteps;
    `progress`: a progress bar over the sampled images (as `fit`'s at verbose 1).
    """
    with atomic_path(os.path.join(output_dir, "model.keras")) as temporary:
        model.save(temporary)
    names = ["model.keras", "samples.png", "denoise.gif", "denoise_strip.png"]
    guided = {}
    if model.num_classes is not None:  # the grid cycles through the classes
        guided = dict(
            labels=np.arange(GRID_IMAGES) % model.num_classes,
            guidance_scale=guidance_scale,
        )
    how = ""
    if guide is not None:
        guided = dict(
            guide=guide[0], guide_scale=guide_scale, guidance_interval=guide_interval
        )
        names.insert(1, "guide.keras")
        how = (
            f", autoguidance {guide_scale:g} by step {guide[1]} at timesteps "
            f"{guide_interval[0]:g}-{guide_interval[1]:g}"
        )
    print(
        f"Sampling {GRID_IMAGES} images ({sampling['sampler']}, "
        f"{sampling['steps']} steps{how})..."
    )
    images, trajectory = model.generate(
        GRID_IMAGES,
        return_trajectory=True,
        batch_size=SAMPLE_BATCH,
        progress=progress,
        **sampling,
        **guided,
    )
    viz.save_samples(images, trajectory, output_dir)
    if model.num_classes is not None:
        rows = min(model.num_classes, CLASS_ROWS)
        print(f"Sampling {PER_CLASS} images of each of {rows} classes...")
        viz.save_class_grid(
            model,
            os.path.join(output_dir, "classes.png"),
            per_class=PER_CLASS,
            classes=range(rows),
            guidance_scale=guidance_scale,
            batch_size=SAMPLE_BATCH,
            **sampling,
        )
        names.append("classes.png")
    names.append("history.json")
    try:
        viz.plot_history(history, os.path.join(output_dir, "loss.png"))
        names.append("loss.png")
    except (ImportError, ValueError) as error:  # no matplotlib, or no epoch ended
        print(f"Skipping loss.png: {error}", file=sys.stderr)
    files = [os.path.join(output_dir, name) for name in names]
    print("Wrote " + ", ".join(files))
    return files
