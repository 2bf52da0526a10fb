"""`kd.training.train`: the recipe of `keras-ddpm train`, called from Python."""

import inspect
import json
import math
import os
import shutil
import time
import warnings

import keras
import numpy as np
import pytest

import keras_ddpm as kd

# The recipe is backend-independent Python over the public API, and training on
# every backend is tested in tests/models: the recipe's runs happen once, under
# PyTorch, where tiny models train fastest.
ONCE = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the recipe over the public API: it trains once, under PyTorch",
)

TINY = dict(
    image_size=8,
    num_images=40,
    batch_size=8,
    widths=(8, 16),
    block_depth=1,
    timesteps=50,
    sample_steps=3,
    verbose=0,
)


def first_depth(model):
    """The residual blocks of the first level of `model`'s U-Net."""
    return model.network.get_layer("down_0").block_depth


def test_defaults_are_the_signature_and_read_only():
    signature = inspect.signature(kd.training.train).parameters
    assert dict(kd.training.DEFAULTS) == {
        name: parameter.default for name, parameter in signature.items()
    }
    with pytest.raises(TypeError):
        kd.training.DEFAULTS["epochs"] = 1


@ONCE
def test_trains_writes_the_run_folder_and_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    result = kd.training.train(out, epochs=1, **TINY)
    assert result.status == "completed" and result.completed and result.message is None
    assert isinstance(result.model, kd.DiffusionModel)
    assert len(result.history["loss"]) == 1 and "val_loss" in result.history
    names = {os.path.basename(path) for path in result.files}
    assert names == {
        "model.keras",
        "samples.png",
        "denoise.gif",
        "denoise_strip.png",
        "history.json",
        "loss.png",
    }
    assert all(os.path.isfile(path) for path in result.files)
    # One epoch: the guide's snapshot is the final model, so none is kept.
    assert "The guide's snapshot is the final model" in capsys.readouterr().out
    assert not (out / "guide.keras").exists()
    assert result.checkpoint.endswith("ckpt-epoch00001-step000000004.keras")
    assert "epochs=1" in repr(result)
    assert result.model.optimizer.beta_2 == kd.training.DEFAULTS["beta_2"] == 0.999
    assert result.model.optimizer.weight_decay == 0.004
    assert result.model.optimizer.global_clipnorm is None
    assert result.model.ema_momentum == kd.training.DEFAULTS["ema_momentum"] == 0.995

    result = kd.training.train(out, epochs=2, resume=True, **TINY)
    assert (
        "(1 epoch done): the network, noise schedule and prediction target are "
        "the checkpoint's." in capsys.readouterr().out
    )
    assert result.completed and len(result.history["loss"]) == 2
    with open(out / "history.json") as file:
        assert json.load(file)["loss"] == result.history["loss"]
    assert int(result.model.optimizer.iterations.numpy()) == 8

    # A resumed run checks the disk as well, before it trains a step.
    kept = sorted(os.listdir(out / "checkpoints"))
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0)
    )
    with pytest.raises(OSError, match="Not enough free space"):
        kd.training.train(out, epochs=3, resume=True, **TINY)
    assert sorted(os.listdir(out / "checkpoints")) == kept


@ONCE
@pytest.mark.parametrize(
    "widths,expected",
    [((8, 8, 16), [False, True, True]), ((8,), [True])],
)
def test_attention_defaults_to_the_two_lowest_resolution_levels(
    tmp_path, widths, expected
):
    settings = {**TINY, "widths": widths}
    result = kd.training.train(tmp_path / "run", epochs=1, **settings)
    network = result.model.network
    for name in ("down", "up"):
        found = [network.get_layer(f"{name}_{i}").attention for i in range(len(widths))]
        assert found == expected, name
    assert network.get_layer("middle_attention") is not None


