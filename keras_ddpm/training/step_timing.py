"""The recipe's training step timed in child processes, one per setting.

TensorFlow fixes the size of its intra-operation thread pool when its runtime
starts, so a process can time its training step with one setting only. The
recipe (`kd.training.train`, `intra_op_threads="auto"`) therefore times the
network it is about to train in a child process per setting, before its own
TensorFlow starts, and starts with the faster one. The children train on
random images of the run's shape: the step's time does not depend on what
the images show.

`measure` starts one child per setting (thread count and XLA or not), all at
once: building, tracing and compiling run mostly on one core each, so the
children share the cores for that part. Then it asks them, one at a time and
in rounds, to time their step, so that no two time at once. A child reads
its configuration as a JSON line on stdin, says `step_timing ready` once
its step is compiled, and answers each `time` line on stdin with
`step_timing <seconds per step>`.

The times are kept in a cache file (`cache_path()`), one entry per machine
(its CPU and the cores this process may use), library versions and
configuration: a later run of the same configuration on the same machine
reads them instead of timing again. Delete the file to time again.
"""

import collections
import datetime
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time

import keras
import numpy as np

from keras_ddpm.utils import atomic_path
from keras_ddpm.version import __version__

# Seconds the children may take in all (a build, a trace and compile each, and
# the timed steps) before the timing is given up.
CHILD_TIMEOUT = 600
# The first word of the children's own lines on stdout (other lines, such as
# a library's messages, are skipped).
PROTOCOL = "step_timing"
# The images of the timed steps have this many channels (the recipe's
# datasets are RGB).
CHANNELS = 3
# How a child starts (not `-m`: the package imports this module first).
CHILD_COMMAND = "from keras_ddpm.training.step_timing import _main; _main()"
# The variables that change TensorFlow's speed: part of a cached time's key.
SPEED_VARIABLES = (
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "XLA_FLAGS",
)
# The architecture's entries that do not change a step's time: not in the key.
TIMELESS = ("seed", "sampler", "ema_momentum", "label_dropout")


Choice = collections.namedtuple("Choice", ["threads", "jit_compile", "seconds"])
Choice.__doc__ = """The measured setting: `intra_op_threads` (None: TensorFlow's
default), `jit_compile` and its seconds per training step."""


def tensorflow_started():
    """Whether this process's TensorFlow runtime has started (threads now fixed)."""
    from tensorflow.python.eager import context

    return getattr(context.context(), "_context_handle", True) is not None


def set_intra_op_threads(threads):
    """Give TensorFlow `threads` threads per operation; it must not have started.

    Raises:
        ValueError: if TensorFlow has started with another setting.
    """
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    if tensorflow_started():
        raise ValueError(
            f"`intra_op_threads`={threads} needs a process whose TensorFlow has "
            "not started yet (it fixes its threads when it runs its first "
            "operation): call `train` before any other TensorFlow work."
        )
    tf.config.threading.set_intra_op_parallelism_threads(threads)


def cache_path():
    """The cache file of the times: `$XDG_CACHE_HOME/keras-ddpm/step_timing.json`.

    `XDG_CACHE_HOME` defaults to `~/.cache`. Each entry holds the times of
    one configuration on one machine (CPU model and usable cores), with the
    TensorFlow, Keras and keras-ddpm versions and the variables that change
    TensorFlow's speed (`SPEED_VARIABLES`). Delete the file to time again,
    say after the machine's load has changed for good.

    Returns:
        The file's path (it may not exist yet).

    Example:

    ```python
    from keras_ddpm.training import step_timing

    step_timing.cache_path()  # '/home/me/.cache/keras-ddpm/step_timing.json'
    ```
    """
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(root, "keras-ddpm", "step_timing.json")


def _machine():
    """The CPU's model name and the cores this process may use."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count()
    return f"{name}, {cores} cores"


def _cache_key(config):
    """The cache's key of `config`: with the machine, versions and variables."""
    import tensorflow as tf

    architecture = {
        name: value
        for name, value in config["architecture"].items()
        if name not in TIMELESS
    }
    return json.dumps(
        dict(
            config,
            architecture=architecture,
            machine=_machine(),
            versions=[tf.__version__, keras.__version__, __version__],
            variables={name: os.environ.get(name) for name in SPEED_VARIABLES},
        ),
        sort_keys=True,
        default=_plain,
    )


