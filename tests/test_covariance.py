"""covariance="full": correlated varying effects with an LKJ prior."""

import numpy as np
import pandas as pd
import pytest

from hierreg import HierarchicalLinearRegression
from tests.conftest import FAST, fit_quietly

TAU = np.array([0.6, 0.4])
CORR = 0.7


def _correlated(seed=0, n_groups=60, n_per_group=8):
    rng = np.random.default_rng(seed)
    R = np.array([[1.0, CORR], [CORR, 1.0]])
    coef = rng.multivariate_normal([1.0, -0.5], np.diag(TAU) @ R @ np.diag(TAU), n_groups)
    g = np.repeat(np.arange(n_groups), n_per_group)
    x = rng.normal(size=g.size)
    y = coef[g, 0] + coef[g, 1] * x + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": np.char.add("g", g.astype(str))})


@pytest.fixture(scope="module")
def small_full_fit():
    est = HierarchicalLinearRegression("y ~ x", group="g", covariance="full", **FAST)
    return fit_quietly(est, _correlated(seed=1, n_groups=20))


def test_posterior_layout(small_full_fit):
    est = small_full_fit
    post = est.idata_["posterior"]
    assert "chol" not in post and post["corr"].dims == ("chain", "draw", "corr_term", "corr_term_2")
    corr = post["corr"].values
    np.testing.assert_allclose(corr[..., 0, 0], 1.0)
    np.testing.assert_allclose(corr[..., 0, 1], corr[..., 1, 0])
    assert np.all(np.abs(corr[..., 0, 1]) < 1)
    assert list(est.group_correlation_.index) == ["Intercept", "x"]
    assert est.group_correlation_.loc["Intercept", "x"] == pytest.approx(corr[..., 0, 1].mean())
    assert set(est.diagnostics_) >= {"max_rhat", "min_ess_bulk"}
    # beta = mu + L z is what coef_ summarises, per group
    beta = post["beta"].mean(("chain", "draw")).values
    np.testing.assert_allclose(est.coef_.values, beta)


def test_new_group_moments_include_the_correlation(small_full_fit):
    est = small_full_fit
    new = pd.DataFrame({"x": [-2.0, 0.0, 2.0], "g": "unseen"})
    mean, sd = est.predict(new, return_std=True)
    draws = est.predict_draws(new, include_noise=True, random_state=0)
    # exact moments vs 600 draws (one fresh group per draw): agree within Monte Carlo error
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * sd / np.sqrt(len(draws)))
    np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.15)
    # a positive correlation widens the spread at x = +2 more than at x = -2
    assert sd[2] > sd[0]


def test_round_trip(small_full_fit, tmp_path):
    loaded = HierarchicalLinearRegression.load(small_full_fit.save(tmp_path / "full"))
    frame = _correlated(seed=1, n_groups=20)
    np.testing.assert_array_equal(loaded.predict(frame), small_full_fit.predict(frame))
    pd.testing.assert_frame_equal(loaded.group_correlation_, small_full_fit.group_correlation_)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pooling": "none"}, "covariance='full' correlates partially pooled"),
        ({"varying": ["Intercept"]}, "needs at least two varying terms"),
        ({"parametrization": "centered"}, "parametrization='noncentered' only"),
        ({"covariance": "unstructured"}, "covariance='unstructured' is not one of"),
    ],
)
def test_validation(params, message, no_sampling):
    est = HierarchicalLinearRegression("y ~ x", group="g", **{"covariance": "full", **params})
    with pytest.raises(ValueError, match=message):
        est.fit(_correlated(n_groups=5))


@pytest.mark.slow
def test_recovers_the_correlation_at_default_settings():
    est = fit_quietly(
        HierarchicalLinearRegression(
            "y ~ x", group="g", covariance="full", random_state=0, progressbar=False
        ),
        _correlated(seed=0),
    )
    d = est.diagnostics_
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400
    post = est.idata_["posterior"]
    low, high = np.quantile(post["corr"].values[..., 0, 1], [0.05, 0.95])
    assert low < CORR < high and low > 0.3  # clearly positive
    for k, truth in enumerate(TAU):
        low, high = np.quantile(post["tau"].values[..., k], [0.05, 0.95])
        assert low < truth < high
