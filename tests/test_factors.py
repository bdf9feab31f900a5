"""Several grouping factors: crossed and nested groups (model, posterior, predictions)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hierreg import HierarchicalLinearRegression
from hierreg.results.predict import PosteriorArrays, log_likelihood
from tests.conftest import FAST, fit_quietly

TAU_ITEM, TAU_RATER, SIGMA = 0.5, 0.3, 1.0


def _crossed(seed=0, n_items=40, n_raters=30, fill=1.0):
    """Items x raters, one rating per pair (kept with probability ``fill``)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, TAU_ITEM, n_items), rng.normal(0, TAU_RATER, n_raters)
    item, rater = np.meshgrid(np.arange(n_items), np.arange(n_raters), indexing="ij")
    keep = rng.random(item.shape) < fill
    item, rater = item[keep], rater[keep]
    x = rng.normal(size=item.size)
    y = 1.0 + a[item] + b[rater] + 0.7 * x + rng.normal(0, SIGMA, item.size)
    frame = pd.DataFrame(
        {"item": np.char.add("i", item.astype(str)), "rater": np.char.add("r", rater.astype(str))}
    )
    return frame.assign(x=x, y=y), a, b


TAU_STATE, TAU_COUNTY = 0.5, 0.5


def _nested(seed=0, n_states=15, n_counties=10, n_rows=3):
    """Counties in states; county names c0.. repeat in every state (different counties)."""
    rng = np.random.default_rng(seed)
    a_state = rng.normal(0, TAU_STATE, n_states)
    a_county = rng.normal(0, TAU_COUNTY, (n_states, n_counties))
    state = np.repeat(np.arange(n_states), n_counties * n_rows)
    county = np.tile(np.repeat(np.arange(n_counties), n_rows), n_states)
    x = rng.normal(size=state.size)
    y = 2.0 + a_state[state] + a_county[state, county] + 0.5 * x
    y = y + rng.normal(0, SIGMA, state.size)
    frame = pd.DataFrame(
        {
            "state": np.char.add("s", state.astype(str)),
            "county": np.char.add("c", county.astype(str)),
        }
    )
    return frame.assign(x=x, y=y), a_state, a_county


@pytest.fixture(scope="module")
def crossed_fit():
    frame, _, _ = _crossed(seed=1)  # the sizes of the default-settings fit: one compilation
    est = HierarchicalLinearRegression(
        "y ~ x", group=["item", "rater"], varying=["Intercept"], **FAST
    )
    return fit_quietly(est, frame), frame


def test_crossed_layout(crossed_fit):
    est, frame = crossed_fit
    post = est.idata_["posterior"]
    assert post["effect_rater"].dims == ("chain", "draw", "rater", "rater_term")
    assert list(post["rater_term"].values) == ["Intercept"]
    assert post["tau_rater"].dims == ("chain", "draw", "rater_term")
    assert list(est.groups_) == sorted(frame["item"].unique())
    effects = est.group_effects_["rater"]
    assert list(effects.index) == sorted(frame["rater"].unique())
    np.testing.assert_allclose(
        effects["Intercept"], post["effect_rater"].mean(("chain", "draw"))[:, 0]
    )
    # the reported z are iid N(0, 1) draws: their level mean is zbar / sqrt(L), not 0
    z = post["z_rater"].values[..., 0]
    np.testing.assert_allclose(z.mean(axis=-1), post["zbar_rater"].values[..., 0] / np.sqrt(30))
    # effect = tau * z (both in data units for the intercept)
    np.testing.assert_allclose(
        post["effect_rater"].values,
        post["tau_rater"].values[:, :, None, :] * post["z_rater"].values,
        rtol=1e-10,
    )


def test_formula_group_terms_are_the_same_model(crossed_fit):
    est, frame = crossed_fit
    same = fit_quietly(
        HierarchicalLinearRegression("y ~ x + (1 | item) + (1 | rater)", **FAST), frame
    )
    np.testing.assert_array_equal(same.predict(frame), est.predict(frame))
    pd.testing.assert_frame_equal(same.group_effects_["rater"], est.group_effects_["rater"])


