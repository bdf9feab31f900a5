"""Priors as users write them: every distribution of the set is the prior the model uses, in
data units; strong priors move the posterior where theory says; names, errors, saving."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from hierreg import HierarchicalLinearRegression, Prior
from hierreg.model.priors import DISTRIBUTIONS, distributions_for
from tests.conftest import fit_quietly

# data far from unit scale: the sampler's standardised priors differ from the stated ones
# by large factors, so a wrong transformation shows
Y_SCALE, X_SCALE = 300.0, 50.0


@pytest.fixture(scope="module")
def unit_data():
    rng = np.random.default_rng(4)
    n, groups = 120, 6
    frame = pd.DataFrame({"x": rng.normal(10.0, X_SCALE, n), "g": rng.integers(0, groups, n)})
    frame["y"] = 1000.0 + 2.0 * frame["x"] + rng.normal(0, Y_SCALE, n)
    return frame


# (prior, the scipy distribution it is): one per distribution of the set
COEFFICIENT_PRIORS = [
    (Prior("Normal", mu=3.0, sigma=2.0), stats.norm(3.0, 2.0)),
    (Prior("StudentT", nu=4.0, mu=-1.0, sigma=0.5), stats.t(4.0, -1.0, 0.5)),
    (Prior("Cauchy", alpha=2.0, beta=0.3), stats.cauchy(2.0, 0.3)),
    (Prior("Laplace", mu=0.5, b=1.5), stats.laplace(0.5, 1.5)),
]
SCALE_PRIORS = [
    (Prior("HalfNormal", sigma=40.0), stats.halfnorm(scale=40.0)),
    (Prior("HalfCauchy", beta=20.0), stats.halfcauchy(scale=20.0)),
    (Prior("HalfStudentT", nu=3.0, sigma=30.0), stats.halfnorm(scale=1.0)),  # see below
    (Prior("Exponential", lam=0.02), stats.expon(scale=50.0)),
    (Prior("Gamma", alpha=3.0, beta=0.05), stats.gamma(3.0, scale=20.0)),
    (Prior("InverseGamma", alpha=4.0, beta=150.0), stats.invgamma(4.0, scale=150.0)),
    (Prior("LogNormal", mu=3.0, sigma=0.5), stats.lognorm(0.5, scale=np.exp(3.0))),
    (Prior("Uniform", lower=10.0, upper=90.0), stats.uniform(10.0, 80.0)),
]


def _half_t(nu, sigma):
    """|t_nu| * sigma (scipy has no half-t)."""

    class HalfT:
        def cdf(self, x):
            return 2 * stats.t(nu, 0, sigma).cdf(x) - 1

    return HalfT()


def _agrees(draws, dist, where):
    """The draws' 10/25/50/75/90% points sit at those probabilities of ``dist``: the true CDF
    at each sample quantile is within 4 Monte Carlo standard errors of its level, the error
    from the quantile's effective sample size (ArviZ), whatever the tails. ``draws``:
    (chain, draw) values."""
    import arviz as az

    draws = np.asarray(draws).reshape(np.shape(draws)[0], -1)
    tree = xr.Dataset({"v": (("chain", "draw"), draws)})
    for p in (0.1, 0.25, 0.5, 0.75, 0.9):
        got = float(dist.cdf(np.quantile(draws, p)))
        ess = float(az.ess(tree, method="quantile", prob=p)["v"])
        tolerance = 4 * np.sqrt(p * (1 - p) / ess)
        assert abs(got - p) < tolerance, (
            f"{where}: P(X <= sample {p:.0%} point) = {got:.3f} (ESS {ess:.0f})"
        )


def _prior_tree(frame, pooling, priors, draws=1500):
    est = HierarchicalLinearRegression(
        "y ~ x", group="g", pooling=pooling, priors=priors, chains=2, tune=500,
        random_state=7, progressbar=False,
    )  # fmt: skip
    return est.sample_prior_predictive(frame, draws=draws)


def test_the_set_is_the_documented_one():
    assert distributions_for("coefficient") == ["Normal", "StudentT", "Cauchy", "Laplace", "Flat"]
    assert distributions_for("scale") == [
        "HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential", "Gamma", "InverseGamma",
        "LogNormal", "Uniform",
    ]  # fmt: skip
    assert distributions_for("correlation") == ["LKJ"]
    tested = {p.distribution for p, _ in COEFFICIENT_PRIORS + SCALE_PRIORS}
    assert tested | {"Flat", "LKJ"} == set(DISTRIBUTIONS)


@pytest.mark.parametrize(
    "prior, dist", COEFFICIENT_PRIORS, ids=[p.distribution for p, _ in COEFFICIENT_PRIORS]
)
def test_a_coefficient_prior_is_the_one_used_in_data_units(unit_data, prior, dist):
    tree = _prior_tree(unit_data, "complete", {"x": prior})
    _agrees(tree["prior"]["beta"].sel(term="x").values, dist, f"x ~ {prior}")


@pytest.mark.parametrize("prior, dist", SCALE_PRIORS, ids=[p.distribution for p, _ in SCALE_PRIORS])
def test_a_scale_prior_is_the_one_used_in_data_units(unit_data, prior, dist):
    if prior.distribution == "HalfStudentT":
        dist = _half_t(prior.params["nu"], prior.params["sigma"])
    tree = _prior_tree(unit_data, "complete", {"sigma": prior})
    _agrees(tree["prior"]["sigma"].values, dist, f"sigma ~ {prior}")


def test_mixed_distributions_in_one_vector_are_each_exact(unit_data):
    """Terms of one vector with different distributions (a Normal carrier corrected by a
    potential), between-group sds included, under partial pooling."""
    priors = {
        "Intercept": Prior("Cauchy", alpha=1000.0, beta=50.0),
        "x": Prior("Laplace", mu=2.0, b=0.5),
        "tau[Intercept]": Prior("Gamma", alpha=2.0, beta=0.02),
        "tau[x]": Prior("HalfCauchy", beta=0.3),
    }
    tree = _prior_tree(unit_data, "partial", priors, draws=2000)
    mu, tau = tree["prior"]["mu"], tree["prior"]["tau"]
    _agrees(mu.sel(term="Intercept").values, stats.cauchy(1000.0, 50.0), "mu[Intercept]")
    _agrees(mu.sel(term="x").values, stats.laplace(2.0, 0.5), "mu[x]")
    _agrees(tau.sel(term="Intercept").values, stats.gamma(2.0, scale=50.0), "tau[Intercept]")
    _agrees(tau.sel(term="x").values, stats.halfcauchy(scale=0.3), "tau[x]")


def test_a_full_covariance_uses_the_sd_prior_and_the_lkj_shape(unit_data):
    priors = {"tau": Prior("Exponential", lam=0.05), "corr": Prior("LKJ", eta=4.0)}
    est = HierarchicalLinearRegression(
        "y ~ x", group="g", covariance="full", parametrization="noncentered", priors=priors,
        chains=2, tune=500, random_state=3, progressbar=False,
    )  # fmt: skip
    prior = est.sample_prior_predictive(unit_data, draws=2000)["prior"]
    _agrees(prior["tau"].sel(term="Intercept").values, stats.expon(scale=20.0), "tau")
    # LKJ(eta) in 2 dimensions: (r + 1) / 2 ~ Beta(eta, eta)
    r = prior["corr"].isel(corr_term=0, corr_term_2=1).values
    _agrees((r + 1) / 2, stats.beta(4.0, 4.0), "corr")


def test_a_strong_prior_gives_the_conjugate_posterior():
    """Complete pooling, a noise sd pinned by a narrow prior: the coefficients' posterior is
    the conjugate normal one, mean (X'X/s^2 + P)^-1 (X'y/s^2 + P m)."""
    rng = np.random.default_rng(11)
    n = 30
    frame = pd.DataFrame({"x": rng.normal(0, 1, n)})
    frame["y"] = 1.0 + 2.0 * frame["x"] + rng.normal(0, 1.0, n)
    m, s0 = np.array([0.0, 5.0]), np.array([10.0, 0.2])  # a strong prior pulling the slope up
    priors = {
        "Intercept": Prior("Normal", mu=m[0], sigma=s0[0]),
        "x": Prior("Normal", mu=m[1], sigma=s0[1]),
        "sigma": Prior("Uniform", lower=0.999, upper=1.001),
    }
    est = fit_quietly(
        HierarchicalLinearRegression(
            "y ~ x", priors=priors, draws=2000, random_state=0, progressbar=False
        ),
        frame,
    )
    X = np.column_stack([np.ones(n), frame["x"]])
    precision = X.T @ X + np.diag(1 / s0**2)
    mean = np.linalg.solve(precision, X.T @ frame["y"].to_numpy() + m / s0**2)
    sd = np.sqrt(np.diag(np.linalg.inv(precision)))
    beta = est.idata_["posterior"]["beta"].values.reshape(-1, 2)
    # Monte Carlo error: 8000 draws, an effective sample size well above 1000
    assert np.all(np.abs(beta.mean(axis=0) - mean) < 4 * sd / np.sqrt(1000))
    np.testing.assert_allclose(beta.std(axis=0), sd, rtol=0.08)
    assert mean[1] > 3.0  # the prior did move it: the data alone say about 2


def test_a_heavy_tailed_prior_lets_a_far_effect_through_where_a_normal_one_shrinks():
    """With one group far from the others, a Cauchy population prior on the intercept is
    irrelevant, but a narrow Normal prior on it pulls the population mean towards 0."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"g": np.repeat(np.arange(8), 10)})
    frame["y"] = 20.0 + rng.normal(0, 1, len(frame))
    fits = {}
    for name, prior in [
        ("narrow", Prior("Normal", mu=0.0, sigma=1.0)),
        ("cauchy", Prior("Cauchy", alpha=0.0, beta=1.0)),
    ]:
        est = HierarchicalLinearRegression(
            "y ~ 1", group="g", priors={"Intercept": prior}, draws=500, tune=500,
            random_state=1, progressbar=False,
        )  # fmt: skip
        fits[name] = float(fit_quietly(est, frame).population_coef_["Intercept"])
    assert fits["cauchy"] == pytest.approx(20.0, abs=0.6)
    assert fits["narrow"] < fits["cauchy"] - 2.0


