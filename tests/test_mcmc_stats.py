"""hierreg.sampling.mcmc_stats gives ArviZ's R-hat and ESS numbers, vectorised over parameters."""

import warnings

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr
from arviz_stats.base import array_stats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri
from scipy.stats import rankdata

from hierreg.sampling import mcmc_stats
from hierreg.sampling.diagnostics import convergence_diagnostics


def _ar1(rng, shape, phi):
    """AR(1) chains, one autocorrelation per parameter (phi has shape (parameters,))."""
    noise = rng.normal(size=shape)
    x = np.zeros(shape)
    for t in range(1, shape[2]):
        x[..., t] = phi[:, None] * x[..., t - 1] + noise[..., t]
    return x


def _cases():
    rng = np.random.default_rng(0)
    stuck = np.concatenate(
        [rng.normal(size=(6, 2, 200)), rng.normal(3.0, 1.0, size=(6, 2, 200))], axis=1
    )
    return {
        "iid": rng.normal(size=(20, 4, 1000)),
        "autocorrelated": _ar1(rng, (25, 4, 600), np.linspace(-0.6, 0.99, 25)),
        "odd draws": _ar1(rng, (10, 3, 101), np.linspace(0.0, 0.95, 10)),
        "short": rng.normal(size=(10, 2, 7)),
        "stuck chains": stuck,
        "ties": rng.integers(0, 3, size=(8, 4, 100)).astype(float),
        "one chain": _ar1(rng, (5, 1, 500), np.linspace(0.0, 0.9, 5)),
        "constant": np.ones((2, 4, 100)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_same_numbers_as_arviz(name):
    draws = _cases()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = np.array([float(array_stats.rhat(d, method="rank")) for d in draws])
        bulk = np.array([float(array_stats.ess(d, method="bulk")) for d in draws])
        tail = np.array(
            [float(array_stats.ess(d, method="tail", prob=(0.05, 0.95))) for d in draws]
        )
    stats = mcmc_stats.convergence_statistics(draws)
    np.testing.assert_allclose(stats["rhat"], rhat, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(stats["ess_bulk"], bulk, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(stats["ess_tail"], tail, rtol=1e-10, equal_nan=True)
    np.testing.assert_array_equal(mcmc_stats.rhat_rank(draws), stats["rhat"])
    np.testing.assert_array_equal(mcmc_stats.ess_bulk(draws), stats["ess_bulk"])


def test_diagnostics_over_a_multidimensional_posterior_match_arviz():
    rng = np.random.default_rng(3)
    z = _ar1(rng, (12, 4, 400), np.linspace(0.0, 0.97, 12)).reshape(3, 4, 4, 400)
    posterior = xr.Dataset(
        {
            "z": (("county", "term", "chain", "draw"), z),
            "sigma": (("chain", "draw"), rng.gamma(5.0, size=(4, 400))),
        },
        coords={"chain": np.arange(4), "draw": np.arange(400)},
    ).transpose("chain", "draw", ...)
    tree = xr.DataTree.from_dict({"posterior": posterior})
    d = convergence_diagnostics(tree)
    assert d["max_rhat"] == pytest.approx(
        max(float(v.max()) for v in azs.rhat(posterior).data_vars.values()), rel=1e-10
    )
    # tail ESS as defined by Vehtari et al. (2021) and Stan: the 5% and 95% quantiles (ArviZ
    # 1.x's own default ties them to its display setting stats.ci_prob)
    for method, prob in (("bulk", None), ("tail", (0.05, 0.95))):
        ess = azs.ess(posterior, method=method, prob=prob)
        ref = min(float(v.min()) for v in ess.data_vars.values())
        assert d[f"min_ess_{method}"] == pytest.approx(ref, rel=1e-10)


def test_non_finite_draws_give_nan_for_that_parameter_only():
    draws = np.random.default_rng(4).normal(size=(3, 4, 100))
    draws[1, 2, 50] = np.nan
    stats = mcmc_stats.convergence_statistics(draws)
    for values in stats.values():
        assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all()


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(parameters, chains, draws\)"):
        mcmc_stats.rhat_rank(np.zeros((4, 100)))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(-3, 3), min_size=1, max_size=30), min_size=1, max_size=5).map(
        lambda rows: [r + [0] * (30 - len(r)) for r in rows]
    )
)
def test_normal_scores_are_blom_scores_of_scipy_average_ranks(rows):
    values = np.array(rows, dtype=float)
    order = np.argsort(values, axis=1)
    scores = mcmc_stats._normal_scores(np.take_along_axis(values, order, axis=1), order)
    n = values.shape[1]
    expected = ndtri((rankdata(values, axis=1) - 3 / 8) / (n - 2 * 3 / 8 + 1))
    np.testing.assert_array_equal(scores, expected)


@pytest.mark.parametrize("n_draws", [300, 301])
def test_blocks_and_threads_give_the_numbers_of_one_pass(monkeypatch, n_draws):
    draws = _ar1(np.random.default_rng(5), (70, 4, n_draws), np.linspace(0.0, 0.98, 70))
    draws[[3, 40], :, :10] = 1.0  # ties in some blocks only
    whole = mcmc_stats._statistics(draws)
    monkeypatch.setattr(mcmc_stats, "BLOCK_ELEMENTS", 9 * 4 * n_draws)  # 9 parameters a block
    monkeypatch.setattr(mcmc_stats.os, "cpu_count", lambda: 3)
    blocked = mcmc_stats.convergence_statistics(draws)
    for key, values in whole.items():
        np.testing.assert_array_equal(blocked[key], values)
        assert blocked[key].shape == (70,)