def test_seen_rows_add_both_factors(crossed_fit):
    est, frame = crossed_fit
    post = est.idata_["posterior"]
    beta = post["beta"].mean(("chain", "draw")).sel(item=frame["item"].to_xarray())
    effect = post["effect_rater"].mean(("chain", "draw")).sel(rater=frame["rater"].to_xarray())
    expected = beta.sel(term="Intercept") + beta.sel(term="x") * frame["x"].to_numpy()
    expected = expected + effect.sel(rater_term="Intercept")
    np.testing.assert_allclose(est.predict(frame), expected.values, rtol=1e-10, atol=1e-12)


def test_pointwise_log_likelihood(crossed_fit):
    est, frame = crossed_fit
    design = est.design_.transform(frame)
    post = PosteriorArrays.from_posterior(
        est.idata_["posterior"].to_dataset(), est.structure_, est.group_dim_, est.factor_dims_
    )
    got = log_likelihood(
        design.X, frame["y"].to_numpy(), design.group_index, post, design.factor_index
    )
    eta = np.einsum("ij,sij->si", design.X, post.beta[:, design.group_index, :])
    eta += post.factors[0].effect[:, design.factor_index[0], 0]
    want = stats.norm.logpdf(frame["y"].to_numpy(), eta, post.sigma[:, None])
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(est.idata_["log_likelihood"]["y"].values.reshape(got.shape), got)


def test_unseen_levels_moments_match_draws(crossed_fit):
    est, _ = crossed_fit
    new = pd.DataFrame({"item": ["i0", "i0", "new"], "rater": ["r1", "new", "r1"], "x": 0.5})
    mean, sd = est.predict(new, return_std=True)
    draws = est.predict_draws(new, random_state=0)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * sd / np.sqrt(len(draws)))
    np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.1)
    # an unseen rater adds the rater sd to the spread; "mean" leaves it out
    assert sd[1] > sd[0]
    narrow = est.set_params(new_groups="mean").predict(new, return_std=True)[1]
    est.set_params(new_groups="population")
    assert narrow[1] < sd[1]
    with pytest.raises(ValueError, match=r"level\(s\) \['new'\] of grouping factor 'rater'"):
        est.set_params(new_groups="error").predict(new)
    est.set_params(new_groups="population")


def test_save_load_round_trip(crossed_fit, tmp_path):
    est, frame = crossed_fit
    loaded = HierarchicalLinearRegression.load(est.save(tmp_path / "crossed"))
    new = frame.head(5).assign(rater=["r1", "zz", "r2", "r3", "r4"])
    np.testing.assert_array_equal(loaded.predict(new), est.predict(new))
    pd.testing.assert_frame_equal(loaded.group_effects_["rater"], est.group_effects_["rater"])


def test_no_pooling_effects_sum_to_zero():
    frame, _, _ = _nested(n_states=4, n_counties=3, n_rows=4)
    est = HierarchicalLinearRegression("y ~ x", group=["county", "state"], pooling="none", **FAST)
    est = fit_quietly(est, frame)
    effects = est.idata_["posterior"]["effect_state"].values  # (chain, draw, state, term)
    np.testing.assert_allclose(effects.sum(axis=2), 0.0, atol=1e-9)
    assert est.group_effects_["state"].shape == (4, 2)
    with pytest.raises(ValueError, match="pooling='none' has no population"):
        est.predict(frame.head(1).assign(state="unseen"))


def test_full_covariance_of_a_further_factor():
    frame, _, _ = _nested(n_states=6, n_counties=4, n_rows=4)
    est = HierarchicalLinearRegression(
        "y ~ x + (1 | county) + (1 + x | state)", covariance="full", **FAST
    )
    post = fit_quietly(est, frame).idata_["posterior"]
    corr = post["corr_state"].values
    np.testing.assert_allclose(corr[..., 0, 0], 1.0)
    np.testing.assert_allclose(corr[..., 0, 1], corr[..., 1, 0])
    assert "chol_state" not in post and "corr" not in post  # county varies one term only
    assert post["tau_state"].dims == ("chain", "draw", "state_term")


def _interval_contains(draws, truth, prob=0.9):
    low, high = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
    return low < truth < high


