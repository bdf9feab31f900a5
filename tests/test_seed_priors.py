"""The radon notebook's own model: with its priors (``hierreg radon --seed-priors``), hierreg's
posterior is that of the same model written by hand in PyMC and sampled much longer."""

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr

from hierreg.datasets import load_radon
from hierreg.radon import SEED_PRIORS, fit_radon


@pytest.mark.slow
def test_the_notebook_model_matches_a_long_hand_written_run():
    data = load_radon()
    result = fit_radon("partial", seed_priors=True, draws=2000, tune=1000, random_state=3)
    est = result.estimator
    assert est.priors_["tau[Intercept]"] == SEED_PRIORS["tau"]
    assert est.priors_["sigma"] == SEED_PRIORS["sigma"]
    assert est.diagnostics_["divergences"] == 0

    counties = list(est.groups_)
    index = est.groups_.get_indexer(data["county"])
    floor = data["floor"].to_numpy(float)
    with pm.Model(coords={"county": counties}):
        # the notebook's model (Wiecki & Elbers 2014), written non-centred: same posterior
        mu_a = pm.Normal("mu_a", 0.0, 1.0)
        sigma_a = pm.HalfCauchy("sigma_a", 1.0)
        mu_b = pm.Normal("mu_b", 0.0, 1.0)
        sigma_b = pm.HalfCauchy("sigma_b", 1.0)
        z_a = pm.Normal("z_a", 0.0, 1.0, dims="county")
        z_b = pm.Normal("z_b", 0.0, 1.0, dims="county")
        a = pm.Deterministic("a", mu_a + sigma_a * z_a, dims="county")
        b = pm.Deterministic("b", mu_b + sigma_b * z_b, dims="county")
        eps = pm.HalfCauchy("eps", 1.0)
        pm.Normal("y", a[index] + b[index] * floor, eps, observed=data["log_radon"].to_numpy())
        hand = pm.sample(
            draws=6000, tune=1500, chains=4, random_seed=11, progressbar=False,
            nuts_sampler="nutpie",
        )  # fmt: skip
    hand_post = hand["posterior"]
    ours = est.idata_["posterior"]["beta"]
    for term, name in (("Intercept", "a"), ("floor", "b")):
        mine = ours.sel(term=term).rename({"county": "c"})
        theirs = hand_post[name].rename({"county": "c"})
        diff = mine.mean(("chain", "draw")).values - theirs.mean(("chain", "draw")).values
        error = np.sqrt(_mcse(mine) ** 2 + _mcse(theirs) ** 2)
        # 170 coefficients: 4.5 combined Monte Carlo standard errors
        worst = np.max(np.abs(diff) / error)
        assert worst < 4.5, f"{term}: a county differs by {worst:.1f} Monte Carlo errors"
    floor_mean = float(est.population_coef_["floor"])
    hand_floor = hand_post["mu_b"].values
    assert abs(floor_mean - hand_floor.mean()) < 0.1 * hand_floor.std()


def _mcse(draws: xr.DataArray) -> np.ndarray:
    return np.asarray(az.mcse(draws.to_dataset(name="v"))["v"].values)
