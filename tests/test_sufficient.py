"""Sufficient-statistics likelihood: exactly the row-wise model, with a row-free gradient."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierreg import HierarchicalLinearRegression
from hierreg.design.build import build_design
from hierreg.model.graph import build_model
from hierreg.model.priors import default_priors
from hierreg.model.standardize import Standardization
from hierreg.model.structure import ModelStructure
from hierreg.model.sufficient import SufficientStatistics, choose_likelihood_mode
from tests.conftest import FAST, dlogp_fn, fit_quietly, logp_fn


def _loop_statistics(X, y, g, n_groups):
    n = np.zeros(n_groups)
    xtx = np.zeros((n_groups, X.shape[1], X.shape[1]))
    xty = np.zeros((n_groups, X.shape[1]))
    yty = np.zeros(n_groups)
    for j in range(n_groups):
        rows = g == j
        n[j], xtx[j], xty[j], yty[j] = (
            rows.sum(),
            X[rows].T @ X[rows],
            X[rows].T @ y[rows],
            y[rows] @ y[rows],
        )
    return n, xtx, xty, yty


def test_statistics_equal_the_per_group_products():
    rng = np.random.default_rng(0)
    X, y, g = rng.normal(size=(200, 3)), rng.normal(size=200), rng.integers(0, 7, size=200)
    stats = SufficientStatistics.from_arrays(X, y, g, 7)
    for got, want in zip(
        (stats.n, stats.xtx, stats.xty, stats.yty), _loop_statistics(X, y, g, 7), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 59))
def test_statistics_of_disjoint_blocks_add_up(seed, cut):
    rng = np.random.default_rng(seed)
    X, y, g = rng.normal(size=(60, 2)), rng.normal(size=60), rng.integers(0, 5, size=60)
    whole = SufficientStatistics.from_arrays(X, y, g, 5)
    parts = SufficientStatistics.from_arrays(X[:cut], y[:cut], g[:cut], 5)
    parts = parts + SufficientStatistics.from_arrays(X[cut:], y[cut:], g[cut:], 5)
    for a, b in zip(
        (whole.n, whole.xtx, whole.xty, whole.yty),
        (parts.n, parts.xtx, parts.xty, parts.yty),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_statistics_errors():
    stats = SufficientStatistics.from_arrays(np.ones((3, 2)), np.ones(3), None)
    with pytest.raises(ValueError, match="cannot add statistics of shapes"):
        stats + SufficientStatistics.from_arrays(np.ones((3, 1)), np.ones(3), None)
    with pytest.raises(ValueError, match=r"group_index must lie in \[0, 2\)"):
        SufficientStatistics.from_arrays(np.ones((3, 1)), np.ones(3), np.array([0, 1, 2]), 2)


def _loglik_from_statistics(stats, beta, sigma):
    """The normal log-likelihood written with the statistics alone (the algebra the model's
    sufficient form uses): sum_g -n_g log(sigma_g sqrt(2 pi)) - SSR_g / (2 sigma_g^2)."""
    quad = np.einsum("gk,gkl,gl->g", beta, stats.xtx, beta)
    ssr = stats.yty - 2.0 * np.einsum("gk,gk->g", beta, stats.xty) + quad
    return float(
        np.sum(-stats.n * (np.log(sigma) + 0.5 * np.log(2 * np.pi)) - ssr / (2 * sigma**2))
    )


def test_statistics_give_the_pointwise_log_likelihood_summed():
    from hierreg.results.predict import PosteriorArrays, log_likelihood

    rng = np.random.default_rng(1)
    X, y, g = rng.normal(size=(50, 2)), rng.normal(size=50), rng.integers(0, 4, size=50)
    beta, sigma = rng.normal(size=(4, 2)), rng.uniform(0.5, 2, size=4)
    post = PosteriorArrays(beta=beta[None], population=None, tau=None, sigma=sigma[None])
    pointwise = log_likelihood(X, y, g, post)
    stats = SufficientStatistics.from_arrays(X, y, g, 4)
    assert _loglik_from_statistics(stats, beta, sigma) == pytest.approx(pointwise.sum(), rel=1e-12)


def _wide_design(n_terms=10, seed=3):
    """More terms than the column-wise graph handles (the matrix form is used)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(120, n_terms - 1)), columns=[f"x{k}" for k in range(n_terms - 1)]
    )
    frame["g"] = rng.choice(list("abcde"), size=120)
    frame["y"] = frame.iloc[:, 0] + rng.normal(size=120)
    formula = "y ~ " + " + ".join(frame.columns[: n_terms - 1])
    return build_design(frame, None, formula=formula, group="g")


