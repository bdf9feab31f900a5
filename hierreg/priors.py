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

from dataclasses import dataclass

import numpy as np

__all__ = ["Prior", "DefaultPriors", "default_priors", "safe_sd"]

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
    sd_y = safe_sd(y)
    n_terms = X.shape[1]
    loc = np.zeros(n_terms)
    scale = np.empty(n_terms)
    is_intercept = np.array([t == "Intercept" for t in terms])
    for k in range(n_terms):
        if not is_intercept[k]:
            scale[k] = SLOPE_SCALE * sd_y / safe_sd(X[:, k])
    if is_intercept.any():
        k0 = int(np.flatnonzero(is_intercept)[0])
        slopes = ~is_intercept
        means = X[:, slopes].mean(axis=0) if slopes.any() else np.zeros(0)
        shift = scale[slopes] * means
        scale[k0] = float(np.sqrt((SLOPE_SCALE * sd_y) ** 2 + np.sum(shift**2)))
        loc[k0] = float(np.mean(y))
    return DefaultPriors(
        terms=tuple(terms),
        loc=loc,
        scale=scale,
        group_sd_scale=scale / SLOPE_SCALE,
        sigma_rate=1.0 / sd_y,
    )
