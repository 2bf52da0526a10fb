"""Settings for the whole test session, read before any backend is imported."""

import os

# The tests compile hundreds of tiny programs, so on JAX most of their time is
# spent in XLA's optimisation passes, not in running them. Skipping most passes
# keeps the semantics (and every tolerance the tests check) and cuts JAX's test
# time by about a third. Subprocesses started by the tests inherit it. The
# benchmarks and users' programs keep XLA's full optimisation.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

# TensorFlow spends a fifth of a tiny model's first `fit` in Grappler's graph
# rewrites; the tests trace many tiny graphs and run each a few times.
import keras  # noqa: E402  (after the JAX setting above)

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _no_thread_timing(request, tmp_path_factory, monkeypatch):
    """`train(intra_op_threads="auto")` times nothing in tests unless one asks.

    In a process whose TensorFlow has not started, `train` would time its step
    in child processes, set this process's threads for the rest of the session
    and write the user's cache: here TensorFlow counts as started, and the
    cache is a temporary one. tests/training/test_step_timing.py, which tests
    the timing itself, keeps only the temporary cache.
    """
    from keras_ddpm.training import step_timing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    if request.module.__name__.rpartition(".")[2] != "test_step_timing":
        monkeypatch.setattr(step_timing, "tensorflow_started", lambda: True)
