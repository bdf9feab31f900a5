"""The PyMC graph for each pooling mode: variables, dims and coordinates."""

import numpy as np
import pytest

from hierreg.design.build import build_design
from hierreg.model.graph import build_model
from hierreg.model.priors import default_priors
from hierreg.model.structure import ModelStructure, unflatten
from tests.conftest import logp_fn


@pytest.fixture(scope="module")
def radon_design(radon):
    return build_design(radon, None, formula="log_radon ~ floor", group="county")


def _model(design, pooling, varying=(True, True), **kw):
    priors = default_priors(design.X, design.y, design.spec.terms)
    return build_model(design, ModelStructure(pooling, varying, **kw), priors)


def _dims(model, name):
    return model.named_vars_to_dims.get(name)


def test_complete(radon_design):
    m = _model(radon_design, "complete", (False, False))
    assert {v.name for v in m.free_RVs} == {"beta", "sigma"}
    assert _dims(m, "beta") == ("term",)
    assert list(m.coords["term"]) == ["Intercept", "floor"]


def test_none_is_one_model_with_county_by_term_array(radon_design):
    m = _model(radon_design, "none")
    assert {v.name for v in m.free_RVs} == {"beta", "sigma"}
    # one flat county-by-term vector, term-major: term j of county g at j * 85 + g
    assert _dims(m, "beta") == ("group_term",)
    assert len(m.coords["county"]) == 85
    assert m.coords["county"][10] == "CASS"
    assert tuple(m.initial_point()["beta"].shape) == (85 * 2,)


def test_partial_noncentered(radon_design):
    m = _model(radon_design, "partial")
    assert {v.name for v in m.free_RVs} == {"mu", "tau", "z", "sigma"}
    assert _dims(m, "z") == ("group_term",)
    assert not m.deterministics  # beta = mu + tau * z is assembled after sampling


def test_partial_centered(radon_design):
    m = _model(radon_design, "partial", parametrization="centered")
    assert {v.name for v in m.free_RVs} == {"mu", "tau", "beta", "sigma"}


def test_varying_intercept_only(radon_design):
    m = _model(radon_design, "partial", (True, False))
    free = {v.name for v in m.free_RVs}
    assert free == {"mu", "tau", "z", "beta_common", "sigma"}
    assert _dims(m, "z") == ("group_term",) and len(m.coords["group_term"]) == 85
    assert list(m.coords["varying_term"]) == ["Intercept"]
    assert list(m.coords["common_term"]) == ["floor"]


def test_group_noise(radon_design):
    m = _model(radon_design, "none", group_noise=True)
    assert _dims(m, "sigma") == ("county",)


def test_logp_matches_hand_computation(radon_design):
    """The model's log-density equals a direct scipy evaluation at a random point."""
    from scipy import stats

    d = radon_design
    m = _model(d, "none")
    priors = default_priors(d.X, d.y, d.spec.terms)
    rng = np.random.default_rng(3)
    beta = rng.normal(size=(85, 2))
    sigma = 0.7
    flat = beta.T.ravel()  # term-major
    np.testing.assert_array_equal(unflatten(flat, 85), beta)
    logp = logp_fn(m, jacobian=True)({"beta": flat, "sigma_log__": np.log(sigma)})
    mu = np.einsum("ij,ij->i", d.X, beta[d.group_index])
    expected = (
        stats.norm.logpdf(d.y, mu, sigma).sum()
        + stats.norm.logpdf(beta, priors.loc, priors.scale).sum()
        + stats.expon.logpdf(sigma, scale=1 / priors.sigma_rate)
        + np.log(sigma)  # log-transform jacobian
    )
    assert logp == pytest.approx(expected, rel=1e-10)


def test_partial_logp_matches_hand_computation(radon_design):
    """Non-centred partial pooling: beta[g, k] = mu[k] + tau[k] * z[g, k] in the likelihood."""
    from scipy import stats

    d = radon_design
    m = _model(d, "partial")
    priors = default_priors(d.X, d.y, d.spec.terms)
    rng = np.random.default_rng(4)
    mu, tau, z, sigma = rng.normal(size=2), np.array([0.3, 0.6]), rng.normal(size=(85, 2)), 0.8
    point = {
        "mu": mu,
        "tau_log__": np.log(tau),
        "z": z.T.ravel(),
        "sigma_log__": np.log(sigma),
    }
    logp = logp_fn(m, jacobian=True)(point)
    beta = mu + tau * z
    expected = (
        stats.norm.logpdf(d.y, np.einsum("ij,ij->i", d.X, beta[d.group_index]), sigma).sum()
        + stats.norm.logpdf(mu, priors.loc, priors.scale).sum()
        + stats.halfnorm.logpdf(tau, scale=priors.group_sd_scale).sum()
        + stats.norm.logpdf(z).sum()
        + stats.expon.logpdf(sigma, scale=1 / priors.sigma_rate)
        + np.log(tau).sum()
        + np.log(sigma)
    )
    assert logp == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("n_predictors", [2, 11])  # term by term, and one matrix product
def test_complete_logp_matches_hand_computation(n_predictors):
    import pandas as pd
    from scipy import stats

    rng = np.random.default_rng(6)
    frame = pd.DataFrame(
        rng.normal(size=(40, n_predictors)), columns=[f"x{j}" for j in range(n_predictors)]
    )
    frame["y"] = rng.normal(size=40)
    d = build_design(frame, None, formula="y ~ " + " + ".join(frame.columns[:-1]), group=None)
    m = _model(d, "complete", (False,) * (n_predictors + 1))
    priors = default_priors(d.X, d.y, d.spec.terms)
    beta, sigma = rng.normal(size=n_predictors + 1), 0.9
    logp = logp_fn(m, jacobian=True)({"beta": beta, "sigma_log__": np.log(sigma)})
    expected = (
        stats.norm.logpdf(d.y, d.X @ beta, sigma).sum()
        + stats.norm.logpdf(beta, priors.loc, priors.scale).sum()
        + stats.expon.logpdf(sigma, scale=1 / priors.sigma_rate)
        + np.log(sigma)
    )
    assert logp == pytest.approx(expected, rel=1e-10)