DEPTH_ERROR = (
    "`block_depth` must be 'auto', an int >= 1 or a sequence of one such int "
    "per level (3 levels)"
)


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"epochs": 0}, "`epochs` must be a positive int or None, got 0."),
        ({"epochs": 2.0}, "`epochs` must be a positive int or None, got 2.0."),
        ({"grid_every": -1}, "`grid_every` must be an int >= 0"),
        ({"learning_rate": float("nan")}, "`learning_rate` must be finite"),
        ({"learning_rate": 0.0}, "`learning_rate` must be > 0"),
        ({"beta_2": 1.0}, "`beta_2` must lie in (0, 1), got 1.0."),
        ({"beta_2": 0.0}, "`beta_2` must lie in (0, 1), got 0.0."),
        ({"weight_decay": -0.1}, "`weight_decay` must be >= 0, got -0.1."),
        ({"block_depth": 0}, DEPTH_ERROR + ", got 0."),
        ({"block_depth": "two"}, DEPTH_ERROR + ", got 'two'."),
        ({"block_depth": True}, DEPTH_ERROR + ", got True."),
        ({"block_depth": 2.0}, DEPTH_ERROR + ", got 2.0."),
        ({"block_depth": (1, 2)}, DEPTH_ERROR + ", got (1, 2)."),
        ({"block_depth": [1, 0, 2]}, DEPTH_ERROR + ", got [1, 0, 2]."),
        ({"global_clipnorm": 0.0}, "`global_clipnorm` must be > 0, got 0.0."),
        ({"guide_scale": float("inf")}, "`guide_scale` must be finite"),
        ({"guide_interval": (800, 100)}, "`guide_interval` must be two finite"),
        ({"guide_interval": (0, 1001)}, "reaches past the schedule's 1000 timesteps"),
        (
            {"batch_size": 8, "devices": 3},
            "`batch_size` 8 must be a multiple of `devices` 3.",
        ),
        ({"dataset": "no_such_dataset_xyz"}, "Unknown dataset"),
        ({"noise_levels": "edm"}, "`noise_levels` must be one of"),
        (
            {"jit_compile": "yes"},
            "`jit_compile` must be 'auto', True or False, got 'yes'.",
        ),
        ({"intra_op_threads": 0}, "`intra_op_threads` must be"),
        ({"intra_op_threads": "all"}, "`intra_op_threads` must be"),
    ],
)
def test_errors_name_arguments_not_flags(tmp_path, arguments, message):
    with pytest.raises(ValueError) as error:
        kd.training.train(tmp_path, **arguments)
    assert message in str(error.value) and "--" not in str(error.value)


@pytest.mark.parametrize(
    "arguments,message",
    [
        (
            {"image_size": 30, "widths": (32, 64, 128)},
            "Image height 30 is not divisible",
        ),
        ({"attention_levels": (5,)}, "`attention_levels` must hold level indices in"),
        ({"ema_momentum": 2.0}, "`ema_momentum` must lie in [0, 1)"),
        (
            {"timesteps": 50, "sample_steps": 51},
            "`sample_steps` must lie in [1, 50] (at most `timesteps`), got 51.",
        ),
    ],
)
def test_the_network_and_ema_are_checked_before_a_step_is_timed(
    tmp_path, monkeypatch, arguments, message
):
    from keras_ddpm.training import recipe

    def choose(*args):
        raise AssertionError("a step was timed before the arguments were checked")

    monkeypatch.setattr(recipe.step_timing, "choose", choose)
    with pytest.raises(ValueError) as error:
        kd.training.train(tmp_path, **arguments)
    assert message in str(error.value)


def test_resume_and_overwrite_are_checked_against_the_folder(tmp_path):
    with pytest.raises(ValueError, match="`resume` and `overwrite` exclude each other"):
        kd.training.train(tmp_path, resume=True, overwrite=True, **TINY)
    (tmp_path / "model.keras").write_bytes(b"a model without checkpoints")
    with pytest.raises(ValueError, match="holds a model.keras but no checkpoint to"):
        kd.training.train(tmp_path, resume=True, **TINY)
    assert (tmp_path / "model.keras").read_bytes() == b"a model without checkpoints"


def test_a_thread_count_is_for_tensorflow_before_it_starts(tmp_path):
    threads, message = 1, "`intra_op_threads` sets TensorFlow's threads"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.constant(0.0)  # TensorFlow has started: its threads are fixed
        threads = tf.config.threading.get_intra_op_parallelism_threads() + 1
        message = "needs a process whose TensorFlow has not started yet"
    with pytest.raises(ValueError, match=message):
        kd.training.train(tmp_path, intra_op_threads=threads, **TINY)


def test_an_unwritable_folder_fails_before_loading_data(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="Cannot write to output folder"):
        kd.training.train(blocker / "run", dataset="no_such_dataset_xyz")


