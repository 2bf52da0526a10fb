"""`DiffusionModel.inpaint` (RePaint) against the closed form of a correlated Gaussian.

For data x0 ~ N(μ, Σ) over the D pixels of a small image, the ideal denoiser is
E[ε | x_t] = sqrt(1 − ᾱ)·(ᾱΣ + (1 − ᾱ)I)⁻¹(x_t − sqrt(ᾱ)μ), and the true
conditional of the unknown pixels u given the known ones k is Gaussian with
mean μ_u + Σ_uk Σ_kk⁻¹(x_k − μ_k). With that denoiser as the network, the
inpainted pixels must approach that mean, more closely with more resampling.
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_ddpm as kd
from keras_ddpm.models.inpainting import repaint_levels, repaint_tables
from tests.gaussian import rate_tables
from tests.helpers import count_calls

BACKEND = keras.backend.backend()
IMAGE = (2, 2, 1)  # D = 4 pixels
RNG = np.random.default_rng(0)
_A = RNG.standard_normal((4, 4))
SIGMA = 0.02 * (_A @ _A.T) + 0.002 * np.eye(4)  # strongly correlated pixels
MU = np.array([0.2, -0.1, 0.3, 0.0])
KEEP = np.array([1.0, 0.0, 1.0, 0.0])  # pixels 0 and 2 known


class CorrelatedGaussianOracle(keras.layers.Layer):
    """The exact E[ε | x_t] for flattened data x0 ~ N(MU, SIGMA)."""

    def __init__(self, schedule, **kwargs):
        super().__init__(**kwargs)
        self.tables = rate_tables(schedule)
        values, vectors = np.linalg.eigh(SIGMA)
        self.values = ops.convert_to_tensor(values.astype("float32"))
        self.vectors = ops.convert_to_tensor(vectors.astype("float32"))
        self.mu = ops.convert_to_tensor(MU.astype("float32"))

    def call(self, inputs):
        x, t = inputs
        alpha, sigma = kd.ops.rates_at(t, *self.tables)
        ab = ops.reshape(alpha**2, (-1, 1))
        flat = ops.reshape(x, (-1, 4)) - ops.reshape(alpha, (-1, 1)) * self.mu
        # (ᾱΣ + (1 − ᾱ)I)⁻¹ = U diag(1 / (ᾱλ + 1 − ᾱ)) Uᵀ.
        rotated = ops.matmul(flat, self.vectors) / (ab * self.values + 1.0 - ab)
        eps = ops.reshape(sigma, (-1, 1)) * ops.matmul(
            rotated, ops.transpose(self.vectors)
        )
        return ops.reshape(eps, ops.shape(x))


def oracle(schedule):
    images = keras.Input(IMAGE)
    timesteps = keras.Input(())
    outputs = CorrelatedGaussianOracle(schedule)([images, timesteps])
    return kd.DiffusionModel(
        keras.Model([images, timesteps], outputs), schedule=schedule
    )


@pytest.fixture(scope="module")
def model():
    return oracle(kd.schedules.CosineSchedule())


def known_image():
    return np.array([0.45, 0.0, 0.1, 0.0]).reshape(IMAGE).astype("float32")


def conditional_mean(x):
    k, u = KEEP > 0, KEEP == 0
    s_kk, s_uk = SIGMA[np.ix_(k, k)], SIGMA[np.ix_(u, k)]
    return MU[u] + s_uk @ np.linalg.solve(s_kk, x[k] - MU[k])


def inpainted_error(model, jump_n_sample, num=2000, seed=0, steps=50, jump_length=5):
    """Largest error of the filled pixels' mean against the true conditional mean."""
    images = np.repeat(known_image()[None], num, axis=0)
    mask = KEEP.reshape(IMAGE)
    out = model.inpaint(
        images,
        mask,
        # Unclipped: the Gaussian's tails reach past [-1, 1].
        sampler={"name": "ddpm", "clip": False},
        steps=steps,
        jump_length=jump_length,
        jump_n_sample=jump_n_sample,
        seed=seed,
        batch_size=num,  # one call: the images are 4 pixels each
    )
    flat = out.reshape(num, 4).astype(np.float64)
    np.testing.assert_array_equal(
        flat[:, KEEP > 0], images.reshape(num, 4)[:, KEEP > 0]
    )
    truth = conditional_mean(known_image().ravel().astype(np.float64))
    return np.abs(flat[:, KEEP == 0].mean(0) - truth).max(), flat


def test_repaint_levels_walk_each_stretch_jump_n_sample_times():
    assert repaint_levels(4, 2, 2) == [4, 3, 2, 4, 3, 2, 1, 0, 2, 1, 0]
    assert repaint_levels(5, 3, 1) == [5, 4, 3, 2, 1, 0]
    path = repaint_levels(50, 10, 10)
    moves = np.diff(path)
    assert set(moves) == {-1, 10} and path[0] == 50 and path[-1] == 0
    # Every level below the top stretch is left downwards jump_n_sample times.
    downs = [here for here, there in zip(path, path[1:]) if there < here]
    assert all(downs.count(level) == 10 for level in range(1, 41))


