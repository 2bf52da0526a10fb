"""`samplers.sampler.normal`: Keras' own Gaussian draws, whatever the compilation."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ddpm.models.trainers import get_trainer
from keras_ddpm.samplers.sampler import normal


@pytest.mark.parametrize("jit", [False, True])
def test_normal_draws_what_keras_draws_and_advances_the_generator(jit):
    shape = (3, 4, 5, 2)
    ours, theirs = keras.random.SeedGenerator(7), keras.random.SeedGenerator(7)

    def draw(generator, fn):
        state = generator.state
        with keras.StatelessScope(state_mapping=[(state, state.value)]) as scope:
            first, second = fn(generator), fn(generator)
        return first, second, scope.get_current_value(state)

    compile_ = get_trainer().compile_sampling
    got = compile_(lambda: draw(ours, lambda g: normal(shape, g)), jit)()
    want = compile_(
        lambda: draw(theirs, lambda g: keras.random.normal(shape, seed=g)), jit
    )()
    got, want = [[ops.convert_to_numpy(t) for t in d] for d in (got, want)]
    assert got[0].shape == shape and got[0].dtype == np.float32
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-6)
    assert not np.allclose(got[0], got[1])  # the generator moved between draws
    np.testing.assert_array_equal(got[2], want[2])


def test_normal_is_standard_normal():
    draws = ops.convert_to_numpy(normal((20000,), keras.random.SeedGenerator(3)))
    assert abs(draws.mean()) < 0.03 and abs(draws.std() - 1.0) < 0.03
