"""Predictions with uncertainty: exact moments, draws, intervals, unseen groups, comparison."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone

import hierreg
from hierreg import HierarchicalLinearRegression, SamplingWarning
from tests.conftest import FAST, simulate_groups

NEW = pd.DataFrame({"county": ["ATLANTIS", "ATLANTIS", "CASS"], "floor": [0, 1, 1]})


def _with(est, **params):
    """A shallow copy of a fitted estimator with prediction-time parameters changed."""
    other = clone(est).set_params(**params)
    other.__dict__.update({k: v for k, v in est.__dict__.items() if k.endswith("_")})
    return other


def _population_draws(est):
    post = est.idata_["posterior"]
    return post["mu"].stack(s=("chain", "draw")).transpose("s", ...).values


def test_mean_mode_returns_exactly_the_population_mean(radon_fits):
    est = _with(radon_fits["partial"], new_groups="mean")
    mean, std = est.predict(NEW.iloc[:2], return_std=True)
    mu = _population_draws(est)
    x = np.array([[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(mean, x @ mu.mean(axis=0), rtol=1e-12)
    expected_var = np.einsum("ij,jk,ik->i", x, np.cov(mu.T, bias=True), x)
    sigma2 = (est.idata_["posterior"]["sigma"].values ** 2).mean()
    np.testing.assert_allclose(std**2, expected_var + sigma2, rtol=1e-10)


@pytest.fixture(scope="module")
def radon_partial_default(radon):
    """Partial pooling with default sampler settings (4 x 1000 draws): precise quantiles."""
    est = HierarchicalLinearRegression(
        "log_radon ~ floor", group="county", random_state=1, progressbar=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return est.fit(radon)


def test_population_mode_is_wider_than_any_seen_county(radon_partial_default):
    est = radon_partial_default
    assert est.new_groups == "population"
    counties = pd.DataFrame({"county": est.groups_, "floor": 0})
    # exact predictive sd (noise included): a new county is less certain than any seen one,
    # even WILKIN with a single house
    _, sd_seen = est.predict(counties, return_std=True)
    _, sd_new = est.predict(NEW.iloc[[0]], return_std=True)
    assert sd_new[0] > sd_seen.max()
    # intervals of the expected response: the between-county spread makes the new one wider
    seen = est.predict_interval(counties, include_noise=False, random_state=0)
    new = est.predict_interval(NEW.iloc[[0]], include_noise=False, random_state=0)
    width_new = float(new["upper"].iloc[0] - new["lower"].iloc[0])
    assert width_new > (seen["upper"] - seen["lower"]).max()
    # "mean" ignores that spread and is narrower than "population"
    mean_mode = _with(est, new_groups="mean").predict_interval(
        NEW.iloc[[0]], include_noise=False, random_state=0
    )
    assert float(mean_mode["upper"].iloc[0] - mean_mode["lower"].iloc[0]) < width_new


def test_population_draws_share_one_fresh_group_per_label(radon_fits):
    est = radon_fits["partial"]
    X = pd.DataFrame({"county": ["NEW1", "NEW1", "NEW2"], "floor": [0, 0, 0]})
    draws = est.predict_draws(X, include_noise=False, random_state=3)
    np.testing.assert_array_equal(draws[:, 0], draws[:, 1])  # same group, same draw
    assert not np.allclose(draws[:, 0], draws[:, 2])  # another group, another draw
    # the spread of a fresh group includes tau: sd^2 = Var(mu0) + E[tau0^2]
    post = est.idata_["posterior"]
    expected = (
        post["mu"].sel(term="Intercept").var().item()
        + (post["tau"].sel(term="Intercept") ** 2).mean().item()
    )
    assert draws[:, 0].var() == pytest.approx(expected, rel=0.15)


def test_error_mode_lists_unseen_labels(radon_fits):
    est = _with(radon_fits["partial"], new_groups="error")
    with pytest.raises(ValueError, match=r"\['ATLANTIS'\].*new_groups='error'"):
        est.predict(NEW)
    np.testing.assert_allclose(
        est.predict(NEW.iloc[[2]]), radon_fits["partial"].predict(NEW.iloc[[2]])
    )


def test_unknown_new_groups_value(radon_fits):
    est = _with(radon_fits["partial"], new_groups="lme4")
    with pytest.raises(ValueError, match="new_groups='lme4' is not one of"):
        est.predict(NEW)


def test_no_pooling_cannot_predict_new_groups(radon_fits):
    with pytest.raises(ValueError, match="pooling='none' has no population"):
        radon_fits["none"].predict_interval(NEW)


def test_exact_std_matches_draws(radon, radon_fits):
    est = radon_fits["partial"]
    X = radon.iloc[:200]
    mean, std = est.predict(X, return_std=True)
    draws = est.predict_draws(X, random_state=0)
    n = draws.shape[0]
    # Monte Carlo error of the mean of n draws (treated as independent: ~ESS-level slack)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * std / np.sqrt(n / 4))
    np.testing.assert_allclose(draws.std(axis=0), std, rtol=0.12)
    # without noise, the sd is the sd of the expected response only
    _, std_all = est.predict(X, return_std=True)
    no_noise = est.predict_draws(X, include_noise=False, random_state=0)
    assert (no_noise.std(axis=0) < std_all).all()


def test_radon_cass_first_floor_is_narrower_with_partial_pooling(radon_fits):
    cass = NEW.iloc[[2]]
    width = {
        p: float(np.diff(radon_fits[p].predict_interval(cass, random_state=0).to_numpy()[0])[0])
        for p in ("none", "partial")
    }
    assert width["partial"] < width["none"]


def test_partial_pooling_has_the_best_loo(radon_fits):
    table = hierreg.compare(radon_fits)
    assert table.index[0] == "partial"
    assert {"elpd", "se", "weight", "diag_elpd", "elpd_diff"} <= set(table.columns)
    assert table["elpd"].iloc[0] > table["elpd"].iloc[1] + 2 * table["dse"].iloc[1]
    assert table["weight"].sum() == pytest.approx(1.0)


def test_compare_errors(radon_fits, radon):
    with pytest.raises(ValueError, match="at least two"):
        hierreg.compare({"partial": radon_fits["partial"]})
    no_ll = HierarchicalLinearRegression(
        "log_radon ~ floor", pooling="complete", store_log_likelihood=False, **FAST
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        no_ll.fit(radon)
    with pytest.raises(ValueError, match="no stored log-likelihood"):
        hierreg.compare({"a": no_ll, "b": radon_fits["partial"]})


def test_log_likelihood_matches_scipy(radon, radon_fits):
    est = radon_fits["none"]
    ll = est.idata_["log_likelihood"]["y"]
    post = est.idata_["posterior"]
    i, c, d = 5, 1, 17
    county = radon["county"].iloc[i]
    beta = post["beta"].sel(county=county).isel(chain=c, draw=d).values
    mu = beta[0] + beta[1] * radon["floor"].iloc[i]
    sigma = post["sigma"].isel(chain=c, draw=d).item()
    expected = stats.norm.logpdf(radon["log_radon"].iloc[i], mu, sigma)
    assert ll.isel(chain=c, draw=d, obs=i).item() == pytest.approx(expected, rel=1e-12)


def test_rmsd_per_draw(radon, radon_fits):
    rmsd = hierreg.posterior_predictive_rmsd(radon_fits["complete"], radon, random_state=0)
    assert rmsd.shape == (600,)
    # complete pooling's RMSD is the residual sd of the OLS fit, up to posterior spread
    assert rmsd.mean() == pytest.approx(0.79, abs=0.01)
    # in-sample, separate county regressions sit closer to the data than one regression
    none = hierreg.posterior_predictive_rmsd(radon_fits["none"], radon, random_state=0)
    assert none.mean() < rmsd.mean()


def test_same_random_state_identical_draws_and_row_order(radon, radon_fits):
    est = radon_fits["partial"]
    X = pd.concat([radon.iloc[:50], NEW])
    a = est.predict_draws(X, n_draws=100, random_state=5)
    b = est.predict_draws(X, n_draws=100, random_state=5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (100, len(X))
    order = np.random.default_rng(0).permutation(len(X))
    mean, std = est.predict(X, return_std=True)
    mean_p, std_p = est.predict(X.iloc[order], return_std=True)
    np.testing.assert_allclose(mean_p, mean[order], rtol=1e-12)
    np.testing.assert_allclose(std_p, std[order], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_draws": 0}, "n_draws must be a positive integer"),
        ({"n_draws": 10**6}, "exceeds the 600 posterior draws"),
    ],
)
def test_bad_draw_arguments(radon_fits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        radon_fits["partial"].predict_draws(NEW, **kwargs)


def test_bad_interval_prob(radon_fits):
    with pytest.raises(ValueError, match=r"prob must be in \(0, 1\)"):
        radon_fits["partial"].predict_interval(NEW, prob=1.5)


def test_interval_keeps_the_index(radon, radon_fits):
    X = radon.iloc[10:13]
    out = radon_fits["complete"].predict_interval(X)
    assert list(out.index) == list(X.index) and (out["lower"] < out["upper"]).all()


def test_group_noise_rejects_unseen_groups(simulated):
    frame, _ = simulated
    est = HierarchicalLinearRegression(
        "y ~ x", group="g", pooling="partial", group_noise=True, **FAST
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        est.fit(frame)
    with pytest.raises(ValueError, match="group_noise=True gives them no residual sd"):
        est.predict(pd.DataFrame({"g": ["new"], "x": [0.0]}))
    # seen groups use their own sigma
    _, std = est.predict(frame.iloc[:3], return_std=True)
    assert np.all(std > 0)


@pytest.mark.slow
def test_intervals_cover_held_out_data_at_the_nominal_rate():
    """90% intervals contain ~90% of new rows drawn from the model (binomial bounds)."""
    frame, truth = simulate_groups(n_groups=20, n_per_group=40, sigma=0.5, seed=17)
    train = frame.groupby("g").head(20)
    test = frame.drop(train.index)
    est = HierarchicalLinearRegression(
        "y ~ x", group="g", draws=500, tune=500, chains=2, progressbar=False, random_state=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        est.fit(train)
    bounds = est.predict_interval(test, prob=0.9, random_state=0)
    inside = ((bounds["lower"] <= test["y"]) & (test["y"] <= bounds["upper"])).sum()
    n = len(test)
    low, high = stats.binom.ppf([0.001, 0.999], n, 0.9)
    assert low <= inside <= high, (inside, n)


@pytest.mark.parametrize("group_noise", [False, True])
@pytest.mark.parametrize("chunk_elements", [10**7, 7 * 13])  # one chunk; many uneven chunks
def test_log_likelihood_every_element_in_chunks(monkeypatch, group_noise, chunk_elements):
    from hierreg.results import predict

    monkeypatch.setattr(predict, "LOGLIK_CHUNK_ELEMENTS", chunk_elements)
    rng = np.random.default_rng(5)
    n_draws, n_groups, n_rows = 13, 4, 50
    X = np.column_stack([np.ones(n_rows), rng.normal(size=n_rows), rng.integers(0, 2, n_rows)])
    g = rng.integers(0, n_groups, n_rows)
    y = rng.normal(size=n_rows)
    beta = rng.normal(size=(n_draws, n_groups, 3))
    sigma = rng.gamma(4.0, 0.2, size=(n_draws, n_groups) if group_noise else n_draws)
    post = predict.PosteriorArrays(beta=beta, population=None, tau=None, sigma=sigma)
    ll = predict.log_likelihood(X, y, g, post)
    scale = sigma[:, g] if group_noise else sigma[:, None]
    expected = stats.norm.logpdf(y, np.einsum("rk,drk->dr", X, beta[:, g, :]), scale)
    np.testing.assert_allclose(ll, expected, rtol=1e-12)
