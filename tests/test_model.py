"""The PyMC graph for each pooling mode: variables, dims and coordinates."""

import numpy as np
import pytest

from hierreg.design import build_design
from hierreg.model import ModelStructure, build_model
from hierreg.priors import default_priors


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
    assert _dims(m, "beta") == ("county", "term")
    assert len(m.coords["county"]) == 85
    assert m.coords["county"][10] == "CASS"
    assert tuple(m.initial_point()["beta"].shape) == (85, 2)


def test_partial_noncentered(radon_design):
    m = _model(radon_design, "partial")
    assert {v.name for v in m.free_RVs} == {"mu", "tau", "z", "sigma"}
    assert _dims(m, "z") == ("county", "term")
    assert not m.deterministics  # beta = mu + tau * z is assembled after sampling


def test_partial_centered(radon_design):
    m = _model(radon_design, "partial", parametrization="centered")
    assert {v.name for v in m.free_RVs} == {"mu", "tau", "beta", "sigma"}


def test_varying_intercept_only(radon_design):
    m = _model(radon_design, "partial", (True, False))
    free = {v.name for v in m.free_RVs}
    assert free == {"mu", "tau", "z", "beta_common", "sigma"}
    assert _dims(m, "z") == ("county", "varying_term")
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
    logp = m.compile_logp(jacobian=True)({"beta": beta, "sigma_log__": np.log(sigma)})
    mu = np.einsum("ij,ij->i", d.X, beta[d.group_index])
    expected = (
        stats.norm.logpdf(d.y, mu, sigma).sum()
        + stats.norm.logpdf(beta, priors.loc, priors.scale).sum()
        + stats.expon.logpdf(sigma, scale=1 / priors.sigma_rate)
        + np.log(sigma)  # log-transform jacobian
    )
    assert logp == pytest.approx(expected, rel=1e-10)
