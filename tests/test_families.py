"""Likelihood families: each implements the interface, and matches scipy."""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from hierreg.model.families import FAMILIES, LIKELIHOODS, Family, Normal, StudentT, family
from tests.conftest import logp_fn


def test_registry_and_names():
    assert LIKELIHOODS == ("normal", "student_t")
    assert isinstance(family("normal"), Normal) and isinstance(family("student_t"), StudentT)
    assert all(isinstance(f, Family) and f.name == name for name, f in FAMILIES.items())
    assert family("normal").sufficient_statistics and not family("student_t").sufficient_statistics
    assert set(family("student_t").priors) == {"nu"} and not family("normal").priors


@pytest.mark.parametrize("name", LIKELIHOODS)
def test_log_density_of_squares_is_the_scipy_density(name):
    rng = np.random.default_rng(0)
    r = rng.normal(size=(3, 7))
    nu = np.array([[1.5], [4.0], [30.0]])
    params = {"nu": nu} if name == "student_t" else {}
    squares = r**2
    family(name).log_density_of_squares(params)(squares)
    want = stats.norm.logpdf(r) if name == "normal" else stats.t.logpdf(r, df=nu)
    np.testing.assert_allclose(squares, want, rtol=1e-12)


def test_variance_factor_and_noise():
    assert family("normal").variance_factor({}) is None
    factor = family("student_t").variance_factor({"nu": np.array([1.5, 2.0, 4.0])})
    np.testing.assert_array_equal(factor, [np.inf, np.inf, 2.0])
    rng = np.random.default_rng(1)
    draws = family("student_t").standard_noise(rng, (1, 100_000), {"nu": np.array([[5.0]])})
    assert np.var(draws) == pytest.approx(5 / 3, rel=0.05)
    assert family("normal").standard_noise(rng, (2, 3), {}).shape == (2, 3)
    eta = np.arange(3.0)
    assert family("normal").inverse_link(eta) is eta


@pytest.mark.parametrize("name", LIKELIHOODS)
def test_observe_adds_y_given_the_family_parameters(name):
    f = family(name)
    with pm.Model() as model:
        eta = pm.Normal("eta", shape=4)
        params = {
            p: getattr(pm, prior.distribution)(p, **prior.params) for p, prior in f.priors.items()
        }
        f.observe(eta, 1.0, np.zeros(4), params)
    assert model["y"] in model.observed_RVs
    assert {rv.name for rv in model.free_RVs} == {"eta", *f.priors}
    if "nu" in params:  # the response's distribution reads the parameter it was given
        logp = logp_fn(model, vars=[model["y"]])
        point = {**model.initial_point(), "nu_log__": np.log(3.0)}
        other = {**point, "nu_log__": np.log(30.0)}
        assert logp(point) != logp(other)
