"""Dask: fit from a Dask DataFrame through distributed sufficient statistics, predict
partition-wise, grid search under the Dask joblib backend, fit_many.

A real ``LocalCluster`` (2 worker processes, loopback only) is started once per module.
"""

import warnings

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from hierreg import HierarchicalLinearRegression, SamplingWarning, fit_many  # noqa: E402
from hierreg.design.build import build_design  # noqa: E402
from hierreg.distributed import statistics_from_dask  # noqa: E402
from hierreg.model.sufficient import SufficientStatistics  # noqa: E402
from tests.conftest import FAST, fit_quietly  # noqa: E402

FORMULA = "log_radon ~ floor"


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    )  # fmt: skip
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def radon_dask(radon):
    return dd.from_pandas(radon.sample(frac=1.0, random_state=0), npartitions=5)


def test_statistics_equal_the_pandas_ones(client, radon, radon_dask):
    got = statistics_from_dask(radon_dask, FORMULA, "county")
    design = build_design(radon, None, formula=FORMULA, group="county")
    X = np.column_stack([design.X, np.ones(len(radon))])
    want = SufficientStatistics.from_arrays(X, design.y, design.group_index, 85)
    assert got.n_rows == len(radon)
    assert list(got.design.spec.groups) == list(design.spec.groups)
    np.testing.assert_array_equal(got.statistics.n, want.n)
    for a, b in [(got.statistics.xtx, want.xtx), (got.statistics.xty, want.xty)]:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.statistics.yty, want.yty, rtol=1e-12)


def test_fit_and_predict_match_the_pandas_fit(client, radon, radon_dask):
    kw = dict(group="county", likelihood_mode="sufficient", **FAST)
    local = fit_quietly(HierarchicalLinearRegression(FORMULA, **kw), radon)
    remote = fit_quietly(HierarchicalLinearRegression(FORMULA, **kw), radon_dask)
    assert remote.structure_.likelihood_mode == "sufficient"
    for name, prior in local.priors_.items():
        for key, value in prior.params.items():
            assert remote.priors_[name].params[key] == pytest.approx(value, rel=1e-9)
    # same model: posterior means within Monte Carlo error (600 draws, ESS >= ~150)
    sd = local.idata_["posterior"]["beta"].std(("chain", "draw")).values
    diff = np.abs(local.coef_.values - remote.coef_.values)
    assert np.all(diff < 4 * sd / np.sqrt(150))
    assert "log_likelihood" not in remote.idata_ and "observed_data" not in remote.idata_
    assert list(remote.feature_names_in_) == list(radon.columns)
    # partition-wise predictions: the same numbers as the in-memory predictions
    lazy = remote.predict(radon_dask)
    assert type(lazy).__module__.startswith("dask")
    mean = lazy.compute().sort_index()
    np.testing.assert_allclose(mean.values, remote.predict(radon.sort_index()), rtol=1e-12)
    lazy_mean, lazy_sd = remote.predict(radon_dask, return_std=True)
    np.testing.assert_allclose(
        lazy_sd.compute().sort_index().values,
        remote.predict(radon.sort_index(), return_std=True)[1],
        rtol=1e-12,
    )


def test_a_dask_fit_saves_and_loads(client, radon, radon_dask, tmp_path):
    est = fit_quietly(HierarchicalLinearRegression(FORMULA, group="county", **FAST), radon_dask)
    loaded = HierarchicalLinearRegression.load(est.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(radon), est.predict(radon))


@pytest.mark.parametrize(
    ("change", "params", "message"),
    [
        (lambda f: f.assign(floor=f["floor"].where(f.index % 50 != 0)), {}, "column 'floor' has"),
        (lambda f: f, {"formula": "log_radon ~ center(floor)"}, "learn from the data"),
        (lambda f: f, {"formula": "~ floor"}, "needs the response in the formula"),
        (lambda f: f, {"likelihood_mode": "rows"}, "through sufficient statistics"),
        (lambda f: f, {"likelihood": "student_t"}, "through sufficient statistics"),
        (lambda f: f, {"store_log_likelihood": True}, "needs the rows on the driver"),
    ],
)
def test_rejected_before_sampling(client, radon, change, params, message, no_sampling):
    ddf = dd.from_pandas(change(radon), npartitions=3)
    est = HierarchicalLinearRegression(**{"formula": FORMULA, "group": "county", **params})
    with pytest.raises(ValueError, match=message):
        est.fit(ddf)


@pytest.mark.slow
def test_grid_search_under_the_dask_joblib_backend(client, radon):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV, KFold

    def search():
        grid = GridSearchCV(
            HierarchicalLinearRegression(FORMULA, group="county", **FAST),
            {"pooling": ["complete", "partial"]},
            cv=KFold(2, shuffle=True, random_state=0),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplingWarning)
            return grid.fit(radon)

    local = search()
    with parallel_backend("dask", client=client):
        remote = search()
    assert remote.best_params_ == local.best_params_
    # same seeds, but not always the same rounding: a process that compiles a model fresh
    # (numba inlines the model's function into nutpie's callback, fastmath) draws differently
    # from one that loads it from the disk cache (the workers, on a new machine). The
    # scores agree to Monte Carlo error (R^2 of 0.06-0.07; 0.0007-0.004 apart when they differ)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"], atol=0.01
    )
    assert np.all(np.isfinite(remote.cv_results_["mean_test_score"]))


def test_fit_many_on_the_cluster(client, radon, capsys):
    frame = radon.assign(region=np.where(radon["county"] < "M", "north", "south"))
    template = HierarchicalLinearRegression(FORMULA, group="county", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        fits = fit_many(template, frame, by="region", client=client)
    assert list(fits) == ["north", "south"]
    assert not hasattr(template, "idata_")  # the template is cloned, never fitted
    north = frame[frame["region"] == "north"]
    assert set(fits["north"].groups_) == set(north["county"])
    assert "fit_many: 2/2 segments" in capsys.readouterr().err
    with pytest.raises(ValueError, match="by='segment' is not a column"):
        fit_many(template, frame, by="segment")