@ONCE
def test_cosine_schedule_warms_up_then_decays_to_zero_at_the_last_step(tmp_path):
    result = kd.training.train(
        tmp_path / "run",
        epochs=2,
        learning_rate=0.01,
        learning_rate_schedule="cosine",
        warmup_steps=2,
        beta_2=0.95,
        weight_decay=0.0,
        global_clipnorm=1.0,
        **TINY,
    )
    optimizer = result.model.optimizer
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 8
    assert optimizer.beta_2 == 0.95
    assert optimizer.weight_decay == 0.0 and optimizer.global_clipnorm == 1.0
    schedule = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(optimizer._learning_rate)
    )
    rates = [
        float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 1, 2, 5, 8)
    ]
    # Linear warmup 0 → 0.01 over 2 steps, then half a cosine over the other 6.
    expected = [0.0, 0.005, 0.01, 0.01 * 0.5 * (1 + math.cos(math.pi * 3 / 6)), 0.0]
    assert rates == pytest.approx(expected, abs=1e-6)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(
        0.0, abs=1e-6
    )


@ONCE
def test_constant_schedule_warms_up_then_holds_its_rate(tmp_path):
    result = kd.training.train(
        tmp_path / "run",
        epochs=1,
        learning_rate=0.01,
        learning_rate_schedule="constant",
        warmup_steps=2,
        **TINY,
    )
    schedule = result.model.optimizer._learning_rate
    rates = [float(keras.ops.convert_to_numpy(schedule(s))) for s in (0, 1, 2, 3, 99)]
    assert rates == pytest.approx([0.0, 0.005, 0.01, 0.01, 0.01], abs=1e-6)