def textbook_crossed_model(frame, first: str, second: str, priors: dict):
    """``y ~ x`` with intercept deviations by two factors, written by hand in PyMC as a user
    would (non-centred ``tau * z``), with the given priors (hierreg's ``priors_``)."""
    import pymc as pm

    g1, levels1 = pd.factorize(frame[first], sort=True)
    g2, levels2 = pd.factorize(frame[second], sort=True)
    with pm.Model(coords={"g1": levels1, "g2": levels2}) as model:
        mu = pm.Normal("mu", **priors["Intercept"].params)
        slope = pm.Normal("slope", **priors["x"].params)
        tau1 = pm.HalfNormal("tau1", **priors["tau[Intercept]"].params)
        tau2 = pm.HalfNormal("tau2", **priors["tau[Intercept]"].params)
        z1 = pm.Normal("z1", 0, 1, dims="g1")
        z2 = pm.Normal("z2", 0, 1, dims="g2")
        sigma = pm.Exponential("sigma", **priors["sigma"].params)
        eta = mu + tau1 * z1[g1] + tau2 * z2[g2] + slope * frame["x"].to_numpy()
        pm.Normal("y", eta, sigma, observed=frame["y"].to_numpy())
    return model


@pytest.fixture(scope="module")
def crossed_default_fit():
    frame, a, b = _crossed(seed=0)
    est = HierarchicalLinearRegression(
        "y ~ x + (1 | item) + (1 | rater)", random_state=0, progressbar=False
    )
    return fit_quietly(est, frame), frame, a, b


@pytest.mark.slow
def test_crossed_recovery_at_default_settings(crossed_default_fit):
    est, _, a, b = crossed_default_fit
    d = est.diagnostics_
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400, d
    post = est.idata_["posterior"]
    assert _interval_contains(post["tau"].values, TAU_ITEM)
    assert _interval_contains(post["tau_rater"].values, TAU_RATER)
    assert _interval_contains(post["sigma"].values, SIGMA)
    assert _interval_contains(post["beta_common"].values, 0.7)
    rater = est.group_effects_["rater"]["Intercept"]
    truth = pd.Series(b, index=[f"r{j}" for j in range(len(b))]).loc[rater.index]
    assert np.corrcoef(rater, truth)[0, 1] > 0.7
    # the grand mean: the intercept of a new item rated by a new rater
    assert _interval_contains(post["mu"].values, 1.0 + a.mean() + b.mean(), prob=0.99)


@pytest.mark.slow
def test_crossed_posterior_equals_the_textbook_model(crossed_default_fit):
    """The zero-sum + mean reparametrisation is exact: the posterior equals that of the
    plain crossed model (u ~ N(0, tau) iid per level), written by hand in PyMC with the
    same priors, within Monte Carlo error."""
    import arviz_stats as azs
    import pymc as pm

    est, frame, _, _ = crossed_default_fit
    with textbook_crossed_model(frame, "item", "rater", est.priors_):
        hand = pm.sample(1000, tune=1000, chains=4, random_seed=1, progressbar=False)
    ours = est.idata_["posterior"]
    pairs = {"mu": "mu", "tau": "tau1", "tau_rater": "tau2", "sigma": "sigma"}
    pairs["beta_common"] = "slope"
    for name, hand_name in pairs.items():
        a = ours[name].squeeze(drop=True)
        b = hand["posterior"][hand_name]
        mcse = np.hypot(
            float(azs.mcse(a.to_dataset(name="v"))["v"]),
            float(azs.mcse(b.to_dataset(name="v"))["v"]),
        )
        assert abs(float(a.mean()) - float(b.mean())) < 4 * mcse, (
            name,
            float(a.mean()),
            float(b.mean()),
            mcse,
        )
        assert float(a.std()) == pytest.approx(float(b.std()), rel=0.1), name


@pytest.mark.slow
def test_nested_recovery_at_default_settings():
    frame, a_state, a_county = _nested(seed=0)
    est = HierarchicalLinearRegression(
        "y ~ x + (1 | state/county)", random_state=0, progressbar=False
    )
    est = fit_quietly(est, frame)
    d = est.diagnostics_
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400, d
    county = est.group_effects_["state:county"]
    assert len(county) == a_county.size  # c0 of state s1 is not c0 of state s2
    truth = pd.Series(a_county.ravel(), index=[f"s{s}:c{c}" for s in range(15) for c in range(10)])
    assert np.corrcoef(county["Intercept"], truth.loc[county.index])[0, 1] > 0.4
    post = est.idata_["posterior"]
    assert _interval_contains(post["tau"].values, TAU_STATE)
    assert _interval_contains(post["tau_state:county"].values, TAU_COUNTY)
    assert _interval_contains(post["beta_common"].values, 0.5)
