"""scikit-learn estimator contract: parametrize_with_checks, Pipeline, GridSearchCV."""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
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


GRID_FAST = dict(draws=200, tune=200, chains=2, progressbar=False, random_state=0)


def test_clone_get_set_params():
    est = HierarchicalLinearRegression("y ~ x", group="g", pooling="none", draws=10)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    copy.set_params(pooling="partial", varying=["Intercept"])
    assert est.pooling == "none" and copy.varying == ["Intercept"]


def test_pipeline_with_a_dataframe_transformer(simulated):
    frame, _ = simulated
    add_square = FunctionTransformer(lambda df: df.assign(x2=df["x"] ** 2))
    pipe = Pipeline(
        [
            ("features", add_square),
            ("model", HierarchicalLinearRegression("~ x + x2", group="g", **GRID_FAST)),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        pipe.fit(frame.drop(columns="y"), frame["y"])
    assert pipe.named_steps["model"].terms_ == ["Intercept", "x", "x2"]
    pred = pipe.predict(frame.drop(columns="y"))
    assert pred.shape == (len(frame),) and np.corrcoef(pred, frame["y"])[0, 1] > 0.8


def test_grid_search_over_pooling(simulated):
    frame, _ = simulated
    search = GridSearchCV(
        HierarchicalLinearRegression("y ~ x", group="g", **GRID_FAST),
        param_grid={"pooling": ["complete", "none", "partial"]},
        cv=KFold(3, shuffle=True, random_state=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        search.fit(frame)  # response from the formula; score uses it too
    scores = dict(
        zip(search.cv_results_["param_pooling"], search.cv_results_["mean_test_score"], strict=True)
    )
    # groups differ (true between-group sd 0.6): grouping beats one regression
    assert scores["partial"] > scores["complete"] and scores["none"] > scores["complete"]
    assert search.best_params_["pooling"] in {"none", "partial"}


def test_grid_search_with_group_kfold_predicts_new_groups(simulated):
    frame, _ = simulated
    search = GridSearchCV(
        HierarchicalLinearRegression("y ~ x", group="g", **GRID_FAST),
        param_grid={"pooling": ["complete", "partial"]},
        cv=GroupKFold(n_splits=2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        search.fit(frame, groups=frame["g"])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
