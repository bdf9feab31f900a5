"""save/load: plain files (JSON + netCDF), no pickle, bit-identical predictions."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from hierreg import HierarchicalLinearRegression
from hierreg.results import persistence
from tests.conftest import fit_quietly, simulate_groups

TINY = dict(draws=30, tune=30, chains=1, progressbar=False, random_state=0)


def _assert_same_predictions(a, b, X):
    for x, y in zip(a.predict(X, return_std=True), b.predict(X, return_std=True), strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(
        a.predict_draws(X, n_draws=20, random_state=1),
        b.predict_draws(X, n_draws=20, random_state=1),
    )
    pd.testing.assert_frame_equal(
        a.predict_interval(X, random_state=2), b.predict_interval(X, random_state=2)
    )


@pytest.mark.parametrize("pooling", ["complete", "none", "partial"])
def test_round_trip_radon(tmp_path, radon, radon_fits, pooling):
    est = radon_fits[pooling]
    est.save(tmp_path / "model")
    back = HierarchicalLinearRegression.load(tmp_path / "model")
    assert back.get_params() == est.get_params()
    pd.testing.assert_frame_equal(back.coef_, est.coef_)
    assert back.groups_.equals(est.groups_) if est.groups_ is not None else back.groups_ is None
    assert back.terms_ == est.terms_ and back.diagnostics_ == est.diagnostics_
    assert back.priors_ == est.priors_
    assert back.idata_["posterior"].to_dataset().identical(est.idata_["posterior"].to_dataset())
    new = radon.sample(60, random_state=0)
    if pooling != "none":  # a county never seen: population draws
        new = pd.concat([new, new.head(3).assign(county="NEW COUNTY")])
    _assert_same_predictions(est, back, new)


def test_round_trip_categorical_and_stateful_transforms(tmp_path):
    frame, _ = simulate_groups(n_groups=5, n_per_group=12, seed=4)
    rng = np.random.default_rng(0)
    frame["kind"] = pd.Categorical(rng.choice(["b", "a"], len(frame)), categories=["b", "a", "c"])
    frame["flag"] = rng.random(len(frame)) > 0.5
    formula = "y ~ scale(x) + C(kind) + flag + np.log(2 + x ** 2)"
    est = fit_quietly(HierarchicalLinearRegression(formula, group="g", **TINY), frame)
    est.save(tmp_path)
    back = HierarchicalLinearRegression.load(tmp_path)
    new = frame.sample(frac=1.0, random_state=3)[["flag", "g", "kind", "x"]]  # reordered
    _assert_same_predictions(est, back, new)
    # the categories (unused "c" included) and the fitted scale() survive
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["design"]["categories"]["kind"] == {"categories": ["b", "a", "c"], "ordered": False}
    with pytest.raises(ValueError, match="kind"):
        back.predict(new.assign(kind="zzz"))


def test_round_trip_numeric_arrays(tmp_path):
    frame, _ = simulate_groups(n_groups=4, n_per_group=10, seed=5)
    X = np.column_stack([frame["x"], frame["g"].str[1:].astype(int)])
    est = fit_quietly(HierarchicalLinearRegression(None, group=1, **TINY), X, frame["y"].to_numpy())
    est.save(tmp_path)
    back = HierarchicalLinearRegression.load(tmp_path)
    assert back.n_features_in_ == 2 and not hasattr(back, "feature_names_in_")
    _assert_same_predictions(est, back, X)


def test_save_unfitted(tmp_path):
    with pytest.raises(NotFittedError):
        HierarchicalLinearRegression("y ~ x").save(tmp_path)


def test_save_refuses_parameters_json_cannot_hold(tmp_path, simulated):
    frame, _ = simulated
    est = fit_quietly(HierarchicalLinearRegression("y ~ x", group="g", **TINY), frame)
    est.set_params(random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match="random_state"):
        est.save(tmp_path)
    assert not (tmp_path / "model.json").exists()


def test_save_refuses_formula_calls_outside_the_safe_set(tmp_path, simulated):
    frame, _ = simulated
    est = fit_quietly(
        HierarchicalLinearRegression("y ~ np.where(x > 0, x, 0)", group="g", **TINY), frame
    )
    with pytest.raises(ValueError, match=r"cannot be saved.*NumPy ufuncs"):
        est.save(tmp_path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    frame, _ = simulate_groups(n_groups=3, n_per_group=8, seed=6)
    est = fit_quietly(HierarchicalLinearRegression("y ~ x", group="g", **TINY), frame)
    path = tmp_path_factory.mktemp("saved")
    est.save(path)
    return path


def _copy(saved, tmp_path):
    for name in ("model.json", "posterior.nc"):
        (tmp_path / name).write_bytes((saved / name).read_bytes())
    return tmp_path


def _edit_meta(path, reseal=True, **changes):
    """Edit model.json; ``reseal``: recompute its checksum, as a deliberate tamperer would
    (so the content checks, not the checksum, must refuse the edit)."""
    meta = json.loads((path / "model.json").read_text())
    for dotted, value in changes.items():
        target = meta
        *parents, key = dotted.split("__")
        for parent in parents:
            target = target[parent]
        target[key] = value
    if reseal:
        meta["integrity"]["metadata"] = persistence._metadata_digest(meta)
    (path / "model.json").write_text(json.dumps(meta))


def test_load_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved hierreg model"):
        HierarchicalLinearRegression.load(tmp_path / "nowhere")


def test_load_missing_posterior(saved, tmp_path):
    path = _copy(saved, tmp_path)
    (path / "posterior.nc").unlink()
    with pytest.raises(FileNotFoundError, match="posterior.nc is missing"):
        HierarchicalLinearRegression.load(path)


def test_load_truncated_posterior(saved, tmp_path):
    path = _copy(saved, tmp_path)
    data = (path / "posterior.nc").read_bytes()
    (path / "posterior.nc").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated, modified or from another model"):
        HierarchicalLinearRegression.load(path)


def test_load_truncated_json(saved, tmp_path):
    path = _copy(saved, tmp_path)
    text = (path / "model.json").read_text()
    (path / "model.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        HierarchicalLinearRegression.load(path)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"format": "something-else"}, "not a hierreg model file"),
        ({"format_version": 99}, "format version 99.*upgrade hierreg"),
        ({"params__pooling": "sideways"}, "'params.pooling' must be one of 'complete'"),
        ({"design__terms": ["Intercept", "z"]}, "inconsistent: priors.terms"),
        ({"params__no_such_param": 1}, "'params.no_such_param' is not a field"),
    ],
)
def test_load_foreign_or_edited_metadata(saved, tmp_path, changes, match):
    path = _copy(saved, tmp_path)
    _edit_meta(path, **changes)
    with pytest.raises(ValueError, match=match):
        HierarchicalLinearRegression.load(path)


def test_load_refuses_metadata_edited_without_its_checksum(saved, tmp_path):
    path = _copy(saved, tmp_path)
    _edit_meta(path, reseal=False, params__draws=31)
    with pytest.raises(ValueError, match="does not match its own checksum"):
        HierarchicalLinearRegression.load(path)


@pytest.mark.parametrize("formula", ["os.system(x)", "np.load(x)", "pickle.loads(x)", "eval(x)"])
def test_load_evaluates_no_code_from_the_files(saved, tmp_path, formula):
    """A model file whose formula was edited to call anything but a ufunc is refused."""
    path = _copy(saved, tmp_path)
    _edit_meta(path, design__formula=formula)
    with pytest.raises(ValueError, match=r"is refused: .* is not an allowed call"):
        HierarchicalLinearRegression.load(path)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n_groups=st.integers(2, 5),
    n_per_group=st.integers(2, 6),
    pooling=st.sampled_from(["complete", "none", "partial"]),
    seed=st.integers(0, 2**16),
)
def test_save_load_predicts_identically(tmp_path_factory, n_groups, n_per_group, pooling, seed):
    frame, _ = simulate_groups(n_groups=n_groups, n_per_group=n_per_group, seed=seed)
    est = fit_quietly(
        HierarchicalLinearRegression("y ~ x", group="g", pooling=pooling, **TINY), frame
    )
    path = tmp_path_factory.mktemp("prop")
    est.save(path)
    back = HierarchicalLinearRegression.load(path)
    _assert_same_predictions(est, back, frame.sample(frac=1.0, random_state=seed))


def test_round_trip_keeps_user_priors(tmp_path, simulated):
    from hierreg import Prior

    frame, _ = simulated
    priors = {"x": Prior("Normal", mu=0.0, sigma=0.5), "sigma": Prior("Exponential", lam=2.0)}
    est = fit_quietly(
        HierarchicalLinearRegression("y ~ x", group="g", priors=priors, **TINY), frame
    )
    est.save(tmp_path)
    back = HierarchicalLinearRegression.load(tmp_path)
    assert back.get_params()["priors"] == priors
    assert back.priors_ == est.priors_ and back.default_priors_ == est.default_priors_
    _assert_same_predictions(est, back, frame)


def test_round_trip_with_group_predictor(tmp_path, simulated):
    frame, _ = simulated
    frame = frame.assign(u=frame["g"].str[1:].astype(float) / 10)
    est = fit_quietly(
        HierarchicalLinearRegression("y ~ x", group="g", group_predictors=["u"], **TINY), frame
    )
    est.save(tmp_path)
    back = HierarchicalLinearRegression.load(tmp_path)
    assert back.terms_ == ["Intercept", "x", "u"] and back.group_predictors == ["u"]
    new = frame.assign(g="unseen", u=0.35)
    _assert_same_predictions(est, back, pd.concat([frame, new.head(3)]))
