"""The fitted model apart from the estimator: what predictions, persistence and Dask read."""

import pickle

import numpy as np
import pandas as pd
import pytest

from hierreg import HierarchicalLinearRegression
from hierreg.results.fitted import FittedModel


@pytest.fixture(scope="module")
def fit(radon_fits):
    return radon_fits["partial"]


def test_the_estimator_reads_its_attributes_from_the_fitted_model(fit):
    fitted = fit.fitted_
    assert isinstance(fitted, FittedModel)
    summaries = fitted.summaries()
    pd.testing.assert_frame_equal(summaries["coef"], fit.coef_)
    pd.testing.assert_series_equal(summaries["population_coef"], fit.population_coef_)
    assert summaries["sigma"] == fit.sigma_ and summaries["priors"] == fit.priors_
    assert fitted.idata is fit.idata_ and fitted.structure == fit.structure_
    assert fitted.group_dim == fit.group_dim_ == "county"


def test_predictions_come_from_the_fitted_model(fit, radon):
    new = pd.concat([radon.head(20), radon.head(3).assign(county="NEW")])
    mean, var = fit.fitted_.predict(new, "population")
    got_mean, got_sd = fit.predict(new, return_std=True)
    np.testing.assert_array_equal(mean, got_mean)
    np.testing.assert_array_equal(np.sqrt(var), got_sd)
    with pytest.raises(ValueError, match="new_groups='error'"):
        fit.fitted_.predict(new, "error")


def test_an_estimator_rebuilt_from_the_fitted_model_predicts_the_same(fit, radon):
    fitted = pickle.loads(pickle.dumps(fit.fitted_))  # it travels to Dask workers this way
    rebuilt = HierarchicalLinearRegression.from_fitted(
        fit.get_params(), fitted, feature_names=list(fit.feature_names_in_)
    )
    np.testing.assert_array_equal(rebuilt.predict(radon), fit.predict(radon))
    np.testing.assert_array_equal(
        rebuilt.predict_draws(radon, n_draws=10, random_state=3),
        fit.predict_draws(radon, n_draws=10, random_state=3),
    )
    assert list(rebuilt.feature_names_in_) == list(fit.feature_names_in_)
    assert rebuilt.default_priors_ == fit.default_priors_ and rebuilt.priors_ == fit.priors_
