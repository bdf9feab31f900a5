"""One table of the estimator's parameters."""

import inspect

import pytest

from hierreg import HierarchicalLinearRegression
from hierreg.model.structure import POOLING_MODES
from hierreg.parameters import PARAMETER_SCHEMA, check_choice, choices
from hierreg.sampling.samplers import SAMPLERS
from hierreg.schema import validate


def test_the_table_lists_every_parameter_of_the_estimator():
    names = list(inspect.signature(HierarchicalLinearRegression).parameters)
    assert sorted(PARAMETER_SCHEMA) == sorted(names)


def test_the_defaults_satisfy_the_table():
    params = HierarchicalLinearRegression().get_params()
    for name, value in params.items():
        validate(value, PARAMETER_SCHEMA[name], where="defaults", field=name)


def test_choices_come_from_the_modules_that_own_them():
    assert choices("pooling") == POOLING_MODES and choices("sampler") == SAMPLERS
    assert check_choice("pooling", "none") == "none"
    with pytest.raises(ValueError, match="^pooling='parital' is not one of 'complete', 'none'"):
        check_choice("pooling", "parital")
    with pytest.raises(KeyError, match="not a choice"):
        choices("draws")
