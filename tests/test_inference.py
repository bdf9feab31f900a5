import warnings

import numpy as np
import pytest
import xarray as xr

from hierreg.inference import SamplingWarning, convergence_diagnostics, warn_if_unconverged


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
