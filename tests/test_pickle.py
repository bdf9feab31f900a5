"""Fitted estimators pickle (joblib, parallel grid search) and predict identically."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.model_selection import KFold, cross_val_score

from hierreg import HierarchicalLinearRegression, SamplingWarning
from tests.conftest import FAST


@pytest.fixture(scope="module")
def transformed_fit(radon):
    est = HierarchicalLinearRegression(
        "log_radon ~ floor + C(typebldg) + scale(log_uranium) + np.exp(log_uranium)",
        group="county",
        **FAST,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return est.fit(radon)


def test_pickle_round_trip_predicts_identically(radon, transformed_fit):
    clone = pickle.loads(pickle.dumps(transformed_fit))
    np.testing.assert_array_equal(clone.predict(radon), transformed_fit.predict(radon))
    mean, sd = clone.predict(radon.iloc[:20], return_std=True)
    mean0, sd0 = transformed_fit.predict(radon.iloc[:20], return_std=True)
    np.testing.assert_array_equal(sd, sd0)
    # the stateful transform keeps the TRAINING mean/sd: one new row is not re-standardised
    one = radon.iloc[[3]]
    assert clone.predict(one)[0] == pytest.approx(transformed_fit.predict(radon)[3])


def test_pickle_does_not_embed_the_training_frame(transformed_fit, radon):
    size = len(pickle.dumps(transformed_fit.design_))
    assert size < 50_000  # the encoding only, not 919 rows of 12 columns


def test_joblib_dump_load(tmp_path, radon, transformed_fit):
    path = tmp_path / "model.joblib"
    joblib.dump(transformed_fit, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(radon), transformed_fit.predict(radon))


def test_cross_validation_in_two_processes(simulated):
    frame, _ = simulated
    est = HierarchicalLinearRegression("y ~ x", group="g", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        scores = cross_val_score(est, frame, cv=KFold(2, shuffle=True, random_state=0), n_jobs=2)
    assert scores.shape == (2,) and np.all(scores > 0.3)
