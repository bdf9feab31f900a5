"""Likelihood families: what the distribution of the response contributes, in one object.

A family is the seam between the linear predictor ``eta`` (built by :mod:`hierreg.model.graph`
the same way for every family) and the response: how ``y`` is observed given ``eta`` and
the scale ``sigma`` in the PyMC model, which further parameters it has (with their priors),
whether its likelihood can be written from per-group sufficient statistics, and, for
predictions and LOO in NumPy (:mod:`hierreg.results.predict`), its variance, its noise draws and its
pointwise log density. A new outcome type is one new class registered in :data:`FAMILIES`;
nothing else branches on the family's name.

The families here have the identity link (``inverse_link(eta) = eta``) and a scale
``sigma``: residuals ``r = (y - eta) / sigma`` follow a standard Normal or Student-t.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pymc as pm
import xarray as xr
from scipy.special import gammaln

from hierreg.model.priors import Prior

__all__ = ["FAMILIES", "LIKELIHOODS", "NU_PRIOR", "Family", "Normal", "StudentT", "family"]

# Prior of the Student-t degrees of freedom: Gamma(2, 0.1) (Juarez & Steel 2010; the Stan
# prior-choice recommendation): mean 20, 5% quantile 3.6, little mass below 2.
NU_PRIOR = {"alpha": 2.0, "beta": 0.1}


class Family:
    """The interface every likelihood family implements (see the module docstring)."""

    name: ClassVar[str]
    #: whether the log-likelihood may be written from per-group n, X'X, X'y, y'y
    sufficient_statistics: ClassVar[bool] = False
    #: parameters beyond the coefficients and ``sigma``, with their default priors
    #: (data-free; a user may replace them with ``priors={"nu": ...}``)
    priors: ClassVar[Mapping[str, Prior]] = {}

    @staticmethod
    def inverse_link(eta: np.ndarray) -> np.ndarray:
        """The expected response given the linear predictor (identity here)."""
        return eta

    def observe(self, eta: Any, sigma: Any, y: Any, params: Mapping[str, Any]) -> None:
        """Inside a ``pm.Model`` context: the observed ``"y"`` given the linear predictor,
        the scale and the family's parameters (``params``: random variables named as in
        :attr:`priors`, built by the graph with the priors the user chose)."""
        raise NotImplementedError

    def draws(self, posterior: xr.Dataset, flat: Callable) -> dict[str, np.ndarray]:
        """The family's parameters' draws, flattened over chains and draws."""
        return {name: flat(name, []) for name in self.priors}

    def variance_factor(self, params: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """``Var(y - eta) / sigma^2`` per draw (None: 1)."""
        return None

    def standard_noise(
        self, rng: np.random.Generator, shape: tuple[int, ...], params: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """Draws of ``(y - eta) / sigma``; parameter arrays are (draws, 1)."""
        raise NotImplementedError

    def log_density_of_squares(
        self, params: Mapping[str, np.ndarray]
    ) -> Callable[[np.ndarray], None]:
        """A function that turns squared standardised residuals, in place, into the log
        density of the standardised residuals (the caller subtracts ``log(sigma)``);
        parameter arrays are (draws, 1)."""
        raise NotImplementedError


class Normal(Family):
    """``y ~ Normal(eta, sigma)``."""

    name = "normal"
    sufficient_statistics = True

    def observe(self, eta: Any, sigma: Any, y: Any, params: Mapping[str, Any]) -> None:
        pm.Normal("y", mu=eta, sigma=sigma, observed=y)

    def standard_noise(self, rng, shape, params):
        return rng.standard_normal(shape)

    def log_density_of_squares(self, params):
        log_norm = 0.5 * np.log(2 * np.pi)

        def apply(squares: np.ndarray) -> None:
            squares *= -0.5
            squares -= log_norm

        return apply


class StudentT(Family):
    """``y ~ StudentT(nu, eta, sigma)``, ``nu ~ Gamma(2, 0.1)`` by default (robust to
    outliers)."""

    name = "student_t"
    priors = {"nu": Prior("Gamma", **NU_PRIOR)}

    def observe(self, eta: Any, sigma: Any, y: Any, params: Mapping[str, Any]) -> None:
        pm.StudentT("y", nu=params["nu"], mu=eta, sigma=sigma, observed=y)

    def variance_factor(self, params):
        nu = params["nu"]
        # Var(t_nu(0, 1)) = nu / (nu - 2), infinite for nu <= 2
        with np.errstate(divide="ignore"):
            return np.where(nu > 2, nu / (nu - 2), np.inf)

    def standard_noise(self, rng, shape, params):
        return rng.standard_t(params["nu"], shape)

    def log_density_of_squares(self, params):
        nu = params["nu"]
        t_norm = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)

        def apply(squares: np.ndarray) -> None:  # log t_nu(r) = c(nu) - (nu+1)/2 log(1 + r^2/nu)
            squares /= nu
            np.log1p(squares, out=squares)
            squares *= -(nu + 1) / 2
            squares += t_norm

        return apply


FAMILIES: dict[str, Family] = {f.name: f for f in (Normal(), StudentT())}
LIKELIHOODS = tuple(FAMILIES)


def family(name: str) -> Family:
    """The family registered as ``name``."""
    return FAMILIES[name]
