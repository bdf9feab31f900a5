"""parametrization="collapsed": group effects (and normal population coefficients) integrated
out exactly, drawn afterwards from their conditional normals."""

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats

from hierreg import HierarchicalLinearRegression
from hierreg.model.collapsed import (
    collapsed_log_likelihood,
    columnwise_log_likelihood,
    conditional_offsets,
    conditional_population,
)
from hierreg.model.sufficient import SufficientStatistics
from tests.conftest import fit_quietly, simulate_groups


def _groups(n_terms=3, n_groups=4, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 7, n_groups)
    X = [np.column_stack([np.ones(s), rng.normal(size=(s, n_terms - 1))]) for s in sizes]
    y = [rng.normal(size=s) + x @ rng.normal(size=n_terms) for s, x in zip(sizes, X, strict=True)]
    g = np.repeat(np.arange(n_groups), sizes)
    stats_ = SufficientStatistics.from_arrays(np.vstack(X), np.concatenate(y), g, n_groups)
    return X, y, stats_


def _dense(X, y, m, varying, tau, sigma):
    """Sum over groups of log N(y_g; X_g m, sigma^2 I + Z_g diag(tau^2) Z_g')."""
    total = 0.0
    for x, yy in zip(X, y, strict=True):
        z = x[:, varying]
        cov = sigma**2 * np.eye(len(yy)) + z @ np.diag(tau**2) @ z.T
        total += stats.multivariate_normal(x @ m, cov).logpdf(yy)
    return total


def _entries(s):
    """``X'y`` and ``X'X`` as the entry-by-entry form takes them: one vector per entry."""
    n_terms = s.xty.shape[1]
    xty = [pt.as_tensor(s.xty[:, k]) for k in range(n_terms)]
    xtx = {(k, j): pt.as_tensor(s.xtx[:, k, j]) for k in range(n_terms) for j in range(k, n_terms)}
    return xty, xtx


def _eval(expr):
    return float(expr.eval(mode="FAST_COMPILE"))


@pytest.mark.parametrize("varying", [[0], [0, 2], [0, 1, 2]], ids=["k=1", "k=2", "k=3"])
def test_the_collapsed_log_density_is_the_dense_multivariate_normal(varying):
    X, y, s = _groups()
    varying = np.array(varying)
    m, tau, sigma = np.array([0.5, -1.0, 2.0]), np.array([0.7, 0.3, 1.2])[: len(varying)], 0.8
    want = _dense(X, y, m, varying, tau, sigma)
    got = collapsed_log_likelihood(
        pt.as_tensor(s.n), pt.as_tensor(s.yty), pt.as_tensor(s.xty), pt.as_tensor(s.xtx),
        varying, pt.as_tensor(tau), pt.as_tensor(sigma), coefficients=pt.as_tensor(m),
    )  # fmt: skip
    assert _eval(got) == pytest.approx(want, abs=1e-8)
    if len(varying) <= 2:
        xty, xtx = _entries(s)
        entrywise = columnwise_log_likelihood(
            pt.as_tensor(s.n), pt.as_tensor(s.yty), xty, xtx, varying, pt.as_tensor(tau),
            pt.as_tensor(sigma), coefficients=[pt.as_tensor(v) for v in m],
        )  # fmt: skip
        assert _eval(entrywise) == pytest.approx(want, abs=1e-8)


@pytest.mark.parametrize("varying", [[0], [0, 2], [0, 1, 2]], ids=["k=1", "k=2", "k=3"])
def test_integrating_the_population_coefficients_is_exact(varying):
    """Against the dense marginal N(X m0, sigma^2 I + Z T Z' + X S0 X') of all rows."""
    X, y, s = _groups()
    varying = np.array(varying)
    tau, sigma = np.array([0.7, 0.3, 1.2])[: len(varying)], 0.8
    m0, s0 = np.array([0.2, 0.0, -0.5]), np.array([2.0, 1.5, 3.0])
    Xall, yall = np.vstack(X), np.concatenate(y)
    blocks = [x[:, varying] @ np.diag(tau**2) @ x[:, varying].T for x in X]
    cov = sigma**2 * np.eye(len(yall)) + Xall @ np.diag(s0**2) @ Xall.T
    start = 0
    for b in blocks:
        cov[start : start + len(b), start : start + len(b)] += b
        start += len(b)
    want = stats.multivariate_normal(Xall @ m0, cov).logpdf(yall)
    args = (pt.as_tensor(s.n), pt.as_tensor(s.yty))
    got = collapsed_log_likelihood(
        *args, pt.as_tensor(s.xty), pt.as_tensor(s.xtx), varying, pt.as_tensor(tau),
        pt.as_tensor(sigma), prior_mean=pt.as_tensor(m0), prior_sd=pt.as_tensor(s0),
    )  # fmt: skip
    assert _eval(got) == pytest.approx(want, abs=1e-8)
    if len(varying) <= 2:
        xty, xtx = _entries(s)
        entrywise = columnwise_log_likelihood(
            *args, xty, xtx, varying, pt.as_tensor(tau), pt.as_tensor(sigma),
            prior_mean=pt.as_tensor(m0), prior_sd=pt.as_tensor(s0),
        )  # fmt: skip
        assert _eval(entrywise) == pytest.approx(want, abs=1e-8)