# --- names, errors, saving ----------------------------------------------------------------


def test_priors_are_named_as_in_the_posterior(unit_data):
    est = HierarchicalLinearRegression(
        "y ~ x", group="g", likelihood="student_t", covariance="full",
        parametrization="noncentered", draws=50, tune=50, chains=1, progressbar=False,
        priors={"nu": Prior("Gamma", alpha=3.0, beta=0.2), "corr": Prior("LKJ", eta=3.0)},
    )  # fmt: skip
    fit_quietly(est, unit_data)
    names = set(est.priors_)
    assert {"Intercept", "x", "tau[Intercept]", "tau[x]", "sigma", "nu", "corr"} == names
    assert est.priors_["nu"] == Prior("Gamma", alpha=3.0, beta=0.2)
    assert est.default_priors_["nu"] == Prior("Gamma", alpha=2.0, beta=0.1)
    assert est.default_priors_["corr"] == Prior("LKJ", eta=2.0)
    for name in ("nu", "corr", "tau", "sigma", "mu"):
        assert name in est.idata_["posterior"]


@pytest.mark.parametrize(
    "priors, match",
    [
        ({"tau": Prior("Normal", mu=0, sigma=1)}, r"'Normal' is not a prior for a scale"),
        ({"x": Prior("HalfCauchy", beta=1)}, r"not a prior for a coefficient.*'Cauchy'"),
        ({"sigma": Prior("HalfCauchy", sigma=1)}, r"HalfCauchy takes parameters \['beta'\]"),
        ({"sigma": Prior("Gamma", alpha=-1, beta=1)}, "alpha must be > 0"),
        ({"sigma": Prior("Uniform", lower=-1, upper=1)}, "0 <= lower < upper"),
        ({"tau": Prior("Beta", alpha=1, beta=1)}, "valid:.*HalfNormal"),
        ({"nu": Prior("Gamma", alpha=2, beta=0.1)}, "unknown parameter name.*'nu'"),
        ({"corr": Prior("LKJ", eta=2)}, "unknown parameter name.*'corr'"),
        (
            {"tau[Intercept]": Prior("Uniform", lower=0, upper=9)},
            "Uniform prior must apply to every term",
        ),
    ],
)
def test_a_prior_that_does_not_fit_is_an_error_before_sampling(
    unit_data, no_sampling, priors, match
):
    est = HierarchicalLinearRegression("y ~ x", group="g", priors=priors, progressbar=False)
    with pytest.raises(ValueError, match=match):
        est.fit(unit_data)


