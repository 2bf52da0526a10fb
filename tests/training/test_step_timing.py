"""`kd.training.step_timing`: the recipe's step timed in child processes."""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_ddpm.training import recipe, step_timing
from tests.test_training import TINY as RUN

# The children always run TensorFlow: their tests run in its job only.
TENSORFLOW = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the children time TensorFlow's step: tested once, under TensorFlow",
)

TINY = dict(
    recipe._timing_architecture(
        {
            name: recipe.DEFAULTS[name]
            for name in (
                "widths",
                "attention_levels",
                "zero_init_residual",
                "scale_shift",
                "zero_init_attention",
                "patch_size",
                "schedule",
                "timesteps",
                "prediction",
                "beta_2",
                "weight_decay",
                "global_clipnorm",
                "min_snr_gamma",
                "noise_levels",
                "ema_momentum",
                "sampler",
                "seed",
                "label_dropout",
            )
        }
        | {"block_depth": 1, "classes": None}
    ),
    widths=[8, 16],
    timesteps=50,
)


def test_the_timing_architecture_is_json_and_unconditional():
    architecture = recipe._timing_architecture(
        dict(TINY, widths=(8, 16), attention_levels=range(1, 2), classes=["a", "b"])
    )
    assert architecture["widths"] == [8, 16]
    assert architecture["attention_levels"] == [1]
    assert architecture["classes"] is None
    assert json.loads(json.dumps(architecture)) == architecture
    model = recipe._new_model(8, learning_rate=0.0, **architecture)
    assert model.network.count_params() > 0


@pytest.mark.parametrize(
    "line,expected",
    [
        ("step_timing ready\n", "ready"),
        ("step_timing 0.05\n", 0.05),
        ("step_timing 5e-3", 0.005),
        ("", None),
        ("step_timing\n", None),
        ("step_timing fast\n", None),
        ("step_timing -1.0\n", None),
        ("step_timing 0\n", None),
        ("step_timing nan\n", None),
        ("step_timing inf\n", None),
        ("step_timing 0.05 0.06\n", None),
        ("timing 0.05\n", None),
    ],
)
def test_only_a_protocol_line_of_ready_or_positive_seconds_is_an_answer(line, expected):
    assert step_timing._parse(line) == expected


def _choose_with(
    monkeypatch, timed, failures=None, jit_compile="auto", batch_size=4, **options
):
    """`choose` over a stand-in for the children; what it asked them and set."""
    asked, set_to = [], []

    def measure(image_size, batch_size, architecture, settings, timeout):
        asked.append(settings)
        return dict(timed), dict(failures or {})

    monkeypatch.setattr(step_timing, "measure", measure)
    monkeypatch.setattr(step_timing, "tensorflow_started", lambda: False)
    monkeypatch.setattr(step_timing, "_has_gpu", lambda: False)
    monkeypatch.setattr(step_timing, "set_intra_op_threads", set_to.append)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    architecture = options.get("architecture", TINY)
    choice = step_timing.choose(8, batch_size, architecture, jit_compile, timeout=60)
    return choice, asked, set_to


@TENSORFLOW
def test_the_fastest_setting_is_chosen_and_one_thread_is_set(monkeypatch, capsys):
    timed = {(None, False): 0.06, (None, True): 0.05, (1, False): 0.04}
    choice, asked, set_to = _choose_with(monkeypatch, timed)
    assert asked == [{None: [False, True], 1: [False]}]
    assert choice == step_timing.Choice(1, False, 0.04)
    assert set_to == [1]
    line = capsys.readouterr().out.strip()
    assert line.startswith("Train step on this CPU (timed in child processes, ")
    assert line.endswith(
        "0.060 s TensorFlow's default threads, no XLA, 0.050 s TensorFlow's "
        "default threads, XLA, 0.040 s 1 thread per operation, no XLA -> "
        "1 thread per operation, no XLA."
    )
    # The default threads winning set nothing.
    timed[(None, True)] = 0.03
    choice, asked, set_to = _choose_with(monkeypatch, timed, batch_size=8)
    assert choice == step_timing.Choice(None, True, 0.03) and set_to == []
    # Without XLA asked for, only the graph is timed.
    choice, asked, set_to = _choose_with(
        monkeypatch, {(None, False): 0.06, (1, False): 0.07}, jit_compile=False
    )
    assert asked == [{None: [False], 1: [False]}]
    assert choice == step_timing.Choice(None, False, 0.06)