def test_conditional_draws_have_the_gaussian_conditioning_moments():
    """Offsets u_g and population coefficients given (tau, sigma): sample moments against
    the joint-Gaussian conditioning formulas on the dense covariance (no Woodbury)."""
    X, y, s = _groups(n_groups=2, seed=3)
    varying = np.array([0, 2])
    tau, sigma = np.array([0.7, 1.2]), 0.8
    m0, s0 = np.array([0.2, 0.0, -0.5]), np.array([2.0, 1.5, 3.0])
    n = 20000
    rng = np.random.default_rng(0)
    pop = conditional_population(s, varying, np.tile(tau, (n, 1)), np.full(n, sigma), m0, s0, rng)
    Xall, yall = np.vstack(X), np.concatenate(y)
    Z = np.zeros((len(yall), 2 * len(varying)))  # block-diagonal Z D for both groups
    start = 0
    for g, x in enumerate(X):
        Z[start : start + len(x), 2 * g : 2 * g + 2] = x[:, varying] * tau
        start += len(x)
    cov_y = sigma**2 * np.eye(len(yall)) + Z @ Z.T + Xall @ np.diag(s0**2) @ Xall.T
    cross = np.diag(s0**2) @ Xall.T  # Cov(m, y)
    mean_m = m0 + cross @ np.linalg.solve(cov_y, yall - Xall @ m0)
    cov_m = np.diag(s0**2) - cross @ np.linalg.solve(cov_y, cross.T)
    se = np.sqrt(np.diag(cov_m) / n)
    assert np.all(np.abs(pop.mean(axis=0) - mean_m) < 4.5 * se)
    np.testing.assert_allclose(np.cov(pop.T), cov_m, rtol=0.05, atol=0.02 * cov_m.max())
    # offsets given m fixed at its mean: Cov(u, y) = (Z D)', Var(y | m) = sigma^2 I + Z D D Z'
    fixed = np.tile(mean_m, (n, 1))
    u = conditional_offsets(s, fixed, varying, np.tile(tau, (n, 1)), np.full(n, sigma), rng)
    cov_y_m = sigma**2 * np.eye(len(yall)) + Z @ Z.T
    mean_u = Z.T @ np.linalg.solve(cov_y_m, yall - Xall @ mean_m)
    cov_u = np.eye(Z.shape[1]) - Z.T @ np.linalg.solve(cov_y_m, Z)
    flat = u.reshape(n, -1)
    assert np.all(np.abs(flat.mean(axis=0) - mean_u) < 4.5 * np.sqrt(np.diag(cov_u) / n))
    np.testing.assert_allclose(np.cov(flat.T), cov_u, rtol=0.05, atol=0.02)


@pytest.fixture(scope="module")
def dyestuff_like():
    """6 batches of 5 (lme4's Dyestuff shape): the between-batch sd is poorly identified."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"batch": np.repeat(list("ABCDEF"), 5)})
    effects = rng.normal(0, 43, 6)
    frame["yield_"] = 1527 + effects[np.repeat(np.arange(6), 5)] + rng.normal(0, 50, 30)
    return frame


def test_small_groups_sample_without_divergences_and_nearly_independently(dyestuff_like):
    est = HierarchicalLinearRegression(
        "yield_ ~ 1", group="batch", parametrization="collapsed", random_state=0,
        progressbar=False,
    )  # fmt: skip
    fit_quietly(est, dyestuff_like)
    d = est.diagnostics_
    assert d["divergences"] == 0 and d["max_rhat"] < 1.01
    assert d["min_ess_bulk"] >= 2000  # at least half of the 4000 draws, z and mu included
    assert set(est.idata_["posterior"].data_vars) >= {"mu", "tau", "sigma", "z", "beta"}


@pytest.mark.slow
def test_the_collapsed_posterior_is_the_full_models():
    frame, _ = simulate_groups(n_groups=12, n_per_group=8, seed=2)
    fits = {}
    for p in ("noncentered", "collapsed"):
        est = HierarchicalLinearRegression(
            "y ~ x", group="g", parametrization=p, draws=2000, random_state=4, progressbar=False
        )
        fits[p] = fit_quietly(est, frame).idata_["posterior"]
    import arviz as az

    for name in ("beta", "mu", "tau", "sigma"):
        a, b = fits["noncentered"][name], fits["collapsed"][name]
        diff = np.abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw"))).values
        mcse = np.sqrt(
            az.mcse(a.to_dataset(name="v"))["v"].values ** 2
            + az.mcse(b.to_dataset(name="v"))["v"].values ** 2
        )
        assert np.all(diff < 4.5 * mcse), name


@pytest.mark.parametrize(
    "params, match",
    [
        ({"likelihood": "student_t"}, "likelihood='student_t'"),
        ({"covariance": "full"}, "covariance='full'"),
        ({"group_noise": True}, "group_noise=True"),
    ],
)
def test_what_cannot_be_collapsed_is_an_error_before_sampling(no_sampling, params, match):
    frame, _ = simulate_groups(n_groups=4, n_per_group=5, seed=1)
    est = HierarchicalLinearRegression(
        "y ~ x", group="g", parametrization="collapsed", progressbar=False, **params
    )
    with pytest.raises(ValueError, match=match):
        est.fit(frame)


def test_a_collapsed_fit_predicts_saves_and_loads(tmp_path):
    frame, _ = simulate_groups(n_groups=5, n_per_group=10, seed=6)
    est = fit_quietly(
        HierarchicalLinearRegression(
            "y ~ x", group="g", parametrization="collapsed", draws=200, tune=200, chains=2,
            random_state=0, progressbar=False,
        ),
        frame,
    )  # fmt: skip
    assert est.structure_.likelihood_mode == "sufficient"
    est.save(tmp_path / "m")
    back = HierarchicalLinearRegression.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(frame), est.predict(frame))
    assert "log_likelihood" in est.idata_  # LOO works as for any fit