def _read_cache():
    """The cache file's entries, `{}` where it is missing or unreadable."""
    try:
        with open(cache_path(), encoding="utf-8") as file:
            entries = json.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        print(f"Ignoring the unreadable cache {cache_path()}: {error}")
        return {}
    return entries if isinstance(entries, dict) else {}


def _cached(entry):
    """A cache entry's `{(threads, jit): seconds}` and date, or None if unusable."""
    try:
        timed = {
            (threads, bool(jit)): float(seconds)
            for threads, jit, seconds in entry["timed"]
            if (threads is None or (type(threads) is int and threads >= 1))
            and seconds > 0
        }
        return (timed, str(entry["date"])) if timed else None
    except (TypeError, KeyError, ValueError):
        return None


def _store(entries, key, timed):
    """Write the cache file: `entries` (as read) with `key`'s times; a line says
    so if it cannot."""
    entries = dict(entries)
    entries[key] = {
        "timed": [[threads, jit, seconds] for (threads, jit), seconds in timed.items()],
        "date": datetime.date.today().isoformat(),
    }
    try:
        with atomic_path(cache_path()) as temporary:
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump(entries, file, indent=1)
    except OSError as error:
        print(f"Could not keep the times in {cache_path()}: {error}")


def choose(image_size, batch_size, architecture, jit_compile, timeout=CHILD_TIMEOUT):
    """The faster thread setting for the recipe's step on this TensorFlow CPU.

    Times, in child processes (`measure`), the step with TensorFlow's default
    threads (with and without XLA for `jit_compile="auto"`) and with one
    thread per operation (without XLA, which needs the threads), prints what
    it found, and gives this process the faster setting. The times are kept
    in `cache_path()`: the same configuration on the same machine (CPU,
    usable cores, TensorFlow, Keras and keras-ddpm versions) reads them
    instead of timing again. Only for a process
    whose TensorFlow has not started, on a CPU, where the user set neither
    `TF_NUM_INTRAOP_THREADS` nor `jit_compile=True`; otherwise returns None
    without timing anything.

    Args:
        image_size: int, the images' height and width.
        batch_size: int, images per step.
        architecture: dict, the recipe's model builder's arguments other
            than the image size and learning rate, as JSON values.
        jit_compile: `"auto"` (time with and without XLA) or False.
        timeout: float, seconds the children may take in all.

    Returns:
        A `Choice`, or None where nothing was timed or a child failed (a line
        says which; TensorFlow then keeps its default).

    Example:

    ```python
    import keras_ddpm as kd

    # In a fresh process, TensorFlow on a CPU: `train` calls `choose` with
    # its network before reading the data, then trains with the choice.
    kd.training.train("runs/flowers", minutes=8.5)
    # Train step on this CPU (timed in child processes, 37 s): 0.053 s
    # TensorFlow's default threads, no XLA, ... -> 1 thread per operation, no XLA.
    ```
    """
    if (
        keras.backend.backend() != "tensorflow"
        or jit_compile is True
        or "TF_NUM_INTRAOP_THREADS" in os.environ
        or tensorflow_started()
    ):
        return None
    if _has_gpu():
        return None
    jits = [False, True] if jit_compile == "auto" else [False]
    settings = {None: jits, 1: [False]}
    key = _cache_key(
        dict(
            image_size=image_size,
            batch_size=batch_size,
            architecture=architecture,
            settings=list(settings.items()),
        )
    )
    entries = _read_cache()
    cached = _cached(entries.get(key))
    if cached is not None:
        timed, date = cached
        how = f"timed in child processes on {date}, read from {cache_path()}"
    else:
        began = time.monotonic()
        timed, failures = measure(
            image_size, batch_size, architecture, settings, timeout
        )
        if failures:
            reasons = "; ".join(
                f"{_describe(*setting)}: {reason}"
                for setting, reason in failures.items()
            )
            print(f"Could not time the train step in a child process ({reasons}).")
            return None
        _store(entries, key, timed)
        how = f"timed in child processes, {time.monotonic() - began:.0f} s"
    best = min(timed, key=timed.get)
    steps = ", ".join(
        f"{seconds:.3f} s {_describe(*setting)}" for setting, seconds in timed.items()
    )
    print(f"Train step on this CPU ({how}): {steps} -> {_describe(*best)}.")
    if best[0] is not None:
        set_intra_op_threads(best[0])
    return Choice(best[0], best[1], timed[best])