@TENSORFLOW
def test_the_times_are_cached_per_configuration(monkeypatch, capsys):
    timed = {(None, False): 0.06, (None, True): 0.05, (1, False): 0.04}
    first, asked, _ = _choose_with(monkeypatch, timed)
    assert len(asked) == 1
    with open(step_timing.cache_path()) as file:
        (entry,) = json.load(file).values()
    assert entry["timed"] == [[None, False, 0.06], [None, True, 0.05], [1, False, 0.04]]
    capsys.readouterr()
    # The same configuration: read, not timed; the same choice and threads.
    again, asked, set_to = _choose_with(monkeypatch, {})
    assert asked == [] and again == first and set_to == [1]
    line = capsys.readouterr().out
    assert f"(timed in child processes on {entry['date']}, read from " in line
    assert line.strip().endswith("-> 1 thread per operation, no XLA.")
    # A seed of its own is the same step: read, not timed.
    again, asked, _ = _choose_with(
        monkeypatch, {}, architecture=dict(TINY, seed=7, sampler="ddim")
    )
    assert asked == [] and again == first
    # Another batch size (or network, machine, version) is timed again.
    other, asked, _ = _choose_with(monkeypatch, {(None, False): 0.02}, batch_size=8)
    assert len(asked) == 1 and other == step_timing.Choice(None, False, 0.02)
    with open(step_timing.cache_path()) as file:
        assert len(json.load(file)) == 2
    # An unreadable file is said and replaced; an unwritable place is said.
    with open(step_timing.cache_path(), "w") as file:
        file.write("{not json")
    capsys.readouterr()
    choice, asked, _ = _choose_with(monkeypatch, timed)
    assert len(asked) == 1 and choice == first
    assert "Ignoring the unreadable cache" in capsys.readouterr().out
    with open(step_timing.cache_path()) as file:
        assert len(json.load(file)) == 1
    os.remove(step_timing.cache_path())
    os.rmdir(os.path.dirname(step_timing.cache_path()))
    with open(os.path.dirname(step_timing.cache_path()), "w"):
        pass  # a file where the folder should be
    choice, asked, _ = _choose_with(monkeypatch, timed)
    assert len(asked) == 1 and choice == first
    assert "Could not keep the times in" in capsys.readouterr().out


@TENSORFLOW
def test_a_failed_child_leaves_the_default_and_says_why(monkeypatch, capsys):
    choice, _, set_to = _choose_with(
        monkeypatch, {}, failures={(1, False): "no result within 9 s"}
    )
    assert choice is None and set_to == []
    assert capsys.readouterr().out.strip() == (
        "Could not time the train step in a child process (1 thread per "
        "operation, no XLA: no result within 9 s)."
    )


def test_nothing_is_timed_where_the_threads_are_not_ours_to_choose(monkeypatch):
    def measure(*args):
        raise AssertionError("timed")

    monkeypatch.setattr(step_timing, "measure", measure)
    monkeypatch.setattr(step_timing, "tensorflow_started", lambda: False)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    if keras.backend.backend() != "tensorflow":  # other backends' threads
        assert step_timing.choose(8, 4, TINY, "auto") is None
        return
    assert step_timing.choose(8, 4, TINY, True) is None  # XLA needs the threads
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")  # the user's own
    assert step_timing.choose(8, 4, TINY, "auto") is None
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS")
    monkeypatch.setattr(step_timing, "tensorflow_started", lambda: True)
    assert step_timing.choose(8, 4, TINY, "auto") is None  # too late


@TENSORFLOW
def test_threads_cannot_change_once_tensorflow_runs():
    import tensorflow as tf

    tf.constant(1.0)  # started
    assert step_timing.tensorflow_started()
    current = tf.config.threading.get_intra_op_parallelism_threads()
    step_timing.set_intra_op_threads(current)  # no change: allowed
    with pytest.raises(ValueError, match="not started yet"):
        step_timing.set_intra_op_threads(current + 1)