def test_a_flat_prior_warns_and_has_no_prior_draws(unit_data):
    est = HierarchicalLinearRegression(
        "y ~ x", priors={"x": Prior("Flat")}, draws=200, tune=200, chains=1,
        random_state=0, progressbar=False,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="Flat"):
        fit_quietly(est, unit_data)
    ols = np.polyfit(unit_data["x"], unit_data["y"], 1)[0]
    assert abs(float(est.coef_["x"].iloc[0]) - ols) < 0.2  # the data identify it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="Flat.*cannot be sampled"):
            est.sample_prior_predictive(unit_data)


def test_prior_text_round_trips():
    for prior, _ in COEFFICIENT_PRIORS + SCALE_PRIORS:
        assert Prior.parse(str(prior)) == prior
    with pytest.raises(ValueError, match="cannot read a prior"):
        Prior.parse("__import__('os')")


def test_general_priors_are_saved_and_loaded(unit_data, tmp_path):
    priors = {
        "Intercept": Prior("StudentT", nu=3.0, mu=1000.0, sigma=100.0),
        "tau[x]": Prior("HalfCauchy", beta=1.0),
        "tau[Intercept]": Prior("InverseGamma", alpha=3.0, beta=100.0),
        "sigma": Prior("LogNormal", mu=5.0, sigma=1.0),
    }
    est = fit_quietly(
        HierarchicalLinearRegression(
            "y ~ x", group="g", priors=priors, draws=100, tune=100, chains=1,
            random_state=0, progressbar=False,
        ),
        unit_data,
    )  # fmt: skip
    est.save(tmp_path / "m")
    back = HierarchicalLinearRegression.load(tmp_path / "m")
    assert back.priors_ == est.priors_
    assert back.get_params()["priors"] == priors
    np.testing.assert_array_equal(back.predict(unit_data), est.predict(unit_data))


