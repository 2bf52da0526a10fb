"""Settings for the whole test session, read before any backend is imported."""

import os

# The tests compile hundreds of tiny programs, so on JAX most of their time is
# spent in XLA's optimisation passes, not in running them. Skipping most passes
# keeps the semantics (and every tolerance the tests check) and cuts JAX's test
# time by about a third. Subprocesses started by the tests inherit it. The
# benchmarks and users' programs keep XLA's full optimisation.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
