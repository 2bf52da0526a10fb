import numpy as np
import pytest
from keras import ops

from keras_ddpm import ops as dops


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_prediction_target_inverts(prediction):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 3, 3, 2)).astype("float32")
    eps = rng.standard_normal((4, 3, 3, 2)).astype("float32")
    alpha_bar = rng.uniform(0.05, 0.95, 4).astype("float32")
    alpha, sigma = np.sqrt(alpha_bar), np.sqrt(1 - alpha_bar)
    x_t = dops.q_sample(x0, eps, alpha, sigma)
    np.testing.assert_allclose(
        ops.convert_to_numpy(x_t),
        alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * eps,
        atol=1e-6,
    )
    target = dops.prediction_target(prediction, x0, eps, alpha, sigma)
    x0_hat, eps_hat = dops.predict_x0_and_eps(prediction, target, x_t, alpha, sigma)
    np.testing.assert_allclose(ops.convert_to_numpy(x0_hat), x0, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(eps_hat), eps, atol=1e-5)


def test_v_is_salimans_and_ho_definition():
    x0, eps = (
        np.full((1, 1, 1, 1), 2.0, "float32"),
        np.full((1, 1, 1, 1), -1.0, "float32"),
    )
    alpha, sigma = np.array([0.6], "float32"), np.array([0.8], "float32")
    v = ops.convert_to_numpy(dops.prediction_target("v", x0, eps, alpha, sigma))
    assert v.item() == pytest.approx(0.6 * -1.0 - 0.8 * 2.0)


def test_unknown_prediction():
    with pytest.raises(ValueError, match="`prediction` must be one of"):
        dops.prediction_target("score", 0, 0, 0, 0)
