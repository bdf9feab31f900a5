"""hierreg.options: the parameters checked by the table, the checks between parameters, and
what they resolve to before any data is read."""

import numpy as np
import pytest

from hierreg import HierarchicalLinearRegression
from hierreg.options import fit_options, sampler_settings


def _params(**overrides):
    return HierarchicalLinearRegression(**overrides).get_params()


def test_defaults_resolve_to_partial_pooling_with_auto_likelihood_form():
    options = fit_options(_params(formula="y ~ x", group="g"))
    assert options.pooling == "partial"
    assert options.likelihood == "normal" and options.likelihood_mode == "auto"
    assert options.grouping.group == "g" and options.keep_group
    assert options.settings.draws == 1000 and options.settings.seed is None


def test_no_group_means_complete_pooling_and_the_group_column_is_not_read():
    options = fit_options(_params(formula="y ~ x", pooling="partial"))
    assert options.pooling == "complete"
    assert not options.keep_group


def test_a_student_t_likelihood_is_row_by_row():
    options = fit_options(_params(formula="y ~ x", group="g", likelihood="student_t"))
    assert options.likelihood_mode == "rows"


def test_several_factors_are_row_by_row_and_carry_their_varying_settings():
    options = fit_options(_params(formula="y ~ x + (1 + x | g) + (1 | h)", likelihood_mode="auto"))
    assert options.likelihood_mode == "rows"
    assert options.grouping.factors == ("g", "h")
    assert options.varying == ["Intercept", "x"] and options.factor_varying == (["Intercept"],)


def test_group_predictors_join_the_formula():
    options = fit_options(_params(formula="y ~ x", group="g", group_predictors=["u"]))
    assert options.formula == "y ~ x + u" and options.group_predictors == ["u"]


def test_the_table_normalises_numbers_and_seeds():
    settings = sampler_settings(
        _params(draws=np.int64(5), target_accept=np.float32(0.9), random_state=np.int32(3))
    )
    assert (settings.draws, settings.seed) == (5, 3) and type(settings.draws) is int
    assert settings.target_accept == pytest.approx(0.9)
    generator = sampler_settings(_params(random_state=np.random.default_rng(0))).seed
    assert generator == sampler_settings(_params(random_state=np.random.default_rng(0))).seed


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"likelihood": "student_t", "likelihood_mode": "sufficient"}, ValueError, "needs like"),
        ({"pooling": "complete", "group_noise": True}, ValueError, "group_noise=True needs"),
        ({"group": "g", "pooling": "none", "group_predictors": ["u"]}, ValueError, "absorbs"),
        ({"group": "g", "group_predictors": "u u".split()}, ValueError, "twice"),
        ({"group": "g", "group_predictors": [1]}, TypeError, "list of column names"),
        ({"group": "g", "covariance": "dense"}, ValueError, "covariance='dense' is not one of"),
        ({"group": "g", "new_groups": "drop"}, ValueError, "new_groups='drop' is not one of"),
        ({"group": "g", "store_log_likelihood": "yes"}, TypeError, "True, False or 'auto'"),
    ],
)
def test_errors_name_the_parameter(overrides, error, match):
    with pytest.raises(error, match=match):
        fit_options(_params(formula="y ~ x", **overrides))
