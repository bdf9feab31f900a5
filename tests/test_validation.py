"""Bad input is rejected clearly BEFORE any compilation or sampling, and never corrupts a fitted
estimator; awkward but valid input works. One table of rejected cases, one of accepted ones."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.exceptions import NotFittedError

from hierreg import HierarchicalLinearRegression, Prior, SamplingWarning
from tests.conftest import FAST, simulate_groups

BASE, _ = simulate_groups(n_groups=6, n_per_group=10, seed=2)
BASE = BASE.assign(
    n=np.arange(len(BASE)) % 3,  # integer predictor
    flag=np.arange(len(BASE)) % 2 == 0,  # boolean predictor
    kind=pd.Categorical(np.where(np.arange(len(BASE)) % 2, "a", "b"), categories=["a", "b", "c"]),
)


def _set(frame, column, row, value):
    out = frame.copy()
    out[column] = out[column].astype(object) if isinstance(value, str) else out[column]
    out.loc[out.index[row], column] = value
    return out


# (id, estimator params, fit args builder, exception, message pattern)
REJECTED = [
    ("formula syntax", {"formula": "y ~ x +"}, lambda: (BASE,), ValueError, "could not be parsed"),
    ("formula type", {"formula": 3}, lambda: (BASE,), TypeError, "formula must be a string"),
    ("formula two tildes", {"formula": "y ~ x ~ n"}, lambda: (BASE,), ValueError, "more than one"),
    (
        "group-specific term",
        {"formula": "y ~ x + (1|g)"},
        lambda: (BASE,),
        ValueError,
        "group-specific term",
    ),
    ("response missing", {}, lambda: (BASE.drop(columns="y"),), ValueError, "'y'"),
    (
        "predictor missing",
        {},
        lambda: (BASE.drop(columns="x"),),
        ValueError,
        "column 'x' used by the formula",
    ),
    (
        "group column missing",
        {},
        lambda: (BASE.drop(columns="g"),),
        ValueError,
        "group column 'g' is not a column",
    ),
    ("NaN response", {}, lambda: (_set(BASE, "y", 3, np.nan),), ValueError, "y.*NaN"),
    ("inf response", {}, lambda: (_set(BASE, "y", 3, np.inf),), ValueError, "y.*infinity"),
    ("NaN predictor", {}, lambda: (_set(BASE, "x", 3, np.nan),), ValueError, "'x' contains NaN"),
    (
        "inf predictor",
        {},
        lambda: (_set(BASE, "x", 3, -np.inf),),
        ValueError,
        "'x' contains infinity",
    ),
    (
        "NaN group",
        {},
        lambda: (_set(BASE, "g", 3, None),),
        ValueError,
        "group column 'g' has 1 missing",
    ),
    ("log of zero", {"formula": "y ~ np.log(n)"}, lambda: (BASE,), ValueError, "non-finite values"),
    ("empty data", {}, lambda: (BASE.iloc[:0],), ValueError, "0 rows"),
    ("single row", {}, lambda: (BASE.iloc[:1],), ValueError, "at least 2 rows"),
    (
        "partial with one group",
        {},
        lambda: (BASE[BASE.g == "g00"],),
        ValueError,
        "needs at least 2 groups",
    ),
    (
        "len(X) != len(y)",
        {"formula": "~ x"},
        lambda: (BASE, BASE["y"].iloc[:-1]),
        ValueError,
        "inconsistent numbers of samples",
    ),
    (
        "response twice, different",
        {},
        lambda: (BASE, BASE["y"] * 2),
        ValueError,
        "response is given twice",
    ),
    ("non-numeric response", {}, lambda: (BASE.assign(y="tall"),), ValueError, "must be numeric"),
    (
        "2-D response",
        {"formula": "~ x"},
        lambda: (BASE, np.ones((len(BASE), 2))),
        ValueError,
        "must be 1-D",
    ),
    (
        "unknown pooling",
        {"pooling": "parital"},
        lambda: (BASE,),
        ValueError,
        "pooling='parital' is not one of 'complete', 'none', 'partial'",
    ),
    ("unknown sampler", {"sampler": "stan"}, lambda: (BASE,), ValueError, "sampler='stan'"),
    (
        "unknown parametrization",
        {"parametrization": "ncp"},
        lambda: (BASE,),
        ValueError,
        "parametrization='ncp'",
    ),
    (
        "unknown new_groups",
        {"new_groups": "lme4"},
        lambda: (BASE,),
        ValueError,
        "new_groups='lme4'",
    ),
    ("draws <= 0", {"draws": 0}, lambda: (BASE,), ValueError, "draws must be a positive"),
    ("tune <= 0", {"tune": -5}, lambda: (BASE,), ValueError, "tune must be a positive"),
    ("chains <= 0", {"chains": 0}, lambda: (BASE,), ValueError, "chains must be a positive"),
    (
        "draws not an integer",
        {"draws": 10.5},
        lambda: (BASE,),
        TypeError,
        "draws must be a positive integer",
    ),
    (
        "target_accept = 1",
        {"target_accept": 1.0},
        lambda: (BASE,),
        ValueError,
        r"target_accept must be in \(0, 1\)",
    ),
    (
        "target_accept = 0",
        {"target_accept": 0.0},
        lambda: (BASE,),
        ValueError,
        r"target_accept must be in \(0, 1\)",
    ),
    (
        "target_accept not a number",
        {"target_accept": "high"},
        lambda: (BASE,),
        TypeError,
        "target_accept must be a float",
    ),
    (
        "unknown varying term",
        {"varying": ["slope"]},
        lambda: (BASE,),
        ValueError,
        "varying term 'slope' is not a model term",
    ),
    ("empty varying", {"varying": []}, lambda: (BASE,), ValueError, "varying is empty"),
    (
        "reserved sample_kwargs",
        {"sample_kwargs": {"chains": 9}},
        lambda: (BASE,),
        ValueError,
        r"sample_kwargs may not set \['chains'\]",
    ),
    (
        "group_noise without groups",
        {"pooling": "complete", "group_noise": True},
        lambda: (BASE,),
        ValueError,
        "group_noise=True needs groups",
    ),
    (
        "group_noise not bool",
        {"group_noise": "yes"},
        lambda: (BASE,),
        TypeError,
        "group_noise must be True or False",
    ),
    (
        "store_log_likelihood not bool",
        {"store_log_likelihood": 1},
        lambda: (BASE,),
        TypeError,
        "store_log_likelihood must be True, False or 'auto'",
    ),
    (
        "unknown likelihood",
        {"likelihood": "laplace"},
        lambda: (BASE,),
        ValueError,
        "likelihood='laplace' is not one of 'normal', 'student_t'",
    ),
    (
        "unknown likelihood_mode",
        {"likelihood_mode": "exact"},
        lambda: (BASE,),
        ValueError,
        "likelihood_mode='exact' is not one of 'auto', 'rows', 'sufficient'",
    ),
    (
        "unknown prior name",
        {"priors": {"slope": Prior("Normal", mu=0, sigma=1)}},
        lambda: (BASE,),
        ValueError,
        r"unknown parameter name\(s\) \['slope'\]; valid names: \['Intercept', 'x', 'tau'",
    ),
    (
        "unknown prior distribution",
        {"priors": {"x": Prior("Beta", alpha=1, beta=1)}},
        lambda: (BASE,),
        ValueError,
        r"priors\['x'\]: 'Beta' is not a prior for a coefficient parameter \(support real\); "
        r"valid: \['Normal', 'StudentT', 'Cauchy', 'Laplace', 'Flat'\]",
    ),
    (
        "prior parameters",
        {"priors": {"sigma": Prior("Exponential", mu=1)}},
        lambda: (BASE,),
        ValueError,
        r"Exponential takes parameters \['lam'\]",
    ),
    (
        "prior scale not positive",
        {"priors": {"tau[x]": Prior("HalfNormal", sigma=0)}},
        lambda: (BASE,),
        ValueError,
        "sigma must be > 0",
    ),
    (
        "priors not a dict",
        {"priors": [Prior("Normal", mu=0, sigma=1)]},
        lambda: (BASE,),
        TypeError,
        "priors must be a dict",
    ),
    (
        "prior not a Prior",
        {"priors": {"x": (0, 1)}},
        lambda: (BASE,),
        TypeError,
        r"priors\['x'\] must be a hierreg.Prior",
    ),
    (
        "group predictor varies within a group",
        {"group_predictors": ["x"]},
        lambda: (BASE,),
        ValueError,
        r"group predictor 'x' varies within group 'g00' of column 'g'",
    ),
    (
        "group predictor listed in varying",
        {"group_predictors": ["u"], "varying": ["Intercept", "u"]},
        lambda: (BASE.assign(u=BASE.g.str[1:].astype(float)),),
        ValueError,
        r"group predictor\(s\) \['u'\] cannot vary by group",
    ),
    (
        "group predictors without a group",
        {"group_predictors": ["u"], "group": None},
        lambda: (BASE.assign(u=1.0),),
        ValueError,
        "group_predictors needs a formula and a group column",
    ),
    (
        "group predictors without pooling",
        {"group_predictors": ["u"], "pooling": "none"},
        lambda: (BASE.assign(u=BASE.g.str[1:].astype(float)),),
        ValueError,
        "group_predictors cannot be estimated with pooling='none'",
    ),
    (
        "group predictors not names",
        {"group_predictors": [1]},
        lambda: (BASE,),
        TypeError,
        "group_predictors must be a list of column names",
    ),
    (
        "sparse X",
        {"formula": None, "group": None},
        lambda: (scipy.sparse.eye(5), np.ones(5)),
        TypeError,
        "sparse input is not supported",
    ),
    (
        "1-D X",
        {"formula": None, "group": None},
        lambda: (np.ones(5), np.ones(5)),
        ValueError,
        "Expected 2D array",
    ),
    (
        "complex X",
        {"formula": None, "group": None},
        lambda: (np.ones((5, 2)) * 1j, np.ones(5)),
        ValueError,
        "Complex data not supported",
    ),
    (
        "string feature without formula",
        {"formula": None},
        lambda: (BASE[["x", "g", "kind"]].astype({"kind": str}), BASE["y"]),
        TypeError,
        "feature column 'kind' is not numeric",
    ),
]


@pytest.fixture(scope="module")
def fitted():
    est = HierarchicalLinearRegression("y ~ x", group="g", pooling="complete", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return est.fit(BASE)


def test_the_table_is_large_enough():
    assert len(REJECTED) >= 30 and len(ACCEPTED) >= 8


@pytest.mark.parametrize(
    "params, make_args, error, match",
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_rejected_before_sampling_and_state_untouched(
    fitted, no_sampling, params, make_args, error, match
):
    est = fitted
    before = {k: v for k, v in est.__dict__.items() if k.endswith("_")}
    original = est.get_params()
    est.set_params(**{"formula": "y ~ x", "group": "g", "pooling": "partial", **params})
    try:
        with pytest.raises(error, match=match):
            est.fit(*make_args())
    finally:
        est.set_params(**original)
    after = {k: v for k, v in est.__dict__.items() if k.endswith("_")}
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        HierarchicalLinearRegression("y ~ x").predict(BASE)


def test_predict_with_missing_columns(fitted):
    with pytest.raises(ValueError, match=r"\['x'\].*missing from X"):
        fitted.predict(BASE.drop(columns="x"))


def test_predict_with_nan_predictor(fitted):
    with pytest.raises(ValueError, match="'x' contains NaN"):
        fitted.predict(_set(BASE, "x", 0, np.nan))


def test_predict_with_unseen_categorical_level():
    est = HierarchicalLinearRegression("y ~ C(n)", pooling="complete", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        est.fit(BASE)
    with pytest.raises(ValueError, match=r"levels \(7\) in 'C\(n\)'"):
        est.predict(BASE.assign(n=7))


# --- what must work ---------------------------------------------------------------------------

ACCEPTED = [
    (
        "group with one row",
        dict(formula="y ~ x", group="g"),
        lambda: pd.concat([BASE, BASE.iloc[[0]].assign(g="solo")]),
    ),
    (
        "group with a constant predictor",
        dict(formula="y ~ x", group="g"),
        lambda: BASE.assign(x=np.where(BASE.g == "g01", 0.0, BASE.x)),
    ),
    (
        "categorical predictor with unused category",
        dict(formula="y ~ x + kind", group="g"),
        lambda: BASE,
    ),
    (
        "categorical group with unused category",
        dict(formula="y ~ x", group="g"),
        lambda: BASE.assign(g=pd.Categorical(BASE.g, categories=[*sorted(BASE.g.unique()), "zz"])),
    ),
    ("boolean and integer predictors", dict(formula="y ~ flag + n", group="g"), lambda: BASE),
    (
        "integer group labels",
        dict(formula="y ~ x", group="g"),
        lambda: BASE.assign(g=BASE.g.str[1:].astype(int)),
    ),
    ("response in millions", dict(formula="y ~ x", group="g"), lambda: BASE.assign(y=BASE.y * 1e6)),
    (
        "response in millionths",
        dict(formula="y ~ x", group="g"),
        lambda: BASE.assign(y=BASE.y * 1e-6),
    ),
    (
        "numpy arrays",
        dict(formula=None, group=1),
        lambda: np.column_stack([BASE["x"], BASE["g"].str[1:].astype(int)]),
    ),
    ("no intercept", dict(formula="y ~ 0 + x", group="g"), lambda: BASE),
]


@pytest.mark.parametrize(
    "params, make_frame", [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED]
)
def test_accepted_edge_cases(params, make_frame):
    data = make_frame()
    est = HierarchicalLinearRegression(
        **params,
        pooling="partial",
        draws=300,
        tune=300,
        chains=2,
        target_accept=0.95,
        progressbar=False,
        random_state=0,
    )
    args = (data, BASE["y"].to_numpy()) if params["formula"] is None else (data,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        est.fit(*args)
    assert est.diagnostics_["divergences"] == 0
    prediction = est.predict(data)
    assert prediction.shape == (len(data),) and np.isfinite(prediction).all()
    # reordered columns and an extra column predict the same
    if isinstance(data, pd.DataFrame):
        shuffled = data[data.columns[::-1]].assign(extra=1)
        np.testing.assert_array_equal(est.predict(shuffled), prediction)
