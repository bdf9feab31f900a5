"""Priors: the distributions a user may state, the data-scaled defaults, and their units.

Defaults (weakly informative, scaled to the data as in rstanarm and bambi), with
``s_y = sd(y)`` and, for each non-intercept column ``k``, ``s_k = sd(x_k)`` and
``m_k = mean(x_k)`` (a zero sd counts as 1):

* slope ``k``: ``Normal(0, 2.5 s_y / s_k)``;
* intercept: ``Normal(mean(y), sqrt((2.5 s_y)^2 + sum_k (2.5 s_y m_k / s_k)^2))``, wide enough
  for the intercept at ``x = 0`` even when the predictors are far from zero;
* between-group sd of term ``k`` (every grouping factor): ``HalfNormal(scale_k / 2.5)``, one
  response-sd worth of effect;
* residual sd: ``Exponential(1 / s_y)``; Student-t degrees of freedom: ``Gamma(2, 0.1)``;
  correlation matrices (``covariance="full"``): ``LKJ(eta=2)``.

Every scale is proportional to ``s_y`` (and inversely to ``s_k``), so rescaling the response
or a predictor rescales the prior with it.

A user states any prior of :data:`DISTRIBUTIONS` in data units, with PyMC's parameter names
(``Prior("HalfCauchy", beta=5)``). The sampler works on a standardised scale
(:mod:`hierreg.model.standardize`): a coefficient ``b`` is sampled as ``b' = (b - c) / f``,
a scale ``s`` as ``s' = s / f``. Every distribution in the set is closed under that map, so
the prior on the sampler's scale is exactly the stated one (:meth:`Distribution.standardized`):
a location parameter becomes ``(loc - c) / f``, a scale parameter ``scale / f``, a rate
``rate * f``, LogNormal's ``mu`` becomes ``mu - log f``, shape parameters (``nu``, ``alpha``,
``eta``) are unit-free and unchanged. Example: ``tau ~ HalfCauchy(beta=5)`` on log radon
(``s_y = 0.82``) is sampled as ``tau' ~ HalfCauchy(beta=5 / 0.82)``; ``sigma ~ Gamma(2, 4)``
as ``sigma' ~ Gamma(2, 4 * 0.82)``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "ModelPriors",
    "Prior",
    "check_model_priors",
    "check_proper",
    "check_user_priors",
    "default_priors",
    "default_priors_from_moments",
    "format_priors",
    "prior_kinds",
    "safe_sd",
    "with_user_priors",
]

SLOPE_SCALE = 2.5
_PRIOR_TEXT = re.compile(r"(?P<name>[A-Za-z]\w*)\s*\((?P<params>[^()]*)\)")
# LKJ shape of the correlation of varying effects (covariance="full"): 2 mildly favours
# small correlations (as rstanarm's and brms's defaults do for 2+ effects).
LKJ_ETA = 2.0


@dataclass(frozen=True)
class Prior:
    """A named PyMC distribution with its parameters, e.g. ``Prior("Normal", mu=0, sigma=1)``."""

    distribution: str
    params: dict[str, float]

    def __init__(self, distribution: str, **params: float) -> None:
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "params", {k: float(v) for k, v in params.items()})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"Prior({self.distribution!r}{', ' if args else ''}{args})"

    def __str__(self) -> str:
        """``Normal(mu=0, sigma=1)``: the form :meth:`parse` reads."""
        args = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"{self.distribution}({args})"

    def __hash__(self) -> int:
        return hash((self.distribution, tuple(sorted(self.params.items()))))

    @classmethod
    def parse(cls, text: str) -> Prior:
        """``Prior.parse("HalfCauchy(beta=1)")``: the form ``repr`` and the CLI use; the
        parameters are numbers (nothing is evaluated)."""
        match = _PRIOR_TEXT.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"cannot read a prior from {text!r}; write e.g. 'HalfCauchy(beta=1)' or "
                "'Normal(mu=0, sigma=10)'"
            )
        params = {}
        for item in filter(None, (p.strip() for p in match["params"].split(","))):
            key, _, value = item.partition("=")
            try:
                params[key.strip()] = float(value)
            except ValueError:
                raise ValueError(f"prior {text!r}: {item!r} is not name=number") from None
        return cls(match["name"], **params)


@dataclass(frozen=True)
class Distribution:
    """A distribution a prior may use: its PyMC name and parameters, its support, and how
    its parameters change when the parameter it describes is rescaled."""

    name: str
    params: tuple[str, ...]
    # "real" (coefficients), "positive" (scales, degrees of freedom), "correlation"
    support: str
    # the parameter shifted with the location (real support)
    location: str | None = None
    # divided by the unit f (scales), multiplied by it (rates), shifted by -log f (LogNormal)
    scales: tuple[str, ...] = ()
    rates: tuple[str, ...] = ()
    log_scales: tuple[str, ...] = ()
    # must be > 0
    positive: tuple[str, ...] = ()
    # (location, scale) of a Normal/HalfNormal standing in for this one in a vector of
    # several distributions (its density is then corrected to this one exactly)
    carrier: Callable[[Mapping[str, float]], tuple[float, float]] = lambda p: (0.0, 1.0)
    # (s, unit parameters) with prior = s * (this distribution with the unit parameters);
    # see unit_form
    unit: Callable[[Mapping[str, Any], Any], tuple[Any, dict[str, Any]]] | None = None

    def standardized(self, params: Mapping[str, float], shift: float, unit: float) -> dict:
        """The parameters for ``(x - shift) / unit`` when ``x`` has these parameters."""
        if self.support != "real" and shift != 0.0:
            raise ValueError(f"{self.name} describes a positive parameter: it cannot be shifted")
        out = dict(params)
        if self.location is not None:
            out[self.location] = (params[self.location] - shift) / unit
        for p in self.scales:
            out[p] = params[p] / unit
        for p in self.rates:
            out[p] = params[p] * unit
        for p in self.log_scales:
            out[p] = params[p] - math.log(unit)
        return out

    def unit_form(self, params: Mapping[str, Any], xp: Any = np) -> tuple[Any, dict[str, Any]]:
        """``(s, unit_params)`` with ``x = s * t`` and ``t`` of this distribution with
        ``unit_params`` (positive support only); on NumPy values or PyTensor tensors
        (``xp``: the module providing ``exp``)."""
        if self.unit is None:
            raise ValueError(f"{self.name} is not a family of positive scales")
        return self.unit(params, xp)


def _d(name, params, support, **kw) -> Distribution:
    return Distribution(name, tuple(params), support, **kw)


DISTRIBUTIONS: dict[str, Distribution] = {
    d.name: d
    for d in (
        # coefficients and population means
        _d("Normal", ("mu", "sigma"), "real", location="mu", scales=("sigma",),
           positive=("sigma",), carrier=lambda p: (p["mu"], p["sigma"])),
        _d("StudentT", ("nu", "mu", "sigma"), "real", location="mu", scales=("sigma",),
           positive=("nu", "sigma"), carrier=lambda p: (p["mu"], p["sigma"])),
        _d("Cauchy", ("alpha", "beta"), "real", location="alpha", scales=("beta",),
           positive=("beta",), carrier=lambda p: (p["alpha"], p["beta"])),
        _d("Laplace", ("mu", "b"), "real", location="mu", scales=("b",), positive=("b",),
           carrier=lambda p: (p["mu"], p["b"])),
        _d("Flat", (), "real"),
        # scales: between-group sds, the residual sd, degrees of freedom
        _d("HalfNormal", ("sigma",), "positive", scales=("sigma",), positive=("sigma",),
           carrier=lambda p: (0.0, p["sigma"]), unit=lambda p, xp: (p["sigma"], {"sigma": 1.0})),
        _d("HalfCauchy", ("beta",), "positive", scales=("beta",), positive=("beta",),
           carrier=lambda p: (0.0, p["beta"]), unit=lambda p, xp: (p["beta"], {"beta": 1.0})),
        _d("HalfStudentT", ("nu", "sigma"), "positive", scales=("sigma",),
           positive=("nu", "sigma"), carrier=lambda p: (0.0, p["sigma"]),
           unit=lambda p, xp: (p["sigma"], {"nu": p["nu"], "sigma": 1.0})),
        _d("Exponential", ("lam",), "positive", rates=("lam",), positive=("lam",),
           carrier=lambda p: (0.0, 1.0 / p["lam"]),
           unit=lambda p, xp: (1.0 / p["lam"], {"lam": 1.0})),
        _d("Gamma", ("alpha", "beta"), "positive", rates=("beta",), positive=("alpha", "beta"),
           carrier=lambda p: (0.0, p["alpha"] / p["beta"]),
           unit=lambda p, xp: (1.0 / p["beta"], {"alpha": p["alpha"], "beta": 1.0})),
        _d("InverseGamma", ("alpha", "beta"), "positive", scales=("beta",),
           positive=("alpha", "beta"), carrier=lambda p: (0.0, p["beta"] / p["alpha"]),
           unit=lambda p, xp: (p["beta"], {"alpha": p["alpha"], "beta": 1.0})),
        _d("LogNormal", ("mu", "sigma"), "positive", log_scales=("mu",), positive=("sigma",),
           carrier=lambda p: (0.0, math.exp(p["mu"])),
           unit=lambda p, xp: (xp.exp(p["mu"]), {"mu": 0.0, "sigma": p["sigma"]})),
        _d("Uniform", ("lower", "upper"), "positive", scales=("lower", "upper"),
           carrier=lambda p: (0.0, p["upper"]),
           unit=lambda p, xp: (p["upper"], {"lower": p["lower"] / p["upper"], "upper": 1.0})),
        # correlation matrices
        _d("LKJ", ("eta",), "correlation", positive=("eta",)),
    )
}  # fmt: skip

# what each kind of parameter may take
KIND_SUPPORT = {"coefficient": "real", "scale": "positive", "correlation": "correlation"}


def distributions_for(kind: str) -> list[str]:
    """The distributions a parameter of ``kind`` may take."""
    return [d.name for d in DISTRIBUTIONS.values() if d.support == KIND_SUPPORT[kind]]


@dataclass(frozen=True)
class ModelPriors:
    """Every prior of a model, in the units of the parameters they describe.

    Attributes
    ----------
    terms : tuple of str
    coef : tuple of Prior
        Each term's coefficient (its population mean under partial pooling).
    tau : tuple of Prior
        Each term's between-group sd for the first grouping factor.
    sigma : Prior
        The residual sd (per group with ``group_noise=True``: each group's).
    factor_tau : dict of str to tuple of Prior
        Each further grouping factor's between-level sds, by its dimension name.
    extra : dict of str to Prior
        ``"nu"`` (Student-t), ``"corr"`` and ``"corr_<factor>"`` (``covariance="full"``).
    """

    terms: tuple[str, ...]
    coef: tuple[Prior, ...]
    tau: tuple[Prior, ...]
    sigma: Prior
    factor_tau: Mapping[str, tuple[Prior, ...]] = field(default_factory=dict)
    extra: Mapping[str, Prior] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Prior]:
        """Parameter name (as in ``idata_``) -> prior."""
        out: dict[str, Prior] = {}
        for t, c, s in zip(self.terms, self.coef, self.tau, strict=True):
            out[t] = c
            out[f"tau[{t}]"] = s
        for fdim, taus in self.factor_tau.items():
            for t, s in zip(self.terms, taus, strict=True):
                out[f"tau_{fdim}[{t}]"] = s
        out["sigma"] = self.sigma
        out.update(self.extra)
        return out

    # location and scale of each coefficient prior (a Normal's mu and sigma), the unit scale
    # of each between-group sd prior (a HalfNormal's sigma), the residual sd's rate (an
    # Exponential's lam): the default priors' numbers
    @property
    def loc(self) -> np.ndarray:
        return np.array([DISTRIBUTIONS[p.distribution].carrier(p.params)[0] for p in self.coef])

    @property
    def scale(self) -> np.ndarray:
        return np.array([DISTRIBUTIONS[p.distribution].carrier(p.params)[1] for p in self.coef])

    @property
    def group_sd_scale(self) -> np.ndarray:
        return self.tau_unit_scales()

    @property
    def sigma_rate(self) -> float:
        if self.sigma.distribution != "Exponential":
            raise AttributeError(f"sigma's prior is {self.sigma!r}, not an Exponential")
        return self.sigma.params["lam"]

    def tau_of(self, fdim: str | None) -> tuple[Prior, ...]:
        """The between-group sd priors of the first factor (None) or of factor ``fdim``."""
        return self.tau if fdim is None else self.factor_tau[fdim]

    def completed(
        self, fdims: Sequence[str], family_priors: Mapping[str, Prior], correlations: Sequence[str]
    ) -> ModelPriors:
        """With the priors of the parameters a structure adds: further factors' sds (the first
        factor's), the family's parameters (``nu``) and the correlation matrices named in
        ``correlations`` (``LKJ(2)``); priors already present are kept."""
        factor_tau = {f: self.factor_tau.get(f, self.tau) for f in fdims}
        extra = {**family_priors, **{c: Prior("LKJ", eta=LKJ_ETA) for c in correlations}}
        extra.update({k: v for k, v in self.extra.items() if k in extra})
        return replace(self, factor_tau=factor_tau, extra=extra)

    def standardized(
        self, coef_shift: np.ndarray, coef_factor: np.ndarray, y_scale: float
    ) -> ModelPriors:
        """The same priors on the sampler's scale: coefficient ``k`` as
        ``(b - coef_shift[k]) / coef_factor[k]``, its sds divided by ``coef_factor[k]``, the
        residual sd by ``y_scale``; degrees of freedom and correlations unchanged."""

        def std(prior: Prior, shift: float, unit: float) -> Prior:
            d = DISTRIBUTIONS[prior.distribution]
            return Prior(prior.distribution, **d.standardized(prior.params, shift, unit))

        f = [float(v) for v in coef_factor]
        return replace(
            self,
            coef=tuple(
                std(p, float(c), u) for p, c, u in zip(self.coef, coef_shift, f, strict=True)
            ),
            tau=tuple(std(p, 0.0, u) for p, u in zip(self.tau, f, strict=True)),
            sigma=std(self.sigma, 0.0, float(y_scale)),
            factor_tau={
                k: tuple(std(p, 0.0, u) for p, u in zip(v, f, strict=True))
                for k, v in self.factor_tau.items()
            },
        )

    def tau_unit_scales(self, fdim: str | None = None) -> np.ndarray:
        """Per term, ``s`` with ``tau = s * t`` and ``t`` of the prior's unit form (how a
        full covariance scales its LKJ Cholesky factor)."""
        return np.array(
            [float(DISTRIBUTIONS[p.distribution].unit_form(p.params)[0]) for p in self.tau_of(fdim)]
        )

    def form(self) -> tuple:
        """The distributions used, by parameter (what shapes the PyMC graph; the values
        enter as data)."""
        return (
            tuple(p.distribution for p in self.coef),
            tuple(p.distribution for p in self.tau),
            self.sigma.distribution,
            tuple((k, tuple(p.distribution for p in v)) for k, v in self.factor_tau.items()),
            # constants of the graph (see hierreg.model.graph.PriorLayout): values included
            tuple(sorted(self.extra.items(), key=lambda item: item[0])),
        )


def safe_sd(values: np.ndarray) -> float:
    """Population sd, with 1 standing in for a zero or non-finite sd (constant columns)."""
    sd = float(np.std(values))
    return sd if sd > 0 and np.isfinite(sd) else 1.0


def default_priors(X: np.ndarray, y: np.ndarray, terms: list[str]) -> ModelPriors:
    """The data-scaled default priors for design ``X`` and response ``y`` (the column named
    ``"Intercept"``, if any, gets the intercept prior)."""
    return default_priors_from_moments(
        x_mean=X.mean(axis=0) if len(X) else np.zeros(X.shape[1]),
        x_sd=np.array([safe_sd(X[:, k]) for k in range(X.shape[1])]),
        y_mean=float(np.mean(y)),
        y_sd=safe_sd(y),
        terms=terms,
    )


def default_priors_from_moments(
    x_mean: np.ndarray, x_sd: np.ndarray, y_mean: float, y_sd: float, terms: list[str]
) -> ModelPriors:
    """The default priors from the means and sds of the design columns and the response
    (a zero or non-finite sd counts as 1), e.g. pooled from distributed statistics."""
    sd_y = _usable_sd(y_sd)
    sds = np.array([_usable_sd(v) for v in np.asarray(x_sd, dtype=float)])
    n_terms = len(terms)
    loc = np.zeros(n_terms)
    scale = np.empty(n_terms)
    is_intercept = np.array([t == "Intercept" for t in terms], dtype=bool)
    for k in range(n_terms):
        if not is_intercept[k]:
            scale[k] = SLOPE_SCALE * sd_y / sds[k]
    if is_intercept.any():
        k0 = int(np.flatnonzero(is_intercept)[0])
        slopes = ~is_intercept
        shift = scale[slopes] * np.asarray(x_mean, dtype=float)[slopes]
        scale[k0] = float(np.sqrt((SLOPE_SCALE * sd_y) ** 2 + np.sum(shift**2)))
        loc[k0] = float(y_mean)
    return ModelPriors(
        terms=tuple(terms),
        coef=tuple(Prior("Normal", mu=m, sigma=s) for m, s in zip(loc, scale, strict=True)),
        tau=tuple(Prior("HalfNormal", sigma=s / SLOPE_SCALE) for s in scale),
        sigma=Prior("Exponential", lam=1.0 / sd_y),
    )


def _usable_sd(sd: float) -> float:
    sd = float(sd)
    return sd if sd > 0 and np.isfinite(sd) else 1.0


def prior_kinds(
    terms: Sequence[str], fdims: Sequence[str], extra: Mapping[str, str]
) -> dict[str, str]:
    """Every name ``priors=`` accepts for a model, with its kind: the terms (coefficients),
    ``tau``/``tau[<term>]`` and ``tau_<factor>``/``tau_<factor>[<term>]`` (scales),
    ``sigma``, and ``extra`` (``nu``: scale, ``corr``: correlation, ...)."""
    kinds = {t: "coefficient" for t in terms}
    for prefix in ["tau", *(f"tau_{f}" for f in fdims)]:
        kinds[prefix] = "scale"
        kinds.update({f"{prefix}[{t}]": "scale" for t in terms})
    kinds["sigma"] = "scale"
    kinds.update(extra)
    return kinds


def check_user_priors(priors: Any, kinds: Mapping[str, str]) -> dict[str, Prior]:
    """Validate a user's ``priors=`` mapping against the names a model has (``kinds``, from
    :func:`prior_kinds`).

    Raises
    ------
    TypeError
        If ``priors`` is not a mapping of str to :class:`Prior`.
    ValueError
        For an unknown name, a distribution whose support does not fit the parameter, or
        unknown, missing or invalid parameters; each message lists the valid ones.
    """
    if priors is None:
        return {}
    if not isinstance(priors, Mapping):
        raise TypeError(
            f"priors must be a dict of name -> hierreg.Prior, got {type(priors).__name__}"
        )
    unknown = [name for name in priors if name not in kinds]
    if unknown:
        raise ValueError(f"priors: unknown parameter name(s) {unknown}; valid names: {list(kinds)}")
    for name, prior in priors.items():
        if not isinstance(prior, Prior):
            raise TypeError(
                f"priors[{name!r}] must be a hierreg.Prior, e.g. Prior('Normal', mu=0, "
                f"sigma=1), got {type(prior).__name__}"
            )
        _check_prior(name, prior, kinds[name])
    return dict(priors)


def _check_prior(name: str, prior: Prior, kind: str, warn: bool = True) -> None:
    valid = distributions_for(kind)
    if prior.distribution not in valid:
        raise ValueError(
            f"priors[{name!r}]: {prior.distribution!r} is not a prior for a {kind} parameter "
            f"(support {KIND_SUPPORT[kind]}); valid: {valid}"
        )
    d = DISTRIBUTIONS[prior.distribution]
    if sorted(prior.params) != sorted(d.params):
        raise ValueError(
            f"priors[{name!r}]: {d.name} takes parameters {list(d.params)}, got "
            f"{list(prior.params)}"
        )
    values = prior.params
    if not all(np.isfinite(v) for v in values.values()):
        raise ValueError(f"priors[{name!r}]: parameters must be finite, got {values}")
    bad = [p for p in d.positive if values[p] <= 0]
    if bad:
        raise ValueError(f"priors[{name!r}]: {bad[0]} must be > 0, got {values}")
    if d.name == "Uniform" and not 0 <= values["lower"] < values["upper"]:
        raise ValueError(
            f"priors[{name!r}]: Uniform for a positive parameter needs 0 <= lower < upper, "
            f"got {values}"
        )
    if d.name == "Flat" and warn:
        warnings.warn(
            f"priors[{name!r}] is Flat (improper): the posterior is proper only if the data "
            "identify the parameter",
            UserWarning,
            stacklevel=4,
        )


def check_model_priors(priors: ModelPriors) -> None:
    """``ValueError`` unless every prior has a valid distribution and parameters for the
    parameter it describes (priors read from a file)."""
    n = len(priors.terms)
    vectors = {
        "coef": priors.coef,
        "tau": priors.tau,
        **{f"tau_{k}": v for k, v in priors.factor_tau.items()},
    }
    for name, vector in vectors.items():
        if len(vector) != n:
            raise ValueError(f"priors.{name} has {len(vector)} entries for {n} terms")
        for term, prior in zip(priors.terms, vector, strict=True):
            kind = "coefficient" if name == "coef" else "scale"
            _check_prior(f"{name}[{term}]", prior, kind, warn=False)
    _check_prior("sigma", priors.sigma, "scale", warn=False)
    for name, prior in priors.extra.items():
        kind = "correlation" if name.startswith("corr") else "scale"
        _check_prior(name, prior, kind, warn=False)


def check_proper(priors: ModelPriors) -> None:
    """``ValueError`` naming the first Flat (improper) prior: it has no draws."""
    for name, prior in priors.as_dict().items():
        if prior.distribution == "Flat":
            raise ValueError(
                f"priors[{name!r}] is Flat (improper): it cannot be sampled for a prior "
                "predictive check; give it a proper prior"
            )


def with_user_priors(defaults: ModelPriors, priors: Mapping[str, Prior]) -> ModelPriors:
    """``defaults`` with the (validated) user priors put in place, in data units: ``"tau"``
    sets every term's sd of the first factor, ``"tau_<factor>"`` every term's of that factor,
    and the per-term names override those."""
    terms = list(defaults.terms)
    coef, tau = list(defaults.coef), list(defaults.tau)
    factor_tau = {k: list(v) for k, v in defaults.factor_tau.items()}
    extra = dict(defaults.extra)
    sigma = priors.get("sigma", defaults.sigma)

    def taus(prefix: str) -> list[Prior]:
        return tau if prefix == "tau" else factor_tau[prefix[len("tau_") :]]

    for name, prior in sorted(priors.items(), key=lambda item: "[" in item[0]):
        if name in terms:
            coef[terms.index(name)] = prior
        elif name == "tau" or (name.startswith("tau_") and "[" not in name):
            taus(name)[:] = [prior] * len(terms)
        elif name.startswith("tau") and name.endswith("]"):
            prefix, term = name[:-1].split("[", 1)
            taus(prefix)[terms.index(term)] = prior
        elif name != "sigma":
            extra[name] = prior
    return replace(
        defaults,
        coef=tuple(coef),
        tau=tuple(tau),
        sigma=sigma,
        factor_tau={k: tuple(v) for k, v in factor_tau.items()},
        extra=extra,
    )


def format_priors(priors: dict) -> str:
    """The priors on one line: ``Intercept ~ Normal(mu=0, sigma=1), ...``; the sds of several
    terms under one name when they agree (``tau ~ HalfCauchy(beta=1)``)."""
    items = dict(priors)
    for prefix in sorted({name.split("[")[0] for name in items if "[" in name}):
        group = {k: v for k, v in items.items() if k.startswith(prefix + "[")}
        if len(set(group.values())) == 1:
            first = next(iter(group))
            items = {
                (prefix if k == first else k): v
                for k, v in items.items()
                if k == first or k not in group
            }
    return ", ".join(f"{name} ~ {prior}" for name, prior in items.items())