def test_the_prior_predictive_leaves_the_estimator_alone_and_plots(unit_data):
    import matplotlib

    matplotlib.use("Agg")
    from hierreg import plots

    est = HierarchicalLinearRegression(
        "y ~ x", group="g", chains=2, tune=300, random_state=0, progressbar=False
    )
    tree = est.sample_prior_predictive(unit_data, draws=300)
    assert not hasattr(est, "idata_")
    assert tree["prior_predictive"]["y"].shape == (2, 300, len(unit_data))
    np.testing.assert_array_equal(tree["observed_data"]["y"].values, unit_data["y"])
    # the default priors are scaled to the data: draws of the response on its scale
    spread = np.std(tree["prior_predictive"]["y"].values)
    assert Y_SCALE / 3 < spread < 100 * Y_SCALE
    assert plots.prior_predictive(tree).get_title() == "prior predictive check"
    fit_quietly(est, unit_data)
    axes = plots.prior_posterior(est, tree)
    titles = [ax.get_title() for ax in axes if ax.get_visible()]
    assert titles == ["mu[Intercept]", "mu[x]", "tau[Intercept]", "tau[x]", "sigma"]


# --- a strong prior moves the posterior where theory says, for every distribution ---------

N_ROWS = 30
# priors that disagree with the data (slope about 2, noise sd about 1)
STRONG_COEFFICIENT_PRIORS = [
    Prior("Normal", mu=4.0, sigma=0.2),
    Prior("StudentT", nu=3.0, mu=4.0, sigma=0.2),
    Prior("Cauchy", alpha=4.0, beta=0.2),
    Prior("Laplace", mu=4.0, b=0.2),
]
STRONG_SCALE_PRIORS = [
    Prior("HalfNormal", sigma=0.4),
    Prior("HalfCauchy", beta=0.05),
    Prior("HalfStudentT", nu=3.0, sigma=0.2),
    Prior("Exponential", lam=5.0),
    Prior("Gamma", alpha=50.0, beta=20.0),
    Prior("InverseGamma", alpha=30.0, beta=75.0),
    Prior("LogNormal", mu=float(np.log(2.5)), sigma=0.1),
    Prior("Uniform", lower=1.5, upper=3.0),
]


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(21)
    frame = pd.DataFrame({"x": rng.normal(0, 1, N_ROWS)})
    frame["y"] = 1.0 + 2.0 * frame["x"] + rng.normal(0, 1.0, N_ROWS)
    return frame


