"""parametrization="auto": the per-group centring choice, and that it leaves the model as is."""

import warnings

import numpy as np
import pandas as pd
import pytest

from hierreg import HierarchicalLinearRegression, SamplingWarning
from hierreg.design.build import build_design
from hierreg.model.centring import MIN_GROUPS, THRESHOLD, _own_precision, centring_mask
from hierreg.model.graph import build_model, model_data
from hierreg.model.priors import default_priors
from hierreg.model.structure import ModelStructure
from hierreg.model.sufficient import SufficientStatistics
from hierreg.sampling.compiled import compilations
from tests.conftest import logp_fn


def _groups(sizes, tau=(0.8, 0.5), sigma=1.0, seed=0, x_of=None):
    """Rows of groups with the given sizes: y = a_g + b_g x + noise."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(len(sizes)), sizes)
    x = rng.normal(size=g.size) if x_of is None else x_of(g, rng)
    a = 1.0 + tau[0] * rng.normal(size=len(sizes))
    b = -0.5 + tau[1] * rng.normal(size=len(sizes))
    y = a[g] + b[g] * x + sigma * rng.normal(size=g.size)
    return pd.DataFrame({"g": g, "x": x, "y": y})


def _mask(frame, varying=(0, 1)):
    X = np.column_stack([np.ones(len(frame)), frame["x"]])
    n_groups = frame["g"].nunique()
    stats = SufficientStatistics.from_arrays(X, frame["y"].to_numpy(), frame["g"], n_groups)
    return centring_mask(stats, np.array(varying))


def test_data_rich_groups_are_centred_and_sparse_ones_are_not():
    frame = _groups([400] * 30 + [2] * 10)
    mask = _mask(frame)
    assert mask.shape == (40, 2)
    np.testing.assert_array_equal(mask[:30], 1.0)
    np.testing.assert_array_equal(mask[30:], 0.0)


def test_the_threshold_is_on_the_precision_ratio():
    # sigma = 1, tau = 0.5, 35 groups: tau^2 enters as 0.25 (1 - 2 sqrt(2 / 34)) = 0.129, so
    # a group of n rows centres its intercept when 0.129 n > THRESHOLD
    frame = _groups([1000] * 30 + [4, 8, 12, 100, 200], tau=(0.5, 0.5), seed=3)
    intercepts = _mask(frame, varying=(0,))[30:, 0]
    np.testing.assert_array_equal(intercepts, [0.0, 0.0, 0.0, 1.0, 1.0])
    assert 0.129 * 12 < THRESHOLD < 0.129 * 100


def test_a_column_constant_within_a_group_is_not_centred():
    # x is 1 in every row of groups 0-4 (like a county whose houses all have a first floor):
    # the data pin a + b there, neither a nor b
    def x_of(g, rng):
        return np.where(g < 5, 1.0, rng.normal(size=g.size))

    frame = _groups([300] * 30, x_of=x_of)
    mask = _mask(frame)
    np.testing.assert_array_equal(mask[:5], 0.0)
    np.testing.assert_array_equal(mask[5:], 1.0)
    # with the intercept alone varying (the slope shared), group 0-4's intercepts are pinned
    np.testing.assert_array_equal(_mask(frame, varying=(0,)), 1.0)


def test_no_between_group_spread_or_too_few_groups_means_non_centred():
    np.testing.assert_array_equal(_mask(_groups([500] * 40, tau=(0.0, 0.0))), 0.0)
    # however much data: the spread of fewer than 10 groups is too uncertain
    np.testing.assert_array_equal(_mask(_groups([5000] * (MIN_GROUPS - 1))), 0.0)
    assert _mask(_groups([5000] * MIN_GROUPS, tau=(2.0, 2.0))).all()
    np.testing.assert_array_equal(_mask(_groups([1] * 50)), 0.0)  # no group has 2 terms' rows


def test_own_precision_is_the_inverse_of_the_covariance_diagonal_for_full_rank_groups():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 30, 3))
    xtx = np.einsum("gni,gnj->gij", X, X)
    expected = 1.0 / np.diagonal(np.linalg.inv(xtx), axis1=1, axis2=2)
    np.testing.assert_allclose(_own_precision(xtx), expected, rtol=1e-10)


@pytest.fixture(scope="module")
def small_design():
    frame = _groups([100] * 20 + [3] * 6, seed=5)
    return build_design(frame, None, formula="y ~ x", group="g")


def test_mixed_model_is_the_non_centred_model_after_a_change_of_variables(small_design):
    """log p_mixed(u) = log p_nc(z) + log |dz/du|, z = (u - mu) / tau where centred."""
    priors = default_priors(small_design.X, small_design.y, small_design.spec.terms)
    mixed = build_model(small_design, ModelStructure("partial", (True, True), "mixed"), priors)
    plain = build_model(small_design, ModelStructure("partial", (True, True)), priors)
    c = mixed["centring"].get_value()
    assert 0 < c.sum() < c.size  # some coefficients of each kind
    rng = np.random.default_rng(2)
    mixed_logp, plain_logp = logp_fn(mixed), logp_fn(plain)
    for _ in range(5):
        point = {
            "mu": rng.normal(size=2),
            "tau_log__": rng.normal(scale=0.5, size=2),
            "sigma_log__": rng.normal(scale=0.3),
            "z": rng.normal(size=c.size),
        }
        tau = np.repeat(np.exp(point["tau_log__"]), c.size // 2)
        mu = np.repeat(point["mu"], c.size // 2)
        z = np.where(c > 0, (point["z"] - mu) / tau, point["z"])
        expected = plain_logp({**point, "z": z}) - np.sum(np.log(tau[c > 0]))
        assert mixed_logp(point) == pytest.approx(expected, rel=1e-10)


def test_centring_is_data_of_the_compiled_model(small_design):
    priors = default_priors(small_design.X, small_design.y, small_design.spec.terms)
    structure = ModelStructure("partial", (True, True), "mixed")
    # term-major like z, empty slots 0
    values = model_data(small_design, structure, priors, n_slots=32)
    assert values["centring"].shape == (64,)
    np.testing.assert_array_equal(values["centring"].reshape(2, 32)[:, 20:], 0.0)
    np.testing.assert_array_equal(values["centring"].reshape(2, 32)[:, :20], 1.0)


def _fit(frame, **kw):
    kw = {"draws": 500, "tune": 500, "random_state": 1, "progressbar": False, **kw}
    return HierarchicalLinearRegression("y ~ x", group="g", **kw).fit(frame)


def test_auto_is_the_default_and_agrees_with_non_centred():
    frame = _groups([100] * 16 + [2] * 8, seed=7)
    auto = _fit(frame)
    assert auto.get_params()["parametrization"] == "auto"
    assert auto.structure_.parametrization == "mixed"
    assert auto.diagnostics_["centred_share"] == pytest.approx(2 / 3)
    plain = _fit(frame, parametrization="noncentered")
    for est in (auto, plain):
        d = est.diagnostics_
        assert d["divergences"] == 0 and d["max_rhat"] < 1.02, d
    # z holds the standardised offsets for every group, centred or not
    post = auto.idata_["posterior"]
    beta = (post["mu"] + post["tau"] * post["z"]).transpose(*post["beta"].dims)
    np.testing.assert_allclose(beta.values, post["beta"].values, rtol=1e-9, atol=1e-12)
    a, b = auto.coef_.to_numpy(), plain.coef_.to_numpy()
    sd = post["beta"].std(("chain", "draw")).values
    assert np.all(np.abs(a - b) < 4 * sd / np.sqrt(300)), np.abs(a - b) / sd


def test_refits_with_another_centring_reuse_the_compiled_model():
    first = _fit(_groups([100] * 16 + [2] * 8, seed=8))
    before = compilations()
    second = _fit(_groups([2] * 8 + [100] * 16, seed=9))  # other groups are centred now
    assert first.diagnostics_["centred_share"] == second.diagnostics_["centred_share"] > 0
    assert compilations() == before
    assert first.structure_ == second.structure_


def test_auto_with_a_full_covariance_is_non_centred():
    with warnings.catch_warnings():  # 100 draws: a structure check, not a convergence one
        warnings.simplefilter("ignore", SamplingWarning)
        est = _fit(_groups([30] * 6, seed=4), covariance="full", draws=100, tune=100)
    assert est.structure_.parametrization == "noncentered"


def test_auto_where_nothing_qualifies_is_exactly_non_centred():
    frame = _groups([100] * 6, seed=6)  # fewer than 10 groups never centre
    auto, plain = _fit(frame), _fit(frame, parametrization="noncentered")
    assert auto.structure_ == plain.structure_
    assert auto.structure_.parametrization == "noncentered"
    assert "centred_share" not in auto.diagnostics_
    np.testing.assert_array_equal(
        auto.idata_["posterior"]["beta"].values, plain.idata_["posterior"]["beta"].values
    )


def test_auto_through_pymc_sample_stores_the_same_layout():
    frame = _groups([100] * 16 + [2] * 8, seed=7)
    via_pymc = _fit(frame, sampler="pymc", draws=300, tune=300)
    via_nutpie = _fit(frame, draws=300, tune=300)
    assert via_pymc.structure_.parametrization == "mixed"
    assert via_pymc.diagnostics_["centred_share"] == pytest.approx(2 / 3)
    post = via_pymc.idata_["posterior"]
    beta = (post["mu"] + post["tau"] * post["z"]).transpose(*post["beta"].dims)
    np.testing.assert_allclose(beta.values, post["beta"].values, rtol=1e-9, atol=1e-12)
    sd = post["beta"].std(("chain", "draw")).values
    difference = np.abs(via_pymc.coef_.to_numpy() - via_nutpie.coef_.to_numpy())
    assert np.all(difference < 0.5 * sd), difference / sd