def _has_gpu():
    """Whether TensorFlow sees a GPU (asked without starting its runtime)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _describe(threads, jit=None):
    """`"1 thread per operation, no XLA"` and the like, for the printed lines."""
    words = [
        "TensorFlow's default threads"
        if threads is None
        else f"{threads} thread{'s' if threads > 1 else ''} per operation"
    ]
    if jit is not None:
        words.append("XLA" if jit else "no XLA")
    return ", ".join(words)


def measure(image_size, batch_size, architecture, settings, timeout=CHILD_TIMEOUT):
    """Time the recipe's training step in one child process per setting.

    The children start together and build, trace and compile side by side;
    then each times one call of its train function (`STEPS_PER_EXECUTION`
    steps) in turn, round after round, while the others wait, until each has
    timed at least `JIT_TIMED_STEPS` steps. A child's time is the median of
    its rounds. The children are killed at the end.

    Args:
        image_size: int, the images' height and width.
        batch_size: int, images per step.
        architecture: dict, the keyword arguments of the recipe's model
            builder other than the image size and learning rate (JSON values).
        settings: dict, `{intra_op_threads: [jit_compile, ...]}`, where
            `intra_op_threads` is None (TensorFlow's default) or an int; each
            pair is timed in a child of its own.
        timeout: float, seconds the children may take in all.

    Returns:
        A tuple `(timed, failures)`: `timed` maps `(intra_op_threads,
        jit_compile)` to seconds per step; `failures` maps the first pair
        whose child failed (or did not answer in time) to a one-line reason,
        and then nothing is timed.
    """
    from keras_ddpm.training import recipe

    pairs = list(
        dict.fromkeys(
            (threads, bool(jit)) for threads, jits in settings.items() for jit in jits
        )
    )
    config = {
        "image_size": int(image_size),
        "batch_size": int(batch_size),
        "architecture": architecture,
    }
    # Written before any child starts: a value JSON cannot take starts none.
    requests = {
        pair: json.dumps(
            dict(config, threads=pair[0], jit_compile=pair[1]), default=_plain
        )
        for pair in pairs
    }
    talk = _Talk(time.monotonic() + timeout, timeout)
    try:
        for pair in pairs:
            talk.start(pair, requests[pair])
        waiting = list(pairs)
        while waiting:  # in the order they get there
            pair, answer, line = talk.next_answer(waiting)
            if answer != "ready" or pair not in waiting:
                raise _Failed(pair, f"unexpected answer: {line}")
            waiting.remove(pair)
        times = {pair: [] for pair in pairs}
        for _ in range(recipe._timed_calls(recipe.STEPS_PER_EXECUTION)):
            for pair in pairs:
                talk.send(pair, "time")
                answered, seconds, line = talk.next_answer([pair])
                if answered != pair or seconds == "ready":
                    raise _Failed(answered, f"unexpected answer: {line}")
                times[pair].append(seconds)
        return {pair: float(np.median(times[pair])) for pair in pairs}, {}
    except _Failed as failure:
        return {}, {failure.pair: failure.reason}
    finally:
        talk.close()


class _Failed(Exception):
    """A child that failed: its setting and a one-line reason."""

    def __init__(self, pair, reason):
        super().__init__(reason)
        self.pair, self.reason = pair, reason


class _Talk:
    """The child processes of `measure`, spoken to line by line.

    A thread per child reads its stdout into one queue of `(setting, line)`
    (`(setting, None)` at its end), so that whichever child answers or fails
    first is heard first.
    """

    def __init__(self, deadline, timeout):
        self.deadline, self.timeout = deadline, timeout
        self.lines = queue.Queue()
        self.processes, self.stderr = {}, {}
        self.environment = dict(os.environ, KERAS_BACKEND="tensorflow")
        # The children import this copy of the library, wherever it lies.
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        package_folder = os.path.dirname(package)  # the folder holding keras_ddpm
        self.environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_folder, self.environment.get("PYTHONPATH")])
        )

    def start(self, pair, request):
        """Start the child of setting `pair` and send it `request`."""
        try:
            # A file, not a pipe: TensorFlow's messages could fill a pipe
            # nobody reads and stall the child.
            self.stderr[pair] = tempfile.TemporaryFile("w+", errors="replace")
            self.processes[pair] = subprocess.Popen(
                [sys.executable, "-c", CHILD_COMMAND],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr[pair],
                text=True,
                errors="replace",
                bufsize=1,
                env=self.environment,
            )
            threading.Thread(target=self._read, args=(pair,), daemon=True).start()
        except (OSError, RuntimeError) as error:  # RuntimeError: no new thread
            raise _Failed(pair, f"could not start: {error}") from None
        self.send(pair, request)

    def _read(self, pair):
        stdout = self.processes[pair].stdout
        try:
            with stdout:
                for line in stdout:
                    self.lines.put((pair, line))
        finally:
            self.lines.put((pair, None))  # the end of its output

    def send(self, pair, line):
        """Send `line` to the child of `pair` (one that has exited is heard of later)."""
        try:
            self.processes[pair].stdin.write(line + "\n")
            self.processes[pair].stdin.flush()
        except OSError:
            pass

    def next_answer(self, waiting):
        """The next protocol line of any child: `(setting, "ready" or seconds, line)`.

        Other lines are skipped.

        Raises:
            _Failed: for a child that ends or answers what `_parse` refuses,
                or for the first of `waiting` once the deadline passes.
        """
        while True:
            left = self.deadline - time.monotonic()
            try:
                if left <= 0:  # even for a child that keeps talking
                    raise queue.Empty
                pair, line = self.lines.get(timeout=left)
            except queue.Empty:
                raise _Failed(
                    waiting[0], f"no result within {self.timeout:g} s"
                ) from None
            if line is None:
                raise _Failed(pair, self._ended(pair))
            if line.startswith(PROTOCOL + " "):
                answer = _parse(line)
                if answer is None:
                    raise _Failed(pair, f"unexpected answer: {line.strip()}")
                return pair, answer, line.strip()

    def _ended(self, pair):
        """Why a child stopped without answering (its exit status, last line)."""
        try:
            status = self.processes[pair].wait(
                timeout=max(self.deadline - time.monotonic(), 1.0)
            )
        except subprocess.TimeoutExpired:
            return f"no result within {self.timeout:g} s"
        if status == 0:
            return "no result line"
        self.stderr[pair].seek(0)
        lines = self.stderr[pair].read().strip().splitlines()
        return f"exit status {status}: " + (lines[-1] if lines else "no output")

    def close(self):
        """Kill the children and drop their files.

        Killed, not asked to exit: they hold nothing to save, and a failure's
        other children may still be compiling.
        """
        for process in self.processes.values():
            process.kill()
            process.wait()
            try:
                process.stdin.close()
            except OSError:  # what it had not read yet
                pass
        for file in self.stderr.values():
            file.close()


def _plain(value):
    """A NumPy scalar as the Python number JSON takes (`json.dumps`' `default`)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _parse(line):
    """A child's protocol line as `"ready"` or positive seconds; None if neither."""
    words = line.split()
    if len(words) != 2 or words[0] != PROTOCOL:
        return None
    if words[1] == "ready":
        return "ready"
    try:
        seconds = float(words[1])
    except ValueError:
        return None
    return seconds if np.isfinite(seconds) and seconds > 0 else None


def _main():
    """The child: build and compile the configured step, then time it on request."""
    config = json.loads(sys.stdin.readline())
    from keras_ddpm.training import recipe

    if config["threads"] is not None:  # as the parent will set it
        set_intra_op_threads(config["threads"])
    size, batch = config["image_size"], config["batch_size"]
    # As the recipe builds and runs it.
    model = recipe._new_model(size, learning_rate=0.0, **config["architecture"])
    recipe._use_xla(model, config["jit_compile"])
    generator = np.random.default_rng(0)
    batches = [
        [generator.uniform(-1.0, 1.0, (batch, size, size, CHANNELS)).astype("float32")]
        for _ in range(model.steps_per_execution)
    ]
    iterator = iter(recipe._batches_dataset(batches).repeat())
    recipe._first_call(model, iterator)  # traces and compiles
    print(PROTOCOL, "ready", flush=True)
    while sys.stdin.readline().strip() == "time":
        begin = time.perf_counter()
        recipe._fit_step(model, iterator)
        seconds = (time.perf_counter() - begin) / model.steps_per_execution
        print(PROTOCOL, repr(seconds), flush=True)


if __name__ == "__main__":
    _main()
