"""Units: the model is sampled on a standardised response and design, reported in data units.

With an intercept, ``y' = (y - c) / s_y`` (``c = mean(y)``; without one ``c = 0``), and every
non-intercept column ``x_k' = x_k / s_k``. Then ``beta_k' = beta_k s_k / s_y``,
``intercept' = (intercept - c) / s_y`` and ``sigma' = sigma / s_y``; the priors are mapped the
same way, so the standardised model is *exactly* the model stated in data units, while the
sampler always sees parameters of order one, whatever the units of ``y`` and ``x``.
The mapping is affine per parameter, so it costs nothing in the PyMC graph: draws are mapped
back in numpy after sampling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

from hierreg.design.build import INTERCEPT, Design
from hierreg.model.priors import (
    ModelPriors,
    default_priors,
    default_priors_from_moments,
    safe_sd,
)
from hierreg.model.sufficient import SufficientStatistics

__all__ = ["Standardization", "data_scale", "standardized_statistics"]

# Posterior variables that are coefficients (location: shift and scale) or sds of
# coefficients (scale only); "sigma" is scaled by s_y; anything else is left alone.
LOCATION_VARIABLES = ("beta", "beta_varying", "beta_common", "mu")
SCALE_VARIABLES = ("tau",)
TERM_DIMS = ("term", "varying_term", "common_term")


@dataclass(frozen=True)
class Standardization:
    """Response centre and scale, and the scale of each design column.

    Attributes
    ----------
    y_center, y_scale : float
    x_scale : ndarray of shape (n_terms,)
        1 for the intercept column.
    terms : tuple of str
    """

    y_center: float
    y_scale: float
    x_scale: np.ndarray
    terms: tuple[str, ...]

    @classmethod
    def from_design(cls, design: Design) -> Standardization:
        terms = tuple(design.spec.terms)
        has_intercept = INTERCEPT in terms
        x_scale = np.array(
            [1.0 if t == INTERCEPT else safe_sd(design.X[:, k]) for k, t in enumerate(terms)]
        )
        return cls(
            y_center=float(np.mean(design.y)) if has_intercept else 0.0,
            y_scale=safe_sd(design.y),
            x_scale=x_scale,
            terms=terms,
        )

    @classmethod
    def from_moments(
        cls, terms: list[str], x_sd: np.ndarray, y_mean: float, y_sd: float
    ) -> Standardization:
        """The same, from pooled moments (a zero or non-finite sd counts as 1)."""
        terms = tuple(terms)
        usable = [float(v) if v > 0 and np.isfinite(v) else 1.0 for v in x_sd]
        x_scale = np.array(
            [1.0 if t == INTERCEPT else v for t, v in zip(terms, usable, strict=True)]
        )
        y_scale = float(y_sd) if y_sd > 0 and np.isfinite(y_sd) else 1.0
        return cls(
            y_center=float(y_mean) if INTERCEPT in terms else 0.0,
            y_scale=y_scale,
            x_scale=x_scale,
            terms=terms,
        )

    @property
    def coef_factor(self) -> np.ndarray:
        """Data-unit coefficient per standardised unit, per term: ``s_y / s_k``."""
        return self.y_scale / self.x_scale

    @property
    def coef_shift(self) -> np.ndarray:
        return np.array([self.y_center if t == INTERCEPT else 0.0 for t in self.terms])

    def design(self, design: Design) -> Design:
        """The standardised copy of a training design."""
        return replace(
            design,
            X=design.X / self.x_scale,
            y=(design.y - self.y_center) / self.y_scale,
        )

    def priors(self, priors: ModelPriors) -> ModelPriors:
        """The same priors expressed in standardised units (exactly: see
        :mod:`hierreg.model.priors`)."""
        return priors.standardized(self.coef_shift, self.coef_factor, self.y_scale)

    def restore(self, posterior: xr.Dataset) -> xr.Dataset:
        """Map standardised draws back to data units (a new Dataset)."""
        out = posterior.copy()
        for name in posterior.data_vars:
            var = posterior[name]
            dim = next((d for d in TERM_DIMS if d in var.dims), None)
            if name == "sigma":
                out[name] = var * self.y_scale
            elif dim is not None and (name in LOCATION_VARIABLES or name in SCALE_VARIABLES):
                index = [self.terms.index(t) for t in var[dim].values]
                factor = xr.DataArray(self.coef_factor[index], dims=dim)
                restored = var * factor
                if name in LOCATION_VARIABLES:
                    restored = restored + xr.DataArray(self.coef_shift[index], dims=dim)
                out[name] = restored
        return out


def standardized_statistics(
    raw: SufficientStatistics, x_scale: np.ndarray, y_center: float, y_scale: float
) -> SufficientStatistics:
    """Statistics of ``X / x_scale`` and ``(y - y_center) / y_scale`` from those of the
    design augmented with a last column of ones (exact algebra, no rows needed)."""
    k = raw.xtx.shape[1] - 1
    d = 1.0 / np.asarray(x_scale, dtype=float)
    xtx = raw.xtx[:, :k, :k] * d[None, :, None] * d[None, None, :]
    column_sums = raw.xtx[:, :k, k]
    y_sums = raw.xty[:, k]
    xty = (raw.xty[:, :k] - y_center * column_sums) * d[None, :] / y_scale
    yty = (raw.yty - 2 * y_center * y_sums + raw.n * y_center**2) / y_scale**2
    return SufficientStatistics(n=raw.n.copy(), xtx=xtx, xty=xty, yty=yty)


def data_scale(
    design: Design,
    moments: Mapping[str, Any] | None = None,
    raw_statistics: SufficientStatistics | None = None,
) -> tuple[ModelPriors, Standardization, SufficientStatistics | None]:
    """Data-scaled default priors, the standardisation the sampler works in, and the
    standardised sufficient statistics when the rows are elsewhere: from ``design``'s rows,
    or (a Dask fit) from the pooled ``moments`` (``x_mean``, ``x_sd``, ``y_mean``, ``y_sd``)
    and the raw per-group ``raw_statistics`` reduced on the cluster."""
    terms = design.spec.terms
    if moments is None:
        return default_priors(design.X, design.y, terms), Standardization.from_design(design), None
    m = moments
    defaults = default_priors_from_moments(m["x_mean"], m["x_sd"], m["y_mean"], m["y_sd"], terms)
    units = Standardization.from_moments(terms, m["x_sd"], m["y_mean"], m["y_sd"])
    statistics = standardized_statistics(
        raw_statistics, units.x_scale, units.y_center, units.y_scale
    )
    return defaults, units, statistics