@TENSORFLOW
def test_children_time_the_step_side_by_side_and_report_failures():
    timed, failures = step_timing.measure(
        np.int64(8),
        4,
        dict(TINY, timesteps=np.int64(50)),
        {None: [False], 1: [False]},
        300,
    )
    assert failures == {}
    assert set(timed) == {(None, False), (1, False)}
    assert all(0 < seconds < 10 for seconds in timed.values())
    # A child that fails, or takes too long, is a reason, not an exception,
    # and then nothing is timed.
    timed, failures = step_timing.measure(
        8, 4, dict(TINY, widths=[8, 0]), {None: [False]}, 300
    )
    assert timed == {} and list(failures) == [(None, False)]
    assert failures[(None, False)].startswith("exit status 1: ValueError")
    timed, failures = step_timing.measure(8, 4, TINY, {1: [False]}, timeout=0.01)
    assert timed == {} and failures == {(1, False): "no result within 0.01 s"}


def _script_child(monkeypatch, script):
    """Make `measure`'s children run `script` (Python) instead of the timing."""
    monkeypatch.setattr(step_timing, "CHILD_COMMAND", script)


@TENSORFLOW
@pytest.mark.parametrize(
    "script,reason",
    [
        ("import sys; sys.stdin.readline()", "no result line"),
        (
            "import sys; print('step_timing 0.1', flush=True); sys.stdin.read()",
            "unexpected answer: step_timing 0.1",
        ),
        (
            "import sys; print('step_timing ready', flush=True); "
            "sys.stdin.readline(); print('step_timing ready', flush=True); "
            "sys.stdin.read()",
            "unexpected answer: step_timing ready",
        ),
        (
            "import sys; print('step_timing ready', flush=True); "
            "sys.stdin.readline(); print('step_timing 0', flush=True); "
            "sys.stdin.read()",
            "unexpected answer: step_timing 0",
        ),
        (
            "import sys; sys.exit('bad configuration')",
            "exit status 1: bad configuration",
        ),
    ],
)
def test_a_child_that_breaks_the_protocol_is_a_reason(monkeypatch, script, reason):
    _script_child(monkeypatch, script)
    timed, failures = step_timing.measure(8, 4, TINY, {1: [False]}, 60)
    assert timed == {} and failures == {(1, False): reason}


@TENSORFLOW
def test_the_first_child_to_fail_is_heard_at_once(monkeypatch):
    # The default-threads child says nothing until the deadline; the
    # one-thread child fails at once, and its reason is the one reported.
    script = (
        "import json, sys\n"
        "config = json.loads(sys.stdin.readline())\n"
        "if config['threads'] == 1:\n"
        "    sys.exit('no kernel')\n"
        "sys.stdin.read()\n"
    )
    _script_child(monkeypatch, script)
    began = time.monotonic()
    timed, failures = step_timing.measure(8, 4, TINY, {None: [False], 1: [False]}, 60)
    assert timed == {} and failures == {(1, False): "exit status 1: no kernel"}
    assert time.monotonic() - began < 30