def _log_density(prior: Prior, grid: np.ndarray) -> np.ndarray:
    import pymc as pm

    dist = getattr(pm, prior.distribution).dist(**prior.params)
    return pm.logp(dist, grid).eval(mode="FAST_COMPILE")


def _quadrature(grid, log_post):
    """Mean and sd of a 1-D density known up to a constant on an even grid."""
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    mean = float(np.sum(w * grid))
    return mean, float(np.sqrt(np.sum(w * (grid - mean) ** 2)))


def _fit_strong(frame, priors):
    base = {"Intercept": Prior("Normal", mu=0.0, sigma=100.0)}
    est = HierarchicalLinearRegression(
        "y ~ x", priors={**base, **priors}, draws=2000, random_state=2, progressbar=False
    )
    return fit_quietly(est, frame).idata_["posterior"]


@pytest.mark.parametrize(
    "prior", STRONG_COEFFICIENT_PRIORS, ids=[p.distribution for p in STRONG_COEFFICIENT_PRIORS]
)
def test_a_strong_coefficient_prior_moves_the_slope_as_theory_says(small_data, prior):
    """With the noise sd pinned at 1 and a wide intercept prior, the slope's posterior is
    its prior times N(b_ols, 1 / Sxx): computed by quadrature, it is what the sampler
    draws. Normal and Laplace priors pull the slope towards 4; the Student-t and Cauchy
    tails let the data win."""
    post = _fit_strong(
        small_data, {"x": prior, "sigma": Prior("Uniform", lower=0.999, upper=1.001)}
    )
    x = small_data["x"].to_numpy()
    b_ols = np.polyfit(x, small_data["y"], 1)[0]
    se = 1.0 / np.sqrt(np.sum((x - x.mean()) ** 2))
    grid = np.linspace(b_ols - 10 * se, 4.0 + 10 * se, 20001)
    mean, sd = _quadrature(grid, _log_density(prior, grid) - (grid - b_ols) ** 2 / (2 * se**2))
    draws = np.ravel(post["beta"].sel(term="x").values)
    assert abs(draws.mean() - mean) < 0.15 * sd, (draws.mean(), mean, b_ols)
    assert draws.std() == pytest.approx(sd, rel=0.1)


