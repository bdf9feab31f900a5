"""Grouping factors from group= or from the formula's group-specific terms (no sampling)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierreg import HierarchicalLinearRegression
from hierreg.design.build import build_design
from hierreg.design.grouping import resolve_grouping, split_group_terms

SLOPE, CATEGORY = ["Intercept", "x"], ["Intercept", "C(c)"]
NESTED = [("state", ["Intercept"]), ("state:county", ["Intercept"])]


@pytest.mark.parametrize(
    ("formula", "common", "factors"),
    [
        ("y ~ x + (1 + x | g)", "y ~ x", [("g", ["Intercept", "x"])]),
        ("y ~ x + (x | g1) + (1 | g2)", "y ~ x", [("g1", SLOPE), ("g2", ["Intercept"])]),
        ("y ~ x + (0 + x | g)", "y ~ x", [("g", ["x"])]),
        ("y ~ x + (1 | state/county)", "y ~ x", NESTED),
        ("y ~ x + (1 | a:b)", "y ~ x", [("a:b", ["Intercept"])]),
        ("y ~ (1 | g) + (0 + x | g)", "y ~ 1", [("g", ["Intercept", "x"])]),
        ("y ~ np.log(x) + C(c) + (C(c) | g)", "y ~ np.log(x) + C(c)", [("g", CATEGORY)]),
        ("x + (1|g)", "x", [("g", ["Intercept"])]),
    ],
)  # fmt: skip
def test_split_group_terms(formula, common, factors):
    assert split_group_terms(formula) == (common, factors)


def test_resolve_grouping_from_group_and_varying():
    g = resolve_grouping("y ~ x", ["item", "rater"], {"rater": ["Intercept"]})
    assert g.factors == ("item", "rater") and g.varying == ("all", ["Intercept"])
    assert g.group == "item" and g.extra == ("rater",) and g.formula == "y ~ x"
    # a single column, a list of one, and None
    assert resolve_grouping("y ~ x", "g", "all").factors == ("g",)
    assert resolve_grouping("y ~ x", ["g"], ["x"]).varying == (["x"],)
    assert resolve_grouping("y ~ x", None, "all").factors == ()
    # the formula's group terms define the same thing
    f = resolve_grouping("y ~ x + (1 + x | item) + (1 | rater)", None, "all")
    assert f.factors == ("item", "rater") and f.varying == (["Intercept", "x"], ["Intercept"])


@pytest.mark.parametrize(
    ("formula", "group", "varying", "error", "message"),
    [
        ("y ~ x + (1|g)", "g", "all", ValueError, "group must then be None, got group='g'"),
        ("y ~ x + (1|g)", None, ["x"], ValueError, "varying must then be 'all'"),
        ("y ~ x", [], "all", ValueError, "group is an empty list"),
        ("y ~ x", ["a", "a"], "all", ValueError, r"group lists \['a'\] more than once"),
        ("y ~ x", ["a", ["b"]], "all", TypeError, "group must list column names"),
        ("y ~ x", ["a", "b"], {"c": "all"}, ValueError, r"factor\(s\) \['c'\] that are not in"),
        ("y ~ x + ( | g)", None, "all", ValueError, "needs terms on the left of '|'"),
    ],
)
def test_resolve_grouping_errors(formula, group, varying, error, message):
    with pytest.raises(error, match=message):
        resolve_grouping(formula, group, varying)


def _nested_frame():
    # county "c1" exists in two states: two different groups
    return pd.DataFrame(
        {
            "state": ["A", "A", "B", "B", "B"],
            "county": ["c1", "c2", "c1", "c1", "c3"],
            "x": [0.1, 0.2, 0.3, 0.4, 0.5],
            "y": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )


def test_nested_labels_are_not_merged():
    design = build_design(
        _nested_frame(), None, formula="y ~ x", group="state", factors=["state:county"]
    )
    (factor,) = design.spec.factors
    assert list(factor.levels) == ["A:c1", "A:c2", "B:c1", "B:c3"]
    np.testing.assert_array_equal(design.factor_index[0], [0, 1, 2, 2, 3])
    np.testing.assert_array_equal(design.group_index, [0, 0, 1, 1, 1])
    # new data: a seen pair, and an unseen pair of seen labels
    new = pd.DataFrame({"state": ["B", "A"], "county": ["c3", "c3"], "x": [0.0, 0.0]})
    np.testing.assert_array_equal(design.spec.transform(new).factor_index[0], [3, -1])
    assert design.spec.unseen_groups(new, factor=0) == ["A:c3"]


def test_interaction_factor_errors_name_the_column():
    frame = _nested_frame()
    with pytest.raises(ValueError, match=r"needs column\(s\) \['district'\]"):
        build_design(frame, None, formula="y ~ x", group="state", factors=["state:district"])
    clash = pd.DataFrame({"a": ["p:q", "p"], "b": ["r", "q:r"], "x": 0.0, "y": 1.0})
    with pytest.raises(ValueError, match="merges different combinations"):
        build_design(clash, None, formula="y ~ x", group="a", factors=["a:b"])
    frame.loc[2, "county"] = None
    with pytest.raises(ValueError, match="group column 'county' has 1 missing"):
        build_design(frame, None, formula="y ~ x", group="state", factors=["state:county"])


def _crossed(n=12):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.choice(["a1", "a2", "a3"], n),
            "b": rng.choice(["b1", "b2", "b3"], n),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"group": ["a", "b"], "likelihood_mode": "sufficient"},
            r"likelihood_mode='sufficient' needs one grouping factor, got \['a', 'b'\]",
        ),
        ({"group": ["a", "b"], "varying": {"b": ["z"]}}, "varying term 'z' is not a model term"),
        ({"group": ["a", "missing"]}, "group column 'missing' is not a column of X"),
        ({"formula": "y ~ x + (1|a)", "group": "a"}, "group must then be None"),
        ({"formula": "y ~ 0 + x + (1|a)"}, r"varies 'Intercept' by 'a', but .* not in its common"),
        ({"formula": "y ~ 1 + (x|a)"}, r"add it, e.g. '... \+ x \+ \(... \| a\)'"),
        ({"group": ["a", "b"], "covariance": "full", "varying": ["Intercept"]}, "at least two"),
    ],
)
def test_estimator_rejects_before_sampling(params, message, no_sampling):
    est = HierarchicalLinearRegression(**{"formula": "y ~ x", **params})
    with pytest.raises(ValueError, match=message):
        est.fit(_crossed())


def test_partial_pooling_needs_two_levels_per_factor(no_sampling):
    frame = _crossed().assign(b="b1")
    est = HierarchicalLinearRegression("y ~ x", group=["a", "b"])
    with pytest.raises(ValueError, match="at least 2 groups in factor 'b', got 1"):
        est.fit(frame)


@settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C:D"]), st.sampled_from(["c1", "c2", "c3"])),
        min_size=3,
        max_size=20,
    ),
    seed=st.integers(0, 1000),
)
def test_nested_levels_are_a_partition_invariant_to_row_order(labels, seed):
    """Rows share a nested level exactly when they share (state, county), whatever the row
    order; a permutation of rows permutes the level indices with them."""
    frame = pd.DataFrame(labels, columns=["state", "county"]).assign(
        x=np.arange(len(labels), dtype=float), y=1.0
    )
    design = build_design(frame, None, formula="y ~ x", group="state", factors=["state:county"])
    index = design.factor_index[0]
    pairs = list(zip(frame["state"], frame["county"], strict=True))
    for i in range(len(pairs)):
        for j in range(len(pairs)):
            assert (index[i] == index[j]) == (pairs[i] == pairs[j])
    order = np.random.default_rng(seed).permutation(len(frame))
    shuffled = build_design(
        frame.iloc[order], None, formula="y ~ x", group="state", factors=["state:county"]
    )
    levels = design.spec.factors[0].levels
    assert list(shuffled.spec.factors[0].levels) == list(levels)
    np.testing.assert_array_equal(shuffled.factor_index[0], index[order])
