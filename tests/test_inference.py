import warnings

import numpy as np
import pytest
import xarray as xr

from hierreg.sampling.diagnostics import (
    SamplingWarning,
    convergence_diagnostics,
    warn_if_unconverged,
)


def _idata(posterior_values, diverging):
    chains, draws = diverging.shape
    posterior = xr.Dataset(
        {"a": (("chain", "draw"), posterior_values)},
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    posterior.attrs["sampling_time"] = 1.5
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


def test_diagnostics_on_well_mixed_draws():
    rng = np.random.default_rng(0)
    dt = _idata(rng.normal(size=(4, 1000)), np.zeros((4, 1000), bool))
    d = convergence_diagnostics(dt, seconds=2.0)
    assert d["max_rhat"] < 1.01
    assert d["min_ess_bulk"] > 3000 and d["min_ess_tail"] > 2500
    assert d["divergences"] == 0 and (d["chains"], d["draws"]) == (4, 1000)
    assert (d["sampling_seconds"], d["sample_call_seconds"]) == (1.5, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_unconverged(d)


def test_diagnostics_detect_stuck_chains_and_divergences():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(4, 500)) + np.array([0, 0, 0, 5])[:, None]  # one chain elsewhere
    diverging = np.zeros((4, 500), bool)
    diverging[0, :3] = True
    d = convergence_diagnostics(_idata(values, diverging))
    assert d["max_rhat"] > 1.5 and d["divergences"] == 3
    with pytest.warns(SamplingWarning, match=r"3 divergent transitions; max R-hat .* > 1.01"):
        warn_if_unconverged(d)


def test_single_chain_has_no_rhat_but_ess():
    rng = np.random.default_rng(2)
    d = convergence_diagnostics(_idata(rng.normal(size=(1, 300)), np.zeros((1, 300), bool)))
    assert np.isnan(d["max_rhat"]) and d["min_ess_bulk"] > 100


# --- sampler backends ------------------------------------------------------------------

SAMPLER_FAST = dict(draws=200, tune=200, chains=2, progressbar=False, random_state=1)


def test_advi_is_an_approximation_with_the_same_layout(simulated):
    from hierreg import HierarchicalLinearRegression

    frame, truth = simulated
    est = HierarchicalLinearRegression(
        "y ~ x", group="g", sampler="advi", sample_kwargs={"n": 5000}, **SAMPLER_FAST
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)  # never warns: not MCMC
        est.fit(frame)
    d = est.diagnostics_
    assert d["sampler"] == "advi" and d["approximate"] is True
    assert est.idata_["posterior"]["beta"].shape == (2, 200, 8, 2)
    assert est.idata_["posterior"].attrs["approximation"] == "advi"
    # the approximation is near the truth (mean-field: means good, sds too small)
    assert np.abs(est.coef_.values - truth.values).mean() < 0.25
    interval = est.predict_interval(frame.head(3))
    assert (interval["upper"] > interval["lower"]).all()


def test_nuts_is_labelled_as_exact(radon_fits):
    d = radon_fits["partial"].diagnostics_
    assert d["sampler"] == "nutpie" and d["approximate"] is False


def test_missing_jax_names_the_extra(simulated, monkeypatch, no_sampling):
    import importlib.util

    from hierreg import HierarchicalLinearRegression

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("jax", "numpyro") else real(name, *a),
    )
    frame, _ = simulated
    est = HierarchicalLinearRegression("y ~ x", group="g", sampler="numpyro")
    with pytest.raises(ImportError, match=r"needs jax, numpyro .* pip install 'hierreg\[jax\]'"):
        est.fit(frame)
    assert not hasattr(est, "idata_")


@pytest.mark.parametrize("sampler", ["numpyro", "blackjax"])
def test_jax_samplers_give_the_same_posterior(simulated, sampler, radon_fits):
    """Runs where the "jax" extra is installed (pip install 'hierreg[jax]')."""
    pytest.importorskip(sampler)
    from hierreg import HierarchicalLinearRegression

    frame, _ = simulated
    fits = {
        s: HierarchicalLinearRegression("y ~ x", group="g", sampler=s, **SAMPLER_FAST).fit(frame)
        for s in (sampler, "nutpie")
    }
    beta = {s: f.idata_["posterior"]["beta"] for s, f in fits.items()}
    assert beta[sampler].shape == beta["nutpie"].shape
    sd = beta["nutpie"].std(("chain", "draw")).values
    diff = (
        beta[sampler].mean(("chain", "draw")).values - beta["nutpie"].mean(("chain", "draw")).values
    )
    assert np.all(np.abs(diff) < 0.5 * sd + 0.05)  # Monte Carlo error of 400 draws, generously
    assert fits[sampler].diagnostics_["sampler"] == sampler


def test_missing_pymc_extras_names_the_pathfinder_extra(simulated, monkeypatch, no_sampling):
    import importlib.util

    from hierreg import HierarchicalLinearRegression

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pymc_extras" else real(name, *a),
    )
    frame, _ = simulated
    est = HierarchicalLinearRegression("y ~ x", group="g", sampler="pathfinder")
    with pytest.raises(ImportError, match=r"needs pymc_extras .* 'hierreg\[pathfinder\]'"):
        est.fit(frame)


def test_pathfinder_is_an_approximation_with_the_same_layout(simulated):
    """Runs where the "pathfinder" extra is installed (pip install 'hierreg[pathfinder]')."""
    pytest.importorskip("pymc_extras")
    from hierreg import HierarchicalLinearRegression

    frame, truth = simulated
    est = HierarchicalLinearRegression("y ~ x", group="g", sampler="pathfinder", **SAMPLER_FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # a large Pareto k warns
        est.fit(frame)
    d = est.diagnostics_
    assert d["sampler"] == "pathfinder" and d["approximate"] is True
    assert np.isfinite(d["pareto_k"])
    assert est.idata_["posterior"]["beta"].shape == (2, 200, 8, 2)
    assert np.abs(est.coef_.values - truth.values).mean() < 0.25


def test_pathfinder_warns_on_a_large_pareto_k():
    d = {"approximate": True, "pareto_k": 1.3}
    with pytest.warns(SamplingWarning, match=r"Pareto k is 1.30 > 0.7"):
        warn_if_unconverged(d)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)
        warn_if_unconverged({"approximate": True, "pareto_k": 0.5})
