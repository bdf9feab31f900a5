"""Gelman's Minnesota radon analysis: complete vs no vs partial pooling of log radon ~ floor."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from hierreg.datasets import load_radon
from hierreg.estimator import HierarchicalLinearRegression
from hierreg.model.priors import Prior, format_priors

__all__ = ["RADON_COUNTIES", "SEED_PRIORS", "PoolingResult", "fit_radon", "format_result"]

RADON_COUNTIES = ("CASS", "CROW WING", "FREEBORN")
FORMULA = "log_radon ~ floor"

# The priors of the notebook this analysis reproduces (Wiecki & Elbers, "The best of both
# worlds: hierarchical linear regression in PyMC3", 2014): county intercepts and slopes
# (no pooling) and their population means (partial pooling) Normal(0, 1); the sds of the
# county intercepts and slopes HalfCauchy(1); the noise sd ("eps") HalfCauchy(1). The
# notebook fits no complete-pooling model; the same priors are used for it here.
SEED_PRIORS = {
    "Intercept": Prior("Normal", mu=0.0, sigma=1.0),
    "floor": Prior("Normal", mu=0.0, sigma=1.0),
    "tau": Prior("HalfCauchy", beta=1.0),
    "sigma": Prior("HalfCauchy", beta=1.0),
}


@dataclass
class PoolingResult:
    """One fitted pooling mode of the radon analysis."""

    pooling: str
    estimator: HierarchicalLinearRegression
    seconds: float

    @property
    def floor_effect(self) -> float:
        """Pooled slope (complete), population mean slope (partial), mean county slope (none)."""
        est = self.estimator
        if est.pooling_ == "partial":
            return float(est.population_coef_["floor"])
        return float(est.coef_["floor"].mean())

    def county_coefficients(self, counties=RADON_COUNTIES) -> pd.DataFrame:
        """Posterior-mean intercept and floor slope of ``counties``."""
        coef = self.estimator.coef_
        if self.estimator.pooling_ == "complete":
            rows = [coef.iloc[0]] * len(counties)
            return pd.DataFrame(rows, index=pd.Index(counties, name="county"))
        return coef.loc[list(counties)]


def fit_radon(
    pooling: str,
    *,
    data: pd.DataFrame | None = None,
    random_state: int = 0,
    progressbar: bool = False,
    seed_priors: bool = False,
    **params,
) -> PoolingResult:
    """Fit ``log_radon ~ floor`` by county on the shipped radon data with one pooling mode
    (``seed_priors``: with the notebook's priors, :data:`SEED_PRIORS`, instead of the
    data-scaled defaults)."""
    if seed_priors:
        params["priors"] = dict(SEED_PRIORS)
    df = load_radon() if data is None else data
    est = HierarchicalLinearRegression(
        FORMULA,
        group="county",
        pooling=pooling,
        random_state=random_state,
        progressbar=progressbar,
        **params,
    )
    start = time.perf_counter()
    est.fit(df)
    return PoolingResult(pooling=pooling, estimator=est, seconds=time.perf_counter() - start)


def format_result(result: PoolingResult) -> str:
    """A small text table for one pooling mode."""
    d = result.estimator.diagnostics_
    lines = [
        f"== pooling={result.pooling!r} ==",
        f"  fit time (s)      {result.seconds:8.2f}",
        f"  divergences       {d['divergences']:8d}",
        f"  max R-hat         {d['max_rhat']:8.3f}",
        f"  min bulk ESS      {d['min_ess_bulk']:8.0f}",
        f"  floor effect      {result.floor_effect:8.3f}",
        "  priors: " + format_priors(result.estimator.priors_),
        "  county coefficients (posterior mean):",
    ]
    table = result.county_coefficients().round(3).to_string()
    lines.extend("    " + row for row in table.splitlines())
    return "\n".join(lines)
