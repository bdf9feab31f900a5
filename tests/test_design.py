import numpy as np
import pandas as pd
import pytest

from hierreg.design.build import build_design, normalize_formula


@pytest.mark.parametrize(
    "formula, expected",
    [
        ("y ~ x", ("y", "x")),
        ("~ x", (None, "x")),
        ("  ~x + z ", (None, "x + z")),
        ("x", (None, "x")),
        ("np.log(y) ~ 0 + x", ("np.log(y)", "0 + x")),
    ],
)
def test_normalize_formula(formula, expected):
    assert normalize_formula(formula) == expected


@pytest.mark.parametrize(
    "formula, match",
    [
        ("y ~ x ~ z", "more than one '~'"),
        ("y ~ ", "empty right-hand side"),
        ("y ~ x + (1 | g)", "group-specific term"),
    ],
)
def test_normalize_formula_rejects(formula, match):
    with pytest.raises(ValueError, match=match):
        normalize_formula(formula)


def test_normalize_formula_type():
    with pytest.raises(TypeError, match="formula must be a string"):
        normalize_formula(3)


def test_radon_design(radon):
    d = build_design(radon, None, formula="log_radon ~ floor", group="county")
    assert d.spec.terms == ["Intercept", "floor"]
    assert d.X.shape == (919, 2)
    np.testing.assert_array_equal(d.X[:, 1], radon["floor"])
    np.testing.assert_array_equal(d.y, radon["log_radon"])
    assert list(d.spec.groups) == sorted(radon["county"].unique())
    # indices map back to the labels exactly
    np.testing.assert_array_equal(d.spec.groups[d.group_index], radon["county"])


def test_rhs_formula_with_y(radon):
    X = radon.drop(columns="log_radon")
    d = build_design(X, radon["log_radon"], formula="~ floor", group="county")
    assert d.spec.response == "log_radon"
    np.testing.assert_array_equal(d.y, radon["log_radon"])


def test_response_given_twice_consistently_is_fine(radon):
    d = build_design(radon, radon["log_radon"], formula="log_radon ~ floor", group=None)
    np.testing.assert_array_equal(d.y, radon["log_radon"])


def test_response_given_twice_differently_is_an_error(radon):
    with pytest.raises(ValueError, match="response is given twice"):
        build_design(radon, radon["log_radon"] + 1, formula="log_radon ~ floor", group=None)


def test_transformed_response_from_formula(radon):
    d = build_design(radon, None, formula="np.log(radon_pCiL + 0.1) ~ floor", group=None)
    np.testing.assert_allclose(d.y, radon["log_radon"])


def test_categorical_columns_and_new_data(radon):
    d = build_design(radon, None, formula="log_radon ~ floor + C(typebldg)", group="county")
    assert d.spec.terms[:2] == ["Intercept", "floor"]
    assert all(t.startswith("C(typebldg)[") for t in d.spec.terms[2:])
    new = radon.sample(20, random_state=0)[["typebldg", "floor", "county"]]  # reordered
    encoded = d.spec.transform(new)
    idx = radon.index.get_indexer(new.index)
    np.testing.assert_array_equal(encoded.X, d.X[idx])
    np.testing.assert_array_equal(encoded.group_index, d.group_index[idx])


def test_unseen_categorical_level_at_predict(radon):
    d = build_design(radon, None, formula="log_radon ~ C(typebldg)", group=None)
    new = radon.head(3).assign(typebldg=[1, 99, 1])
    with pytest.raises(ValueError, match="99"):
        d.spec.transform(new)


def test_unseen_group_gets_minus_one_and_is_listed(radon):
    d = build_design(radon, None, formula="log_radon ~ floor", group="county")
    new = pd.DataFrame({"floor": [0, 1, 0], "county": ["CASS", "ATLANTIS", "ATLANTIS"]})
    assert d.spec.transform(new).group_index.tolist()[1:] == [-1, -1]
    assert d.spec.unseen_groups(new) == ["ATLANTIS"]