@TENSORFLOW
def test_a_second_ready_is_a_reason(monkeypatch):
    # The default-threads child says it is ready twice while the XLA one is
    # still getting there.
    script = (
        "import json, sys, time\n"
        "config = json.loads(sys.stdin.readline())\n"
        "if config['jit_compile']:\n"
        "    time.sleep(1.0)\n"
        "else:\n"
        "    print('step_timing ready', flush=True)\n"
        "print('step_timing ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    _script_child(monkeypatch, script)
    timed, failures = step_timing.measure(8, 4, TINY, {None: [False, True]}, 60)
    assert timed == {}
    assert failures == {(None, False): "unexpected answer: step_timing ready"}


@TENSORFLOW
def test_children_are_timed_in_turns_and_their_median_kept(monkeypatch, tmp_path):
    # Stand-in children log when they are ready and when each timing starts
    # and ends, and answer their own sequences of seconds; messages of their
    # own on stdout are skipped. The XLA one gets ready a second late.
    log = str(tmp_path / "log")
    script = (
        "import json, sys, time\n"
        "config = json.loads(sys.stdin.readline())\n"
        "name = f\"{config['threads']}-{config['jit_compile']}\"\n"
        f"log = open({log!r}, 'a')\n"
        "def say(what):\n"
        "    log.write(what + ' ' + name + '\\n')\n"
        "    log.flush()\n"
        "if config['jit_compile']:\n"
        "    time.sleep(1.0)\n"
        "say('ready')\n"
        "print('a message of its own', flush=True)\n"
        "print('step_timing ready', flush=True)\n"
        "seconds = iter([0.3, 0.1, 0.11, 0.5, 0.12] if config['jit_compile']\n"
        "               else [0.5, 0.6, 0.4, 0.9, 0.45])\n"
        "while sys.stdin.readline().strip() == 'time':\n"
        "    say('start')\n"
        "    time.sleep(0.05)\n"
        "    say('end')\n"
        "    print('step_timing', next(seconds), flush=True)\n"
    )
    _script_child(monkeypatch, script)
    # Five rounds: one more step than four calls.
    monkeypatch.setattr(recipe, "JIT_TIMED_STEPS", 4 * recipe.STEPS_PER_EXECUTION + 1)
    timed, failures = step_timing.measure(8, 4, TINY, {None: [False, True]}, 60)
    assert failures == {}
    # Medians (the means would be 0.57 and 0.226).
    assert timed == {(None, False): 0.5, (None, True): 0.12}
    lines = (tmp_path / "log").read_text().splitlines()
    # Nobody times before every child is ready, and one at a time, in turns.
    assert lines[:2] == ["ready None-False", "ready None-True"]
    turn = ["start None-False", "end None-False", "start None-True", "end None-True"]
    assert lines[2:] == turn * 5


@TENSORFLOW
def test_the_recipe_trains_as_the_children_measured(tmp_path, monkeypatch, capsys):
    import keras_ddpm as kd

    monkeypatch.setattr(
        step_timing, "choose", lambda *args: step_timing.Choice(None, False, 0.123)
    )

    def in_process(*args):
        raise AssertionError("timed again in this process")

    monkeypatch.setattr(recipe, "_faster", in_process)
    monkeypatch.setattr(recipe, "_fit_step_seconds", in_process)
    result = kd.training.train(tmp_path / "run", epochs=1, warmup_steps=2, **RUN)
    assert result.completed, result.message
    # No timing steps: the epoch's 4 batches alone, the cosine ending at 0.
    optimizer = result.model.optimizer
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 4
    assert float(optimizer._learning_rate(4)) == pytest.approx(0.0, abs=1e-9)
    # Under a budget, the children's step decides the depth.
    monkeypatch.setattr(recipe, "AUTO_DEPTH_STEPS", 0)
    capsys.readouterr()
    result = kd.training.train(
        tmp_path / "auto", **{**RUN, "block_depth": "auto", "minutes": 0.1}
    )
    assert "one-block steps of 0.123 s in the " in capsys.readouterr().out
    assert result.model.network.get_layer("down_0").block_depth == 2


@TENSORFLOW
@pytest.mark.slow
def test_a_fresh_process_trains_with_the_setting_its_children_chose(tmp_path):
    script = (
        "import keras, tensorflow as tf, keras_ddpm as kd\n"
        f"result = kd.training.train({str(tmp_path / 'run')!r}, image_size=8,"
        " num_images=40, batch_size=8, widths=(8, 16), block_depth=1,"
        " timesteps=50, sample_steps=3, verbose=0, epochs=1)\n"
        "print('threads', tf.config.threading.get_intra_op_parallelism_threads())\n"
        "print('xla', result.model.jit_compile, result.completed)\n"
    )
    environment = dict(os.environ, KERAS_BACKEND="tensorflow")
    environment.pop("TF_NUM_INTRAOP_THREADS", None)
    child = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=900,
        env=environment,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    lines = child.stdout.splitlines()
    timed = next(line for line in lines if line.startswith("Train step on this CPU"))
    assert "(timed in child processes" in timed
    chose_one_thread = timed.endswith("-> 1 thread per operation, no XLA.")
    assert ("threads 1" in lines) == chose_one_thread
    assert "xla False True" in lines  # sampling and the saved model: no XLA
