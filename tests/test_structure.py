"""hierreg.model.structure: what shapes the model, resolved from the options and the design;
the priors a structure has, and the forms of priors it cannot take."""

import pytest

from hierreg import Prior
from hierreg.design.build import build_design
from hierreg.model.priors import default_priors
from hierreg.model.structure import (
    ModelStructure,
    model_correlations,
    resolve_priors,
    resolve_structure,
)
from tests.conftest import simulate_groups


@pytest.fixture(scope="module")
def design():
    frame, _ = simulate_groups(n_groups=6, n_per_group=20, seed=3)
    return build_design(frame, None, formula="y ~ x", group="g")


def _resolve(design, **overrides):
    settings = dict(
        pooling="partial", varying="all", factor_varying=(), group_predictors=(),
        covariance="diagonal", parametrization="noncentered", group_noise=False,
        likelihood="normal", likelihood_mode="auto",
    )  # fmt: skip
    settings.update(overrides)
    return resolve_structure(design, **settings)


def test_varying_terms_and_the_likelihood_form(design):
    structure, centring = _resolve(design, varying=["x"])
    assert structure.varying == (False, True)
    assert structure.likelihood_mode == "sufficient"  # 120 rows, 6 groups, 2 terms
    assert centring is None
    assert _resolve(design, likelihood_mode="rows")[0].likelihood_mode == "rows"
    assert _resolve(design, pooling="complete")[0].varying == (False, False)


def test_full_covariance_needs_two_varying_terms(design):
    with pytest.raises(ValueError, match="at least two varying terms"):
        _resolve(design, covariance="full", varying=["x"])
    assert _resolve(design, covariance="full")[0].covariance == "full"
    with pytest.raises(ValueError, match="noncentered"):
        _resolve(design, covariance="full", parametrization="centered")


def test_correlation_matrices_the_structure_samples():
    partial = ModelStructure("partial", (True, True), covariance="full")
    assert model_correlations(partial, []) == ["corr"]
    assert model_correlations(ModelStructure("none", (True, True), covariance="full"), []) == []
    assert model_correlations(ModelStructure("partial", (True, True)), []) == []


def test_resolved_priors_have_every_parameter_of_the_structure(design):
    structure = ModelStructure("partial", (True, True), likelihood="student_t", covariance="full")
    priors, defaults = resolve_priors(
        default_priors(design.X, design.y, design.spec.terms),
        {"nu": Prior("Exponential", lam=0.1)},
        design,
        structure,
    )
    assert set(defaults.as_dict()) == {
        "Intercept", "x", "tau[Intercept]", "tau[x]", "sigma", "nu", "corr",
    }  # fmt: skip
    assert priors.extra["nu"] == Prior("Exponential", lam=0.1)
    assert defaults.extra["nu"] == Prior("Gamma", alpha=2.0, beta=0.1)


@pytest.mark.parametrize(
    "user, structure, match",
    [
        (
            {"tau[x]": Prior("Uniform", lower=0, upper=5)},
            ModelStructure("partial", (True, True)),
            "Uniform prior must apply to every term of tau",
        ),
        (
            {"tau[x]": Prior("HalfCauchy", beta=1)},
            ModelStructure("partial", (True, True), covariance="full"),
            "one distribution for every varying term's sd",
        ),
        ({"nu": Prior("Gamma", alpha=2, beta=1)}, ModelStructure("partial", (True, True)), "nu"),
    ],
)
def test_forms_the_model_cannot_take_are_refused(design, user, structure, match):
    with pytest.raises(ValueError, match=match):
        resolve_priors(
            default_priors(design.X, design.y, design.spec.terms), user, design, structure
        )
