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