def test_tables_compose_the_base_steps_and_q_of_the_jumps():
    schedule = kd.schedules.CosineSchedule()
    sampler = kd.samplers.DDIMSampler()
    tables = repaint_tables(sampler, schedule, 4, 2, 2)
    timesteps, alpha_bar = sampler.visited(schedule, 4)
    base = sampler.tables(schedule, 4)
    # The first two transitions are the base sampler's first two steps.
    for name in ("t", "a", "b", "c", "d"):
        np.testing.assert_allclose(tables[name][:2], base[name][:2], rtol=1e-6)
    # The third is a jump from level 2 (t = timesteps[2]) to level 4 (t = timesteps[0]).
    assert tables["reverse"][2] == 0
    ratio = alpha_bar[0] / alpha_bar[2]
    np.testing.assert_allclose(tables["up_a"][2], np.sqrt(ratio), rtol=1e-6)
    np.testing.assert_allclose(tables["up_d"][2], np.sqrt(1 - ratio), rtol=1e-6)
    # Known pixels after the last step are the originals themselves.
    assert tables["known_a"][-1] == 1.0 and tables["known_d"][-1] == 0.0


def test_resampling_approaches_the_true_conditional_mean(model):
    errors = {n: inpainted_error(model, n)[0] for n in (1, 5, 10)}
    # Plain replacement (n = 1) barely conditions the filled pixels on the kept
    # ones; resampling moves their mean most of the way to the true one. The
    # method is not exact (the filled pixels' mean stays short of it however
    # often it resamples), so the check is the trend and its size. With 2000
    # samples the mean's standard error is below 0.01.
    assert errors[5] < 0.75 * errors[1], errors
    assert errors[10] < 0.65 * errors[1], errors


def test_all_kept_returns_the_image_and_all_filled_samples_the_data(model):
    images = np.repeat(known_image()[None], 8, axis=0)
    same = model.inpaint(
        images, np.ones(IMAGE), sampler="ddim", steps=10, jump_length=5, seed=0
    )
    np.testing.assert_array_equal(same, images)
    sampler = {"name": "ddpm", "clip": False}
    free = model.inpaint(
        np.zeros((4000,) + IMAGE, "float32"),
        np.zeros(IMAGE[:2]),
        sampler=sampler,
        steps=50,
        jump_n_sample=1,
        seed=1,
        batch_size=4000,
    ).reshape(4000, 4)
    # Nothing kept and no resampling: the same Markov chain as `generate`, so
    # the same distribution (other noise draws, so equal within sampling error).
    generated = model.generate(
        4000, sampler=sampler, steps=50, seed=2, batch_size=4000
    ).reshape(4000, 4)
    np.testing.assert_allclose(free.mean(0), generated.mean(0), atol=0.02)
    np.testing.assert_allclose(
        np.cov(free, rowvar=False), np.cov(generated, rowvar=False), atol=0.008
    )


def test_trajectory_and_seeds(model):
    images = np.repeat(known_image()[None], 3, axis=0)
    mask = KEEP.reshape(IMAGE)
    kwargs = dict(sampler="ddim", steps=6, jump_length=3, jump_n_sample=2)
    out, trajectory = model.inpaint(
        images, mask, seed=4, return_trajectory=True, **kwargs
    )
    num = len(repaint_levels(6, 3, 2)) - 1
    assert trajectory.shape == (num + 1, 3) + IMAGE
    np.testing.assert_array_equal(trajectory[-1], out)
    np.testing.assert_array_equal(out, model.inpaint(images, mask, seed=4, **kwargs))
    assert not np.array_equal(out, model.inpaint(images, mask, seed=5, **kwargs))


@pytest.mark.skipif(BACKEND == "torch", reason="torch runs eagerly: no trace to count")
def test_new_images_and_masks_reuse_the_program(monkeypatch):
    model = oracle(kd.schedules.CosineSchedule())
    traces = count_calls(monkeypatch, model, "denoise")
    kwargs = dict(sampler="ddim", steps=6, jump_length=3, jump_n_sample=2, seed=0)
    images = np.repeat(known_image()[None], 4, axis=0)
    model.inpaint(images, KEEP.reshape(IMAGE), **kwargs)
    assert traces[0] == 1
    model.inpaint(-images, 1.0 - KEEP.reshape(IMAGE), **kwargs)
    model.inpaint(images * 0.5, np.ones(IMAGE), **kwargs)
    assert traces[0] == 1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"mask": np.ones((3, 3))},
            r"`mask` \(1 = keep the pixel, 0 = fill it in\) must have shape",
        ),
        ({"mask": np.full(IMAGE, 2.0)}, r"`mask` .* must lie in \[0, 1\]"),
        (
            {"images": np.full((2,) + IMAGE, 1.5, "float32")},
            r"`images` must lie in \[-1, 1\]",
        ),
        ({"images": np.zeros((2, 3, 3, 1), "float32")}, "`images` must have shape"),
        ({"sampler": "dpm_solver"}, "linear step rule.*DPMSolverSampler"),
        ({"jump_length": 0}, "`jump_length` must be"),
        ({"jump_length": 20, "steps": 10}, "`jump_length` .* at most the steps"),
    ],
)
def test_bad_arguments(model, kwargs, message):
    arguments = {
        "images": np.zeros((2,) + IMAGE, "float32"),
        "mask": np.ones(IMAGE),
        "sampler": "ddim",
        "steps": 10,
        "jump_length": 5,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        model.inpaint(**arguments)
