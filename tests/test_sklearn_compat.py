"""scikit-learn estimator contract: parametrize_with_checks, Pipeline, GridSearchCV."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from hierreg import HierarchicalLinearRegression, SamplingWarning

FAST = dict(draws=150, tune=150, chains=2, progressbar=False)

# Checks that cannot pass for a sampling-based Bayesian estimator, with the reason.
EXPECTED_FAILED = {}


@parametrize_with_checks(
    [HierarchicalLinearRegression(**FAST)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        check(estimator)