def test_group_levels_do_not_depend_on_row_order(simulated):
    frame, _ = simulated
    a = build_design(frame, None, formula="y ~ x", group="g")
    b = build_design(frame.iloc[::-1], None, formula="y ~ x", group="g")
    assert list(a.spec.groups) == list(b.spec.groups)


def test_categorical_group_with_unused_categories(simulated):
    frame, _ = simulated
    cat = frame.assign(g=pd.Categorical(frame["g"], categories=[*sorted(frame.g.unique()), "z"]))
    d = build_design(cat, None, formula="y ~ x", group="g")
    assert "z" not in d.spec.groups and len(d.spec.groups) == frame.g.nunique()


def test_array_input():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=30), rng.integers(0, 3, 30), rng.normal(size=30)])
    d = build_design(X, X[:, 0], formula=None, group=1)
    assert d.spec.terms == ["Intercept", "x0", "x2"]
    np.testing.assert_array_equal(d.X[:, 1:], X[:, [0, 2]])
    assert list(d.spec.groups) == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "mutate, formula, match",
    [
        (lambda df: df.drop(columns="floor"), "log_radon ~ floor", "'floor'.*not a column"),
        (lambda df: df.drop(columns="log_radon"), "log_radon ~ floor", "'log_radon'"),
        (
            lambda df: df.assign(floor=np.where(df.index == 3, np.nan, df.floor)),
            "log_radon ~ floor",
            "'floor' contains NaN",
        ),
        (
            lambda df: df.assign(floor=np.where(df.index == 3, np.inf, df.floor)),
            "log_radon ~ floor",
            "'floor' contains infinity",
        ),
        (
            lambda df: df.assign(log_radon=np.where(df.index == 3, np.nan, df.log_radon)),
            "log_radon ~ floor",
            "contains NaN",
        ),
        (
            lambda df: df.assign(county=df.county.where(df.index != 5)),
            "log_radon ~ floor",
            "group column 'county' has 1 missing",
        ),
        (lambda df: df.assign(log_radon="high"), "log_radon ~ floor", "must be numeric"),
        (lambda df: df.head(0), "log_radon ~ floor", "0 rows"),
        (lambda df: df.head(1), "log_radon ~ floor", "at least 2 rows"),
        (lambda df: df, "log_radon ~ floor +", "could not be parsed"),
        (lambda df: df, "log_radon ~ 0", "no terms"),
    ],
)
def test_bad_training_data(radon, mutate, formula, match):
    with pytest.raises(ValueError, match=match):
        build_design(mutate(radon.copy()), None, formula=formula, group="county")


def test_missing_group_column(radon):
    with pytest.raises(ValueError, match="group column 'state' is not a column of X"):
        build_design(radon, None, formula="log_radon ~ floor", group="state")


def test_length_mismatch(radon):
    with pytest.raises(ValueError, match="X has 919 rows but the response 'y' has 10"):
        build_design(radon, np.zeros(10), formula="~ floor", group=None)


def test_no_response_anywhere(radon):
    with pytest.raises(ValueError, match="requires y to be passed"):
        build_design(radon, None, formula="~ floor", group=None)


def test_non_numeric_array_feature():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["u", "v", "w"]})
    with pytest.raises(TypeError, match="feature column 'b' is not numeric"):
        build_design(X, [1.0, 2.0, 3.0], formula=None, group=None)


def test_calls_with_literals_encode_new_data(radon):
    """formulae names a literal (the 1 in np.log(1 + x)) as an empty column: not required."""
    formula = "log_radon ~ np.log(1 + floor) + np.power(log_uranium, 2) + I(floor * 2)"
    d = build_design(radon, None, formula=formula, group="county")
    assert d.spec.terms == [
        "Intercept",
        "np.log(1 + floor)",
        "np.power(log_uranium, 2)",
        "I(floor * 2)",
    ]
    new = radon.iloc[:5][["floor", "log_uranium", "county"]]
    expected = np.column_stack([np.ones(5), np.log1p(new.floor), new.log_uranium**2, new.floor * 2])
    np.testing.assert_allclose(d.spec.transform(new).X, expected)
    np.testing.assert_allclose(d.X[:5], expected)