class _Clock:
    """A fake `time.monotonic` that only the fake models below advance."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Timed:
    """A stand-in model: its first call takes `first` seconds, then each step `seconds`.

    Each call of its train function takes `steps_per_execution` steps.
    """

    def __init__(self, clock, first, seconds, steps_per_execution=1):
        self.clock, self.first, self.seconds, self.batches = clock, first, seconds, []
        self.steps_per_execution = steps_per_execution

    def _build_optimizer(self):
        pass

    def make_train_function(self):
        pass

    def train_function(self, iterator):
        per_call = self.steps_per_execution
        self.clock.now += self.seconds * per_call if self.batches else self.first
        for _ in range(per_call):
            images = next(iterator)  # `fit`'s way: the next batches of an iterator
            self.batches.append(float(images[0, 0, 0, 0]))
        return {"loss": 0.0}


def test_the_faster_train_step_is_kept_and_both_train_on_the_same_batches(
    monkeypatch, capsys
):
    from keras_ddpm.training import recipe

    clock = _Clock()
    monkeypatch.setattr(recipe.time, "monotonic", clock)
    images = np.arange(40, dtype="float32").reshape(40, 1, 1, 1, 1)
    train_data = tf_like(images)
    graph = _Timed(clock, first=1.0, seconds=0.10, steps_per_execution=4)
    # Slower to compile, faster to run:
    xla = _Timed(clock, first=9.0, seconds=0.07, steps_per_execution=4)
    assert recipe._faster({False: graph, True: xla}, train_data) == (
        xla,
        pytest.approx(0.07),
    )
    # The first call, then whole calls of at least JIT_TIMED_STEPS steps.
    count = 4 + 4 * -(-recipe.JIT_TIMED_STEPS // 4)
    assert graph.batches == xla.batches == list(range(count))
    assert (
        "Train step on this CPU: 0.100 s without XLA, 0.070 s with XLA -> XLA."
        in capsys.readouterr().out
    )
    slow_xla = _Timed(clock, first=9.0, seconds=0.2)
    assert recipe._faster({False: graph, True: slow_xla}, train_data)[0] is graph
    timed = recipe._time_steps({"a": _Timed(clock, 2.0, 0.5)}, [[images[0]]] * 4)
    assert timed == {"a": (2.0, 0.5)}
    # Three calls of two steps: the time per step, not per call.
    twice = _Timed(clock, 2.0, 0.5, steps_per_execution=2)
    assert recipe._time_steps({"a": twice}, [[images[0]]] * 6) == {"a": (2.0, 0.5)}
    # A split of fewer batches than the timing takes: they repeat in turn.
    few = recipe._first_batches(tf_like(images[:2]), 5)
    assert [float(batch[0].flat[0]) for batch in few] == [0, 1, 0, 1, 0]


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the train step is timed on a TensorFlow CPU only",
)
@pytest.mark.parametrize("conditional,xla", [(False, False), (True, True)])
def test_fit_runs_the_train_step_the_timing_compiled(conditional, xla):
    from keras_ddpm.training import recipe

    data = kd.datasets.load(
        "synthetic_flowers",
        split="train",
        image_size=8,
        batch_size=4,
        num_images=40,
        labels=conditional,
    )
    names = inspect.signature(recipe._new_model).parameters
    settings = {
        k: v for k, v in recipe.DEFAULTS.items() if k in names and k != "image_size"
    }
    classes = data.class_names if conditional else None
    settings.update(widths=(8, 16), block_depth=1, timesteps=50, classes=classes)
    model = recipe._new_model(8, **settings)
    recipe._use_xla(model, xla)
    traces = []
    step = model.train_step
    model.train_step = lambda *args: traces.append(1) or step(*args)
    per_call = model.steps_per_execution
    assert per_call == recipe.STEPS_PER_EXECUTION
    timed = recipe._time_steps({xla: model}, recipe._first_batches(data, 3 * per_call))
    assert timed[xla][1] > 0
    assert len(traces) == 1
    model.fit(data, epochs=2, verbose=0)
    assert len(traces) == 1  # fit traced (and compiled) nothing more


def test_auto_depth_is_two_blocks_when_the_time_holds_enough_steps(capsys):
    from keras_ddpm.training import recipe

    steps = recipe.AUTO_DEPTH_STEPS
    assert recipe._auto_depth(0.05, 0.05 * steps) == 2  # exactly enough
    assert recipe._auto_depth(0.05, 0.05 * steps - 0.01) == 1
    assert recipe._auto_depth(0.05, 480.0) == 1  # 9,600 steps
    assert recipe._auto_depth(0.03, 480.0) == 2  # 16,000 steps
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == (
        "Block depth auto: about 9,600 one-block steps of 0.050 s in the 8.0 min "
        "left, under 12,000 -> one residual block per level."
    )
    assert lines[3] == (
        "Block depth auto: about 16,000 one-block steps of 0.030 s in the 8.0 min "
        "left, at least 12,000 -> two residual blocks per level."
    )


def test_fit_timing_trains_its_batches_and_leaves_fit_its_compiled_step():
    from keras_ddpm.training import recipe

    data = kd.datasets.load(
        "synthetic_flowers", split="train", image_size=8, batch_size=4, num_images=40
    )
    names = inspect.signature(recipe._new_model).parameters
    settings = {
        k: v for k, v in recipe.DEFAULTS.items() if k in names and k != "image_size"
    }
    settings.update(widths=(8,), block_depth=1, timesteps=50, classes=None)
    model = recipe._new_model(8, **settings)
    traces = []
    step = model.train_step
    model.train_step = lambda *args: traces.append(1) or step(*args)
    seconds = recipe._fit_step_seconds(model, data)
    assert 0 < seconds < 10
    per_call = model.steps_per_execution
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert iterations == recipe._timing_steps(per_call)
    if keras.backend.backend() != "torch":  # torch runs the step eagerly
        traced = len(traces)
        model.fit(data, epochs=1, verbose=0)
        assert len(traces) == traced  # the same compiled step goes on


@ONCE
def test_auto_depth_follows_the_budget_and_is_two_without_one(
    tmp_path, capsys, monkeypatch
):
    from keras_ddpm.training import recipe

    settings = {**TINY, "block_depth": "auto"}
    # A budget of a few seconds holds far fewer steps than AUTO_DEPTH_STEPS.
    result = kd.training.train(tmp_path / "short", minutes=0.1, **settings)
    assert result.completed, result.message
    out = capsys.readouterr().out
    assert "-> one residual block per level." in out and first_depth(result.model) == 1
    monkeypatch.setattr(recipe, "AUTO_DEPTH_STEPS", 0)  # any time is enough
    result = kd.training.train(tmp_path / "long", minutes=0.1, **settings)
    assert "-> two residual blocks per level." in capsys.readouterr().out
    assert first_depth(result.model) == 2
    monkeypatch.setattr(recipe, "AUTO_DEPTH_STEPS", 10**9)
    result = kd.training.train(tmp_path / "epochs", epochs=1, **settings)
    assert (
        "Block depth" not in capsys.readouterr().out and first_depth(result.model) == 2
    )
    assert kd.training.DEFAULTS["block_depth"] == "auto"


@ONCE  # each backend builds and saves per-level depths in tests/models/test_unet.py
def test_a_block_depth_per_level_reaches_the_network_and_its_file(tmp_path, capsys):
    # Without the XLA timing, which a TensorFlow CPU would compile for nothing.
    settings = {**TINY, "block_depth": [1, 2], "jit_compile": False}
    result = kd.training.train(tmp_path / "run", epochs=1, **settings)
    assert result.completed, result.message
    out = capsys.readouterr().out
    assert "Train step" not in out  # explicit settings are not measured
    assert "Sampling 32 images" in out and "/image" not in out  # verbose=0: no bars
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras").network
    for network in (result.model.network, saved):
        depths = [network.get_layer(f"up_{level}").block_depth for level in (0, 1)]
        assert depths == [1, 2]


def _untimed(*args, **kwargs):
    raise AssertionError("the train step was timed before the data were checked")


@pytest.mark.parametrize(
    "source", ["synthetic_flowers", "folder", "unreadable", "empty", "loose"]
)
def test_a_training_split_smaller_than_a_batch_is_a_clear_error(
    tmp_path, source, monkeypatch
):
    from PIL import Image

    settings = {**TINY, "num_images": 4, "epochs": 1}
    message = r"holds no full batch of 8 images: lower `batch_size` or give more"
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4 if source in ("folder", "loose") else 20):
        image = np.full((8, 8, 3), 10 * i, np.uint8)
        Image.fromarray(image).save(folder / f"{i}.png")
    if source != "synthetic_flowers":
        settings.update(dataset=str(folder), num_images=None)
    if source == "unreadable":  # 16 training files by name, 4 images once read
        for i in range(4, 20):
            (folder / f"{i}.png").write_bytes(b"not a png")
    if source == "empty":
        for path in folder.iterdir():
            path.unlink()
        message = "No images .* found under folder"
    if source == "loose":
        settings.update(conditional=True)
        message = "^`conditional` reads one class per sub-folder"
    if source != "unreadable":  # the others fail before anything is timed
        monkeypatch.setattr("keras_ddpm.training.step_timing.choose", _untimed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Skipping unreadable image"
        with pytest.raises(ValueError, match=message):
            kd.training.train(tmp_path / "run", **settings)
    assert not (tmp_path / "run" / "model.keras").exists()
    if source != "unreadable":  # and before the run's folder is made
        assert not (tmp_path / "run").exists()


def test_a_failed_run_leaves_no_new_empty_folder(tmp_path):
    for folder in (tmp_path / "new" / "run", tmp_path / "kept" / "run"):
        if folder.parent.name == "kept":
            folder.mkdir(parents=True)
        with pytest.raises(ValueError, match="Unknown dataset"):
            kd.training.train(folder, dataset="no_such_dataset_xyz", **TINY)
    assert not (tmp_path / "new").exists()  # made for the run, parent and all
    assert (tmp_path / "kept" / "run").is_dir()  # it was there before


def tf_like(images):
    """An iterable stand-in for a `tf.data` pipeline of single-image batches."""

    class Batches:
        def __iter__(self):
            return iter(images)

    return Batches()


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="`jit_compile='auto'` is measured on a TensorFlow CPU only",
)
def test_auto_jit_measures_both_and_samples_as_compiled(tmp_path, capsys, monkeypatch):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU takes DiffusionModel.compile's choice, XLA")
    from keras_ddpm.training import recipe

    # In-process timing: TensorFlow's threads stay as they are (a process
    # whose TensorFlow has not started would time them in child processes,
    # tests/training/test_step_timing.py).
    settings = {**TINY, "warmup_steps": 2, "intra_op_threads": None}
    result = kd.training.train(tmp_path / "run", epochs=1, **settings)
    out = capsys.readouterr().out
    assert result.completed, result.message
    line = next(line for line in out.splitlines() if line.startswith("Train step"))
    assert "s without XLA" in line and "s with XLA" in line
    # The timing's steps train too: the cosine decay counts them and ends at
    # 0 on the last step of the epoch (4 batches) after them.
    optimizer = result.model.optimizer
    steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
    assert steps == 4 + recipe._timing_steps(recipe.STEPS_PER_EXECUTION)
    rates = [float(optimizer._learning_rate(step)) for step in (steps - 1, steps)]
    assert rates[0] > 0 and rates[1] == pytest.approx(0.0, abs=1e-9)
    # The returned model's own `fit` takes one step per call again.
    assert result.model.steps_per_execution == 1
    # Sampling and the saved model keep the model's own setting: no XLA.
    assert result.model.jit_compile is False
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert saved.jit_compile is False
    # Under a budget, `block_depth="auto"` times the one-block network and
    # reads the faster setting's step; two blocks, built after the timing
    # (any time is enough here), train with the XLA setting it chose. The
    # timing above was real; this one is told, so that XLA wins (TensorFlow's
    # own choice, the graph, would pass for a setting never handed on).
    timed_depths = []

    def told(models, batches):
        timed_depths.extend(first_depth(model) for model in models.values())
        return {jit: (1.0, 0.004 if jit else 0.008) for jit in models}

    settings = []
    use_xla = recipe._use_xla
    monkeypatch.setattr(recipe, "_time_steps", told)
    monkeypatch.setattr(
        recipe, "_use_xla", lambda model, on: settings.append(on) or use_xla(model, on)
    )
    monkeypatch.setattr(recipe, "AUTO_DEPTH_STEPS", 0)
    checked = []  # the free space is checked for each model built
    check_space = recipe._check_space
    monkeypatch.setattr(
        recipe,
        "_check_space",
        lambda folder, model: checked.append(model) or check_space(folder, model),
    )
    budget = {**TINY, "intra_op_threads": None, "block_depth": "auto", "minutes": 0.1}
    result = kd.training.train(tmp_path / "auto", **budget)
    assert [first_depth(model) for model in checked] == [1, 2]
    assert checked[-1] is result.model
    lines = capsys.readouterr().out.splitlines()
    assert (
        "Train step on this CPU: 0.008 s without XLA, 0.004 s with XLA -> XLA." in lines
    )
    chosen = next(line for line in lines if line.startswith("Block depth auto"))
    assert "one-block steps of 0.004 s in the " in chosen
    assert timed_depths == [1, 1]
    # The rival's XLA for the timing, then the two-block model's, handed on.
    assert result.completed and settings == [True, True]
    assert first_depth(result.model) == 2


@ONCE
def test_a_time_budget_trains_until_it_is_spent(tmp_path, capsys):
    budget = 0.2
    start = time.monotonic()
    settings = {**TINY, "verbose": 2}
    result = kd.training.train(tmp_path / "run", minutes=budget, **settings)
    trained = time.monotonic() - start
    out = capsys.readouterr().out
    assert result.completed, result.message
    assert "Time budget: 0.2 min, training until it is spent." in out
    # Epoch lines without the nominal count that only caps the run.
    assert "Epoch 2 (until the time budget is spent)" in out
    assert "Epoch 2/" not in out
    # No step count is planned: the time limit alone ends
    # the run (a tiny model runs many epochs in it), and the final pictures
    # come after it.
    assert trained >= 60 * budget
    assert len(result.history["loss"]) > 1
    assert os.path.isfile(result.checkpoint)
    # The guide: the model at the first epoch end after half the budget.
    guide = keras.saving.load_model(tmp_path / "run" / "guide.keras")
    step = int(guide.optimizer.iterations.numpy())
    # Near half of the run's steps (epochs are short: the bounds are loose).
    assert 0.2 < step / int(result.model.optimizer.iterations.numpy()) < 0.9
    assert f"autoguidance 5 by step {step}" in out


@ONCE
def test_the_guide_is_half_way_kept_on_resume_and_dropped_by_a_new_run(
    tmp_path, capsys
):
    out = tmp_path / "run"

    def guide_step():
        guide = keras.saving.load_model(out / "guide.keras")
        return int(guide.optimizer.iterations.numpy())

    # 3 epochs of 4 steps: the first epoch end past 6 steps is at step 8.
    result = kd.training.train(out, epochs=3, guide_interval=(10, 40), **TINY)
    assert str(out / "guide.keras") in result.files and guide_step() == 8
    assert "autoguidance 5 by step 8 at timesteps 10-40" in capsys.readouterr().out
    # A resumed run keeps its checkpoint's network and objective: settings
    # given other than the checkpoint's are refused, naming them, before
    # anything is written; those given as the checkpoint has them (TINY's)
    # are not.
    saved = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    with pytest.raises(ValueError, match=r"must lie in \[1, 50\] \(at most the che"):
        kd.training.train(out, epochs=4, resume=True, **{**TINY, "sample_steps": 60})
    changed = dict(attention_levels=(5,), ema_momentum=0.9, prediction="epsilon")
    with pytest.raises(ValueError) as raised:
        kd.training.train(out, epochs=4, resume=True, **changed, **TINY)
    assert str(raised.value) == (
        "A resumed run keeps the `attention_levels`, `prediction` and "
        f"`ema_momentum` of the checkpoints in {out / 'checkpoints'} (0 1, not 5; "
        "v, not epsilon; 0.995, not 0.9): drop them to resume, or start a new run "
        "with `overwrite` or another `output_dir`."
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == saved
    # Resumed to 4 epochs: half (8 steps) was done before, so the guide stays.
    # The block depth given is checked against the checkpoint's two levels,
    # not the three of the default widths, which are not given.
    unwidened = {name: value for name, value in TINY.items() if name != "widths"}
    kd.training.train(out, epochs=4, resume=True, **unwidened)
    assert "autoguidance 5 by step 8" in capsys.readouterr().out
    assert guide_step() == 8
    # A new run into the folder is refused before anything is written.
    saved = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    with pytest.raises(ValueError, match=r"already holds a run \(model.keras and"):
        kd.training.train(out, epochs=1, **TINY)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == saved
    # A replacing run that fails before training leaves the old run whole.
    with pytest.raises(ValueError, match="Unknown dataset"):
        kd.training.train(out, overwrite=True, **{**TINY, "dataset": "no_such_xyz"})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == saved
    # Resuming at another image size names the checkpoints' size.
    with pytest.raises(ValueError, match=r"of a 8x8 model: resume with `image_size`=8"):
        kd.training.train(out, epochs=5, resume=True, **{**TINY, "image_size": 16})
    # Replaced, without autoguidance: the old guide and checkpoints go, and
    # the new run's checkpoint is the newest (the old ones counted more steps).
    result = kd.training.train(out, epochs=1, guide_scale=1.0, overwrite=True, **TINY)
    assert result.completed and not (out / "guide.keras").exists()
    assert "autoguidance" not in capsys.readouterr().out
    kept = kd.callbacks.list_checkpoints(out / "checkpoints")
    assert [step for _, _, step in kept] == [4]


@ONCE
def test_a_time_budget_validates_on_a_few_cached_batches_without_warnings(
    tmp_path, capfd
):
    # The warning below is TensorFlow's: the check means nothing where its
    # warnings are filtered out.
    if int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) >= 2:
        pytest.skip("TF_CPP_MIN_LOG_LEVEL hides the warning this test looks for")
    # 80 validation images: 10 batches, more than the budget's 8.
    settings = {**TINY, "num_images": 400}
    # Long enough for two epochs of 40 batches on a slow backend.
    result = kd.training.train(tmp_path / "run", minutes=0.25, **settings)
    assert result.completed, result.message
    assert len(result.history["val_loss"]) > 1
    # TensorFlow warns (on stderr, at every epoch) when a cache is read in part.
    assert "did not fully read the dataset being cached" not in capfd.readouterr().err


class LastBatchClock(keras.callbacks.Callback):
    """When, into `fit`, the last batch (or call of several) began."""

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_begin(self, batch, logs=None):
        self.last = time.monotonic() - self.start


@ONCE
def test_a_time_budget_decays_the_cosine_along_its_clock(tmp_path, capsys, monkeypatch):
    runs = []  # (the recipe's BudgetCosineDecay and TimeLimit, a LastBatchClock)
    fit = kd.DiffusionModel.fit

    def clocked_fit(self, *args, callbacks=None, **kwargs):
        clock = LastBatchClock()
        decays = [c for c in callbacks if isinstance(c, kd.callbacks.BudgetCosineDecay)]
        limits = [c for c in callbacks if isinstance(c, kd.callbacks.TimeLimit)]
        runs.append((*decays, *limits, clock))
        return fit(self, *args, callbacks=[*callbacks, clock], **kwargs)

    monkeypatch.setattr(kd.DiffusionModel, "fit", clocked_fit)

    def check_rate(result):
        # The rate is the cosine at the clock of the last batch's start, up to
        # the callback's resolution (0.005 of the peak), and the time limit
        # ended the run late along that clock. Timing the last batch, not the
        # budget's end, keeps this true on a loaded machine.
        decay, limit, clock = runs[-1]
        assert decay.learning_rate == 1e-2 and decay.minutes == limit.minutes
        fraction = min(clock.last / (60.0 * decay.minutes), 1.0)
        assert fraction > 0.5
        expected = 1e-2 * 0.5 * (1.0 + math.cos(math.pi * fraction))
        rate = float(keras.ops.convert_to_numpy(result.model.optimizer.learning_rate))
        assert abs(rate - expected) <= 0.005 * 1e-2 + 1e-7

    result = kd.training.train(
        tmp_path / "run",
        minutes=0.2,
        learning_rate=1e-2,
        learning_rate_schedule="cosine",
        warmup_steps=2,
        **TINY,
    )
    out = capsys.readouterr().out
    assert result.completed, result.message
    assert "Time budget: 0.2 min, training until it is spent." in out
    # The time limit ended the run (a tiny model runs many epochs in it).
    assert len(result.history["loss"]) > 1
    check_rate(result)
    # Resumed with a new budget, the decay runs over it again, from the peak.
    again = kd.training.train(
        tmp_path / "run",
        minutes=0.1,
        resume=True,
        learning_rate=1e-2,
        learning_rate_schedule="cosine",
        **TINY,
    )
    assert again.completed and len(again.history["loss"]) > len(result.history["loss"])
    assert len(runs) == 2 and runs[1][0].minutes <= 0.1
    check_rate(again)


@ONCE
def test_resume_with_a_budget_continues_until_the_time_is_spent(tmp_path):
    kd.training.train(tmp_path / "run", epochs=1, **TINY)
    result = kd.training.train(tmp_path / "run", minutes=0.1, resume=True, **TINY)
    assert result.completed and len(result.history["loss"]) >= 2


@ONCE
def test_a_conditional_run_learns_the_dataset_classes(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "run"
    # A budget with the cosine schedule decays along its clock on (images, labels).
    result = kd.training.train(
        out,
        conditional=True,
        label_dropout=0.2,
        minutes=0.1,
        learning_rate_schedule="cosine",
        **TINY,
    )
    assert result.completed, result.message
    model = result.model
    assert model.num_classes == 6 and model.label_dropout == 0.2
    assert list(model.class_names) == list(kd.datasets.FLOWER_COLOURS)
    names = {os.path.basename(path) for path in result.files}
    assert {"classes.png", "samples.png", "model.keras"} <= names
    with Image.open(out / "classes.png") as grid:  # 6 rows of 8, at scale 2
        assert grid.size == (2 * (8 * 8 + 9 * 2), 2 * (6 * 8 + 7 * 2))
    loaded = keras.saving.load_model(out / "model.keras")
    assert list(loaded.class_names) == list(kd.datasets.FLOWER_COLOURS)
    with pytest.raises(ValueError, match="class-conditional model: resume with"):
        kd.training.train(out, epochs=2, resume=True, **TINY)


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"conditional": "yes"}, "`conditional` must be True or False"),
        ({"label_dropout": 1.0}, r"`label_dropout` must lie in \[0, 1\)"),
        ({"guidance_scale": float("inf")}, "`guidance_scale` must be finite"),
        (
            {"guidance_scale": 3.0},
            "^`guidance_scale` applies only to a run with `conditional` ",
        ),
        (
            {"label_dropout": 0.2, "guidance_scale": 3.0},
            "^`label_dropout` and `guidance_scale` apply only to a run with",
        ),
        (
            {"conditional": True, "guide_scale": 2.5},
            r"^`guide_scale` \(autoguidance\) applies only to a run without",
        ),
    ],
)
def test_conditional_arguments_are_checked(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        kd.training.train(tmp_path, **arguments)
