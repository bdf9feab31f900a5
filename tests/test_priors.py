import numpy as np
import pytest

from hierreg.model.priors import Prior, default_priors


def _data(scale_y=1.0, scale_x=1.0, shift_x=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = shift_x + scale_x * rng.normal(size=200)
    y = scale_y * (2.0 + 0.5 * x / scale_x + rng.normal(size=200))
    X = np.column_stack([np.ones_like(x), x])
    return X, y


def test_documented_formulas():
    X, y = _data(shift_x=3.0)
    p = default_priors(X, y, ["Intercept", "x"])
    sd_y, sd_x, mean_x = y.std(), X[:, 1].std(), X[:, 1].mean()
    slope = 2.5 * sd_y / sd_x
    assert p.loc[1] == 0.0
    assert p.scale[1] == pytest.approx(slope)
    assert p.loc[0] == pytest.approx(y.mean())
    assert p.scale[0] == pytest.approx(np.sqrt((2.5 * sd_y) ** 2 + (slope * mean_x) ** 2))
    np.testing.assert_allclose(p.group_sd_scale, p.scale / 2.5)
    assert p.sigma_rate == pytest.approx(1 / sd_y)


@pytest.mark.parametrize("factor", [1e-3, 1e3, 1e6])
def test_priors_scale_with_the_response(factor):
    X, y = _data()
    base = default_priors(X, y, ["Intercept", "x"])
    scaled = default_priors(X, y * factor, ["Intercept", "x"])
    np.testing.assert_allclose(scaled.scale, base.scale * factor, rtol=1e-10)
    np.testing.assert_allclose(scaled.loc, base.loc * factor, rtol=1e-10)
    assert scaled.sigma_rate == pytest.approx(base.sigma_rate / factor)


def test_slope_prior_scales_inversely_with_predictor():
    X, y = _data()
    Xs = X.copy()
    Xs[:, 1] *= 100
    base = default_priors(X, y, ["Intercept", "x"])
    scaled = default_priors(Xs, y, ["Intercept", "x"])
    assert scaled.scale[1] == pytest.approx(base.scale[1] / 100)
    assert scaled.scale[0] == pytest.approx(base.scale[0])  # mean effect unchanged


def test_constant_columns_get_a_proper_prior():
    X = np.ones((10, 2))
    y = np.full(10, 3.0)
    p = default_priors(X, y, ["Intercept", "c"])
    assert np.all(np.isfinite(p.scale)) and np.all(p.scale > 0)
    assert np.isfinite(p.sigma_rate)


def test_no_intercept():
    X, y = _data()
    p = default_priors(X[:, 1:], y, ["x"])
    assert p.loc.tolist() == [0.0]


def test_prior_repr_and_dict():
    assert repr(Prior("Normal", mu=0, sigma=2.5)) == "Prior('Normal', mu=0, sigma=2.5)"
    X, y = _data()
    d = default_priors(X, y, ["Intercept", "x"]).as_dict()
    assert set(d) == {"Intercept", "x", "tau[Intercept]", "tau[x]", "sigma"}
    assert d["sigma"].distribution == "Exponential"


def test_user_priors_replace_defaults_and_shape_the_posterior(simulated):
    """A tight slope prior moves the posterior where conjugate algebra says; a tight tau
    prior collapses the groups; the data-scaled defaults stay in default_priors_."""
    from hierreg import HierarchicalLinearRegression, Prior
    from tests.conftest import FAST, fit_quietly

    frame, _ = simulated
    X = np.column_stack([np.ones(len(frame)), frame["x"]])
    ols, res, *_ = np.linalg.lstsq(X, frame["y"], rcond=None)
    se = np.sqrt(res[0] / (len(frame) - 2) * np.linalg.inv(X.T @ X)[1, 1])
    # a prior 4 standard errors above the OLS slope, as precise as the data: the posterior
    # mean is halfway (Normal-Normal update; sigma barely moves, the prior agrees roughly)
    prior = Prior("Normal", mu=ols[1] + 4 * se, sigma=se)
    complete = fit_quietly(
        HierarchicalLinearRegression("y ~ x", pooling="complete", priors={"x": prior}, **FAST),
        frame,
    )
    assert complete.priors_["x"] == prior
    assert complete.default_priors_["x"].params["mu"] == 0.0  # the default slope prior
    assert complete.coef_["x"].iloc[0] == pytest.approx(ols[1] + 2 * se, abs=0.4 * se)

    priors = {"tau": Prior("HalfNormal", sigma=0.01), "sigma": Prior("Exponential", lam=4.0)}
    partial = fit_quietly(
        HierarchicalLinearRegression("y ~ x", group="g", priors=priors, **FAST), frame
    )
    assert partial.priors_["tau[Intercept]"] == partial.priors_["tau[x]"] == priors["tau"]
    assert partial.priors_["sigma"] == Prior("Exponential", lam=4.0)
    assert (partial.coef_.std() < 0.1).all()  # groups differ by 0.6 / 0.3 in truth
    plain = fit_quietly(HierarchicalLinearRegression("y ~ x", group="g", **FAST), frame)
    assert plain.priors_ == plain.default_priors_
    assert (plain.coef_.std() > 0.2).all()