CASES = [
    ("complete", None, {}),
    ("none", None, {}),
    ("none", (True, False), {"group_noise": True}),
    ("partial", None, {}),
    ("partial", None, {"parametrization": "centered"}),
    ("partial", (True, False), {"group_noise": True}),
]


@pytest.mark.parametrize("wide", [False, True], ids=["radon", "10-terms"])
@pytest.mark.parametrize(("pooling", "varying", "extra"), CASES)
def test_log_density_and_gradient_equal_the_row_wise_model(radon, wide, pooling, varying, extra):
    design = (
        _wide_design()
        if wide
        else build_design(radon, None, formula="log_radon ~ floor", group="county")
    )
    if pooling == "complete":
        design = replace(design, group_index=None)
    n_terms = len(design.spec.terms)
    varying = (
        (pooling != "complete",) * n_terms
        if varying is None
        else varying + (False,) * (n_terms - 2)
    )
    units = Standardization.from_design(design)
    priors = units.priors(default_priors(design.X, design.y, design.spec.terms))
    models = [
        build_model(
            units.design(design),
            ModelStructure(pooling, varying, likelihood_mode=m, **extra),
            priors,
        )
        for m in ("rows", "sufficient")
    ]
    assert "y" in models[0].named_vars and "y" not in models[1].named_vars
    logps = [logp_fn(m) for m in models]
    grads = [dlogp_fn(m) for m in models]
    rng = np.random.default_rng(7)
    for _ in range(5):
        point = {k: rng.normal(size=v.shape) for k, v in models[0].initial_point().items()}
        assert logps[1](point) == pytest.approx(logps[0](point), rel=1e-8)
        np.testing.assert_allclose(grads[1](point), grads[0](point), rtol=1e-8, atol=1e-8)


def test_auto_picks_the_cheaper_gradient():
    assert choose_likelihood_mode("auto", 919, 85, 2) == "sufficient"  # 1838 vs 340 per gradient
    assert choose_likelihood_mode("auto", 100, 50, 2) == "rows"  # a row or two per group
    assert choose_likelihood_mode("auto", 1_000_000, 1000, 2) == "sufficient"
    assert choose_likelihood_mode("rows", 1_000_000, 1000, 2) == "rows"
    assert choose_likelihood_mode("sufficient", 10, 10, 2) == "sufficient"


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["none", "partial"])
def test_posterior_means_agree_within_monte_carlo_error(simulated, pooling):
    frame, _ = simulated
    fits = {
        mode: fit_quietly(
            HierarchicalLinearRegression(
                "y ~ x", group="g", pooling=pooling, likelihood_mode=mode, **{**FAST, "draws": 500}
            ),
            frame,
        )
        for mode in ("rows", "sufficient")
    }
    assert fits["rows"].structure_.likelihood_mode == "rows"
    assert fits["sufficient"].structure_.likelihood_mode == "sufficient"
    beta = {m: f.idata_["posterior"]["beta"] for m, f in fits.items()}
    mean = {m: b.mean(("chain", "draw")).values for m, b in beta.items()}
    # Monte Carlo sd of each mean, generously from the posterior sd over 200 effective draws
    mcse = np.hypot(*(b.std(("chain", "draw")).values / np.sqrt(200) for b in beta.values()))
    assert np.all(np.abs(mean["rows"] - mean["sufficient"]) < 4 * mcse)
    # predictions and the stored log-likelihood come from the same data either way
    assert fits["sufficient"].idata_["log_likelihood"]["y"].shape == (2, 500, len(frame))
    np.testing.assert_allclose(fits["sufficient"].idata_["observed_data"]["y"].values, frame["y"])


def test_store_log_likelihood_auto_skips_huge_tables(simulated, monkeypatch):
    import hierreg.results.posterior as posterior_module

    frame, _ = simulated
    monkeypatch.setattr(posterior_module, "LOG_LIKELIHOOD_AUTO_MAX", 2 * 50 * len(frame) - 1)
    small = dict(FAST, draws=50, tune=50)
    auto = fit_quietly(HierarchicalLinearRegression("y ~ x", group="g", **small), frame)
    assert "log_likelihood" not in auto.idata_
    forced = HierarchicalLinearRegression("y ~ x", group="g", store_log_likelihood=True, **small)
    assert "log_likelihood" in fit_quietly(forced, frame).idata_
    with pytest.raises(TypeError, match="store_log_likelihood must be True, False or 'auto'"):
        HierarchicalLinearRegression("y ~ x", group="g", store_log_likelihood="yes").fit(frame)
    with pytest.raises(ValueError, match="likelihood_mode='fast' is not one of"):
        HierarchicalLinearRegression("y ~ x", group="g", likelihood_mode="fast").fit(frame)
