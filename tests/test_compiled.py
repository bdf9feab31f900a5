"""Compile once, refit many: refits of the same structure reuse the compiled model."""

import pickle

import numpy as np
import pytest
from scipy import stats

import hierreg.sampling.compiled as compiled
from hierreg import HierarchicalLinearRegression
from hierreg.design.build import build_design
from hierreg.model.graph import build_model
from hierreg.model.priors import default_priors
from hierreg.model.standardize import Standardization
from hierreg.model.structure import ModelStructure
from tests.conftest import FAST, fit_quietly, logp_fn, simulate_groups

SMALL = dict(FAST, draws=100, tune=100)


def _fit(frame, **params):
    est = HierarchicalLinearRegression("y ~ x", group="g", **{**SMALL, **params})
    return fit_quietly(est, frame)


def test_slots_are_a_grid_of_the_group_count_alone():
    assert [compiled.slots_for(n) for n in (2, 8, 9, 24, 25, 41, 65, 85, 88, 89)] == [
        8, 8, 16, 24, 40, 64, 88, 88, 88, 136,
    ]  # fmt: skip
    assert compiled.slots_for(1) == 1


def test_refit_with_new_data_reuses_the_compiled_model_and_uses_the_new_data():
    compiled.clear_cache()
    first, _ = simulate_groups(n_groups=8, seed=0)
    second, _ = simulate_groups(n_groups=7, n_per_group=30, mu=(3.0, 1.0), seed=1)
    before = compiled.compilations()
    _fit(first)
    assert compiled.compilations() == before + 1
    reused = _fit(second)  # other rows, other groups, fewer of them: same compiled model
    assert compiled.compilations() == before + 1
    assert list(reused.groups_) == sorted(second["g"].unique())
    assert reused.idata_["posterior"]["beta"].shape[2] == 7  # the empty slots are dropped
    # the same fit compiled from scratch (same slots: 16) gives the very same draws
    compiled.clear_cache()
    fresh = _fit(second)
    assert compiled.compilations() == before + 2
    np.testing.assert_array_equal(
        reused.idata_["posterior"]["beta"].values, fresh.idata_["posterior"]["beta"].values
    )
    assert reused.population_coef_["Intercept"] == pytest.approx(3.0, abs=0.6)


def test_another_structure_or_too_many_groups_compiles_again():
    compiled.clear_cache()
    frame, _ = simulate_groups(n_groups=8, seed=2)
    start = compiled.compilations()
    _fit(frame)
    _fit(frame, pooling="none")
    _fit(frame, varying=["Intercept"])
    assert compiled.compilations() == start + 3
    many, _ = simulate_groups(n_groups=20, n_per_group=5, seed=3)  # 20 groups > 16 slots
    _fit(many)
    assert compiled.compilations() == start + 4
    # sample_kwargs go through pymc.sample: no cache
    _fit(frame, sample_kwargs={"nuts": {"max_treedepth": 8}})
    assert compiled.compilations() == start + 4


def test_cache_is_bounded(monkeypatch):
    compiled.clear_cache()
    monkeypatch.setattr(compiled, "MAX_ENTRIES", 2)
    frame, _ = simulate_groups(n_groups=8, seed=4)
    for pooling in ("partial", "none", "complete"):
        _fit(frame, pooling=pooling)
    assert len(compiled._cache) == 2


def test_fitted_estimators_hold_no_compiled_model():
    frame, _ = simulate_groups(n_groups=8, seed=5)
    est = _fit(frame)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(frame), est.predict(frame))
    assert len(pickle.dumps(est)) < 5_000_000


@pytest.mark.parametrize("mode", ["rows", "sufficient"])
@pytest.mark.parametrize(
    ("pooling", "parametrization"),
    [("partial", "noncentered"), ("partial", "centered"), ("none", "noncentered")],
)
def test_empty_slots_leave_the_posterior_exactly_unchanged(radon, mode, pooling, parametrization):
    """log p(padded) = log p(unpadded) + the empty slots' own independent densities."""
    design = build_design(radon, None, formula="log_radon ~ floor", group="county")
    units = Standardization.from_design(design)
    priors = units.priors(default_priors(design.X, design.y, design.spec.terms))
    structure = ModelStructure(
        pooling, (True, True), parametrization=parametrization, likelihood_mode=mode
    )
    plain = build_model(units.design(design), structure, priors)
    padded = build_model(units.design(design), structure, priors, n_slots=100)
    rng = np.random.default_rng(0)
    point = {k: rng.normal(size=v.shape) for k, v in plain.initial_point().items()}
    flat = next(k for k, v in point.items() if v.size == 2 * 85)
    extra = rng.normal(size=(2, 15))
    padded_point = dict(point)
    padded_point[flat] = np.concatenate([point[flat].reshape(2, 85), extra], axis=1).ravel()
    if pooling == "none":  # empty slots keep the coefficient prior
        free = stats.norm.logpdf(extra, priors.loc[:, None], priors.scale[:, None]).sum()
    else:  # z (non-centred) or the coefficients (centred) of empty slots: Normal(0, 1)
        free = stats.norm.logpdf(extra).sum()
    got = logp_fn(padded)(padded_point)
    assert got == pytest.approx(logp_fn(plain)(point) + free, rel=1e-12)


def test_reused_model_carries_the_new_group_labels():
    compiled.clear_cache()
    first, _ = simulate_groups(n_groups=8, seed=6)
    second, _ = simulate_groups(n_groups=8, seed=7)
    second["g"] = second["g"].str.replace("g", "county_")
    _fit(first, group_noise=True)
    before = compiled.compilations()
    est = _fit(second, group_noise=True)
    assert compiled.compilations() == before
    assert list(est.sigma_.index) == [f"county_{j:02d}" for j in range(8)]
    sigma = est.idata_["posterior"]["sigma"]
    assert list(sigma["g"].values) == list(est.groups_)


def test_partial_pooling_doubles_nutpie_trajectories_once_and_the_others_do_not(monkeypatch):
    import nutpie

    seen = []
    original = nutpie.sample

    def spy(*args, **kwargs):
        seen.append(kwargs.get("extra_doublings", 0))
        return original(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    frame, _ = simulate_groups(n_groups=8, seed=4)
    for pooling in ("partial", "none", "complete"):
        _fit(frame, pooling=pooling)
    assert seen == [1, 0, 0]
    # through pymc.sample (any sample_kwargs): the same default, which the user can change
    _fit(frame, sample_kwargs={"nuts": {"max_treedepth": 8}})
    _fit(frame, sample_kwargs={"nuts": {"extra_doublings": 0}})
    _fit(frame, sample_kwargs={"nuts_sampler_kwargs": {"extra_doublings": 0}})  # old name
    assert seen[3:] == [1, 0, 0]


def test_the_cached_path_and_pymc_sample_give_the_same_groups_without_warmup():
    frame, _ = simulate_groups(n_groups=8, seed=5)
    cached = _fit(frame)
    through_pymc = _fit(frame, sample_kwargs={"nuts": {"max_treedepth": 9}})
    assert set(cached.idata_.children) == set(through_pymc.idata_.children)
    assert not any("warmup" in name for name in cached.idata_.children)