@pytest.mark.parametrize(
    "prior", STRONG_SCALE_PRIORS, ids=[p.distribution for p in STRONG_SCALE_PRIORS]
)
def test_a_strong_noise_prior_moves_sigma_as_theory_says(small_data, prior):
    """With (nearly) flat coefficient priors the posterior of the noise sd is its prior times
    sigma^-(n - 2) exp(-SSR / (2 sigma^2)) (the coefficients integrated out): by quadrature,
    it is what the sampler draws."""
    post = _fit_strong(small_data, {"x": Prior("Normal", mu=0.0, sigma=100.0), "sigma": prior})
    x, y = small_data["x"].to_numpy(), small_data["y"].to_numpy()
    residuals = y - np.polyval(np.polyfit(x, y, 1), x)
    ssr = float(residuals @ residuals)
    grid = np.linspace(1e-3, 6.0, 30001)
    log_lik = -(N_ROWS - 2) * np.log(grid) - ssr / (2 * grid**2)
    mean, sd = _quadrature(grid, _log_density(prior, grid) + log_lik)
    draws = np.ravel(post["sigma"].values)
    assert abs(draws.mean() - mean) < 0.15 * sd, (draws.mean(), mean)
    assert draws.std() == pytest.approx(sd, rel=0.1)


# --- the standardised model is the model written in data units ----------------------------


@pytest.mark.parametrize(
    "name, prior",
    [("x", p) for p, _ in COEFFICIENT_PRIORS] + [("sigma", p) for p, _ in SCALE_PRIORS],
    ids=[f"x-{p.distribution}" for p, _ in COEFFICIENT_PRIORS]
    + [f"sigma-{p.distribution}" for p, _ in SCALE_PRIORS],
)
def test_the_sampled_density_is_the_data_unit_model_up_to_a_constant(unit_data, name, prior):
    """hierreg's model on its standardised scale and the same model written by hand in data
    units differ in log density by a constant (the change of variables): at random points,
    mapped between the two scales, the difference is the same to 1e-8."""
    import pymc as pm

    from hierreg.design.build import build_design
    from hierreg.model.graph import build_model
    from hierreg.model.priors import default_priors, with_user_priors
    from hierreg.model.standardize import Standardization
    from hierreg.model.structure import ModelStructure
    from tests.conftest import logp_fn

    design = build_design(unit_data, None, formula="y ~ x", group=None)
    # a coefficient prior on both terms: the distribution itself in the graph (one term only
    # would use the carrier and its correction, checked by the prior-only tests)
    user = {name: prior} if name == "sigma" else {"Intercept": prior, "x": prior}
    priors = with_user_priors(default_priors(design.X, design.y, design.spec.terms), user)
    units = Standardization.from_design(design)
    ours = build_model(
        units.design(design), ModelStructure("complete", (False, False)), units.priors(priors)
    )
    with pm.Model() as hand:
        coef = [getattr(pm, p.distribution)(f"b{k}", **p.params) for k, p in enumerate(priors.coef)]
        sigma = getattr(pm, priors.sigma.distribution)("sigma", **priors.sigma.params)
        pm.Normal("y", coef[0] + coef[1] * design.X[:, 1], sigma, observed=design.y)
    ours_logp, hand_logp = logp_fn(ours, jacobian=False), logp_fn(hand, jacobian=False)

    def value(model, rv_name, x):
        """``x`` as the model's value variable for ``rv_name`` holds it (e.g. its log)."""
        rv = model[rv_name]
        transform = model.rvs_to_transforms[rv]
        return x if transform is None else transform.forward(x, *rv.owner.inputs).eval()

    def value_name(model, rv_name):
        return model.rvs_to_values[model[rv_name]].name

    rng = np.random.default_rng(1)
    differences = []
    for _ in range(4):
        beta = np.array([1000.0, 2.0]) + rng.normal(0, [50.0, 0.5])
        s = float(rng.uniform(20.0, 80.0))  # inside every scale prior's support here
        hand_point = {
            "b0": beta[0],
            "b1": beta[1],
            value_name(hand, "sigma"): value(hand, "sigma", s),
        }
        ours_point = {
            "beta": (beta - units.coef_shift) / units.coef_factor,
            value_name(ours, "sigma"): value(ours, "sigma", s / units.y_scale),
        }
        differences.append(ours_logp(ours_point) - hand_logp(hand_point))
    assert np.ptp(differences) < 1e-8 * max(1.0, abs(differences[0])), differences
