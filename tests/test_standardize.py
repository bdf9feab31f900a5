"""The standardised model is exactly the data-unit model, and invariant to units."""

import numpy as np
import pytest
import xarray as xr

from hierreg.design.build import build_design
from hierreg.model.graph import build_model
from hierreg.model.priors import default_priors
from hierreg.model.standardize import Standardization
from hierreg.model.structure import ModelStructure
from tests.conftest import dlogp_fn, logp_fn


def _standardised(frame, pooling="partial"):
    design = build_design(frame, None, formula="y ~ x", group="g")
    priors = default_priors(design.X, design.y, design.spec.terms)
    units = Standardization.from_design(design)
    varying = (False, False) if pooling == "complete" else (True, True)
    model = build_model(
        units.design(design), ModelStructure(pooling, varying), units.priors(priors)
    )
    return design, priors, units, model


def test_standardised_design_has_unit_scale(simulated):
    frame, _ = simulated
    design, _, units, _ = _standardised(frame)
    std = units.design(design)
    assert std.y.mean() == pytest.approx(0, abs=1e-12) and std.y.std() == pytest.approx(1)
    assert std.X[:, 1].std() == pytest.approx(1) and (std.X[:, 0] == 1).all()


@pytest.mark.parametrize("factor, shift", [(1e6, 0.0), (1e-6, 0.0), (3.0, 50.0)])
@pytest.mark.parametrize("pooling", ["complete", "none", "partial"])
def test_sampled_model_is_identical_whatever_the_response_units(simulated, pooling, factor, shift):
    frame, _ = simulated
    *_, m1 = _standardised(frame, pooling)
    *_, m2 = _standardised(frame.assign(y=frame.y * factor + shift), pooling)
    rng = np.random.default_rng(0)
    point = {k: rng.normal(size=np.shape(v)) for k, v in m1.initial_point().items()}
    assert logp_fn(m2)(point) == pytest.approx(logp_fn(m1)(point), rel=1e-9)
    np.testing.assert_allclose(dlogp_fn(m2)(point), dlogp_fn(m1)(point), rtol=1e-7, atol=1e-9)


def test_restore_inverts_the_mapping_of_coefficients_and_priors(simulated):
    frame, _ = simulated
    design, priors, units, _ = _standardised(frame.assign(y=frame.y * 40 + 7, x=frame.x * 3))
    std_priors = units.priors(priors)
    # a draw equal to the standardised prior location maps back to the data-unit location
    ds = xr.Dataset(
        {
            "beta": (("chain", "draw", "term"), std_priors.loc[None, None, :]),
            "tau": (("chain", "draw", "term"), std_priors.group_sd_scale[None, None, :]),
            "sigma": (("chain", "draw"), np.array([[1 / std_priors.sigma_rate]])),
        },
        coords={"term": ["Intercept", "x"]},
    )
    back = units.restore(ds)
    np.testing.assert_allclose(back["beta"].values.ravel(), priors.loc)
    np.testing.assert_allclose(back["tau"].values.ravel(), priors.group_sd_scale)
    assert back["sigma"].item() == pytest.approx(1 / priors.sigma_rate)


def test_predictions_in_data_units(simulated):
    """A standardised coefficient vector predicts the standardised response consistently."""
    frame, _ = simulated
    design, _, units, _ = _standardised(frame.assign(y=frame.y * 1e3, x=frame.x + 10))
    std = units.design(design)
    beta_std = np.linalg.lstsq(std.X, std.y, rcond=None)[0]
    beta = beta_std * units.coef_factor + units.coef_shift
    np.testing.assert_allclose(design.X @ beta, std.X @ beta_std * units.y_scale + units.y_center)
