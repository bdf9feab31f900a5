"""Weakly informative default priors, scaled to the data (rstanarm / bambi style).

With ``s_y = sd(y)`` and, for each non-intercept column ``k``, ``s_k = sd(x_k)`` and
``m_k = mean(x_k)`` (a zero sd counts as 1):

* slope ``k``: ``Normal(0, 2.5 s_y / s_k)``;
* intercept: ``Normal(mean(y), sqrt((2.5 s_y)^2 + sum_k (2.5 s_y m_k / s_k)^2))``, wide enough
  for the intercept at ``x = 0`` even when the predictors are far from zero;
* between-group sd of term ``k`` (partial pooling): ``HalfNormal(scale_k / 2.5)``, i.e. one
  response-sd worth of effect;
* residual sd: ``Exponential(1 / s_y)``.

Every scale is proportional to ``s_y`` (and inversely to ``s_k``), so rescaling the response
or a predictor rescales the prior with it: the sampler sees the same geometry for a response
in thousands or in thousandths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = [
    "Prior",
    "DefaultPriors",
    "check_user_priors",
    "default_priors",
    "default_priors_from_moments",
    "safe_sd",
    "with_user_priors",
]

SLOPE_SCALE = 2.5


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
        return f"Prior({self.distribution!r}, {args})"


@dataclass(frozen=True)
class DefaultPriors:
    """Per-term location/scale arrays plus the residual-sd prior.

    Attributes
    ----------
    loc, scale : ndarray of shape (n_terms,)
        Normal prior of each coefficient (and of each population mean under partial pooling).
    group_sd_scale : ndarray of shape (n_terms,)
        HalfNormal scale of each term's between-group sd.
    sigma_rate : float
        Rate of the Exponential prior on the residual sd.
    """

    terms: tuple[str, ...]
    loc: np.ndarray
    scale: np.ndarray
    group_sd_scale: np.ndarray
    sigma_rate: float

    def as_dict(self) -> dict[str, Prior]:
        """Readable mapping of parameter name to :class:`Prior`."""
        out: dict[str, Prior] = {}
        for t, m, s, g in zip(self.terms, self.loc, self.scale, self.group_sd_scale, strict=True):
            out[t] = Prior("Normal", mu=m, sigma=s)
            out[f"tau[{t}]"] = Prior("HalfNormal", sigma=g)
        out["sigma"] = Prior("Exponential", lam=self.sigma_rate)
        return out


def safe_sd(values: np.ndarray) -> float:
    """Population sd, with 1 standing in for a zero or non-finite sd (constant columns)."""
    sd = float(np.std(values))
    return sd if sd > 0 and np.isfinite(sd) else 1.0


def default_priors(X: np.ndarray, y: np.ndarray, terms: list[str]) -> DefaultPriors:
    """Compute the data-scaled default priors for design ``X`` and response ``y``.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_terms)
    y : ndarray of shape (n_rows,)
    terms : list of str
        Column names; the column named ``"Intercept"`` (if any) gets the intercept prior.

    Returns
    -------
    DefaultPriors
    """
    return default_priors_from_moments(
        x_mean=X.mean(axis=0) if len(X) else np.zeros(X.shape[1]),
        x_sd=np.array([safe_sd(X[:, k]) for k in range(X.shape[1])]),
        y_mean=float(np.mean(y)),
        y_sd=safe_sd(y),
        terms=terms,
    )


def default_priors_from_moments(
    x_mean: np.ndarray, x_sd: np.ndarray, y_mean: float, y_sd: float, terms: list[str]
) -> DefaultPriors:
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
    return DefaultPriors(
        terms=tuple(terms),
        loc=loc,
        scale=scale,
        group_sd_scale=scale / SLOPE_SCALE,
        sigma_rate=1.0 / sd_y,
    )


def _usable_sd(sd: float) -> float:
    sd = float(sd)
    return sd if sd > 0 and np.isfinite(sd) else 1.0


# What a user may set, by parameter name: (distribution, its parameters).
COEFFICIENT_PRIOR = ("Normal", ("mu", "sigma"))
GROUP_SD_PRIOR = ("HalfNormal", ("sigma",))
NOISE_PRIOR = ("Exponential", ("lam",))


def check_user_priors(priors: Any, terms: list[str]) -> dict[str, Prior]:
    """Validate a user's ``priors=`` mapping against the fitted terms.

    Names: a term (``"Intercept"``, ``"floor"``, ...: the coefficient, or the population mean
    under partial pooling) takes ``Normal(mu, sigma)``; ``"tau[<term>]"`` (one term's
    between-group sd) or ``"tau"`` (every term's) takes ``HalfNormal(sigma)``; ``"sigma"``
    (residual sd) takes ``Exponential(lam)``.

    Raises
    ------
    TypeError
        If ``priors`` is not a mapping of str to :class:`Prior`.
    ValueError
        For an unknown name, an unsupported distribution or bad parameters, listing the
        valid ones.
    """
    if priors is None:
        return {}
    if not isinstance(priors, Mapping):
        raise TypeError(
            f"priors must be a dict of name -> hierreg.Prior, got {type(priors).__name__}"
        )
    valid = {**{t: COEFFICIENT_PRIOR for t in terms}, "tau": GROUP_SD_PRIOR}
    valid.update({f"tau[{t}]": GROUP_SD_PRIOR for t in terms})
    valid["sigma"] = NOISE_PRIOR
    unknown = [name for name in priors if name not in valid]
    if unknown:
        raise ValueError(f"priors: unknown parameter name(s) {unknown}; valid names: {list(valid)}")
    for name, prior in priors.items():
        if not isinstance(prior, Prior):
            raise TypeError(
                f"priors[{name!r}] must be a hierreg.Prior, e.g. Prior('Normal', mu=0, "
                f"sigma=1), got {type(prior).__name__}"
            )
        distribution, params = valid[name]
        if prior.distribution != distribution:
            raise ValueError(
                f"priors[{name!r}]: distribution {prior.distribution!r} is not supported "
                f"here; valid: [{distribution!r}]"
            )
        if sorted(prior.params) != sorted(params):
            raise ValueError(
                f"priors[{name!r}]: {distribution} takes parameters {list(params)}, got "
                f"{list(prior.params)}"
            )
        values = prior.params
        if not all(np.isfinite(v) for v in values.values()):
            raise ValueError(f"priors[{name!r}]: parameters must be finite, got {values}")
        positive = [k for k in params if k != "mu" and values[k] <= 0]
        if positive:
            raise ValueError(f"priors[{name!r}]: {positive[0]} must be > 0, got {values}")
    return dict(priors)


def with_user_priors(defaults: DefaultPriors, priors: Mapping[str, Prior]) -> DefaultPriors:
    """``defaults`` with the (validated) user priors put in place, in data units."""
    loc, scale = defaults.loc.copy(), defaults.scale.copy()
    group_sd_scale = defaults.group_sd_scale.copy()
    sigma_rate = defaults.sigma_rate
    terms = list(defaults.terms)
    if "tau" in priors:
        group_sd_scale[:] = priors["tau"].params["sigma"]
    for name, prior in priors.items():
        if name in terms:
            k = terms.index(name)
            loc[k], scale[k] = prior.params["mu"], prior.params["sigma"]
        elif name.startswith("tau["):
            group_sd_scale[terms.index(name[4:-1])] = prior.params["sigma"]
        elif name == "sigma":
            sigma_rate = prior.params["lam"]
    return replace(
        defaults, loc=loc, scale=scale, group_sd_scale=group_sd_scale, sigma_rate=sigma_rate
    )
