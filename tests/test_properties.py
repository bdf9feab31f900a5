"""Invariants, checked with hypothesis: row order, group-label renaming, reproducibility."""

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from hierreg import HierarchicalLinearRegression, SamplingWarning
from hierreg.design.build import build_design
from hierreg.model.priors import default_priors
from tests.conftest import FAST, simulate_groups

FRAME, _ = simulate_groups(n_groups=5, n_per_group=12, seed=11)
FIT_SETTINGS = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fit(frame, **params):
    est = HierarchicalLinearRegression("y ~ x", group="g", **{**FAST, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return est.fit(frame)


@given(st.permutations(range(len(FRAME))))
@settings(max_examples=40, deadline=None)
def test_row_order_does_not_change_design_or_priors(order):
    a = build_design(FRAME, None, formula="y ~ x", group="g")
    b = build_design(FRAME.iloc[list(order)], None, formula="y ~ x", group="g")
    assert list(a.spec.groups) == list(b.spec.groups)
    np.testing.assert_array_equal(b.X, a.X[list(order)])
    np.testing.assert_array_equal(b.group_index, a.group_index[list(order)])
    pa, pb = (default_priors(d.X, d.y, d.spec.terms) for d in (a, b))
    np.testing.assert_allclose(pb.scale, pa.scale, rtol=1e-12)
    np.testing.assert_allclose(pb.loc, pa.loc, rtol=1e-12)


@given(st.lists(st.text(min_size=1, max_size=6), min_size=5, max_size=5, unique=True))
@settings(max_examples=40, deadline=None)
def test_renaming_labels_renames_groups_only(new_labels):
    old = sorted(FRAME["g"].unique())
    mapping = dict(zip(old, new_labels, strict=True))
    renamed = FRAME.assign(g=FRAME["g"].map(mapping))
    a = build_design(FRAME, None, formula="y ~ x", group="g")
    b = build_design(renamed, None, formula="y ~ x", group="g")
    # each row keeps its (renamed) group; the design matrix is untouched
    np.testing.assert_array_equal(b.spec.groups[b.group_index], renamed["g"].to_numpy())
    np.testing.assert_array_equal(a.X, b.X)
    assert sorted(b.spec.groups) == sorted(new_labels)


@given(st.lists(st.integers(0, 10**6), min_size=5, max_size=5, unique=True).map(sorted))
@FIT_SETTINGS
def test_order_preserving_renaming_gives_identical_posterior(codes):
    """Same order of groups -> same arrays -> bit-identical draws, coordinates renamed."""
    old = sorted(FRAME["g"].unique())
    mapping = {o: f"site-{c:07d}" for o, c in zip(old, codes, strict=True)}
    a = _fit(FRAME)
    b = _fit(FRAME.assign(g=FRAME["g"].map(mapping)))
    beta_a, beta_b = a.idata_["posterior"]["beta"], b.idata_["posterior"]["beta"]
    np.testing.assert_array_equal(beta_a.values, beta_b.values)
    assert list(beta_b["g"].values) == [mapping[o] for o in beta_a["g"].values]
    pd.testing.assert_index_equal(
        b.coef_.index, pd.Index([mapping[o] for o in a.coef_.index], name="g")
    )


@given(st.permutations(range(len(FRAME))))
@FIT_SETTINGS
def test_row_order_changes_posterior_only_within_monte_carlo_error(order):
    a = _fit(FRAME, pooling="none")
    b = _fit(FRAME.iloc[list(order)], pooling="none")
    post_a = a.idata_["posterior"]["beta"]
    sd = post_a.std(("chain", "draw")).values
    n = post_a.sizes["chain"] * post_a.sizes["draw"]
    # 5 Monte Carlo standard errors of a difference of means, ESS taken as n / 4
    tolerance = 5 * np.sqrt(2) * sd / np.sqrt(n / 4)
    assert (np.abs(a.coef_.to_numpy() - b.coef_.to_numpy()) < tolerance).all()


def test_clone_and_refit_reproduces():
    a = _fit(FRAME)
    b = clone(a)
    assert not hasattr(b, "idata_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        b.fit(FRAME)
    for name in a.idata_["posterior"].data_vars:
        np.testing.assert_array_equal(
            a.idata_["posterior"][name].values, b.idata_["posterior"][name].values
        )
