"""Convergence diagnostics of a posterior, and the warning when they fail.

R-hat and ESS as ArviZ defines them (computed by :mod:`hierreg.sampling.mcmc_stats`),
divergences from the sample stats; :class:`SamplingWarning` when any divergence occurs,
R-hat exceeds ``RHAT_MAX`` or ESS is below ``ESS_MIN``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from sklearn.exceptions import ConvergenceWarning

from hierreg.sampling.mcmc_stats import convergence_statistics
from hierreg.sampling.samplers import APPROXIMATIONS, SamplerSettings

__all__ = ["SamplingWarning", "convergence_diagnostics", "fit_diagnostics", "warn_if_unconverged"]


RHAT_MAX = 1.01


ESS_MIN = 400


# Pathfinder's importance-sampling Pareto k above this: the approximation is unreliable
# (Zhang et al. 2022; Vehtari et al.'s PSIS threshold)
PARETO_K_MAX = 0.7


class SamplingWarning(ConvergenceWarning):
    """The sampler reported divergences, R-hat above 1.01 or ESS below 400."""


def convergence_diagnostics(
    idata: xr.DataTree,
    seconds: float | None = None,
    var_names: Sequence[str] | None = None,
    sampler: str = "nutpie",
) -> dict[str, Any]:
    """Max R-hat, min bulk/tail ESS and the number of divergences.

    Over the posterior variables ``var_names`` (default: all). Like PyMC's own checks, the
    estimator passes the sampled parameters: quantities derived from them afterwards add
    cost, not information. R-hat is ArviZ's default (rank-normalised split R-hat), the ESS
    are ArviZ's bulk and tail ESS, computed by :mod:`hierreg.sampling.mcmc_stats` over all
    parameters at once (the same numbers, several times faster).

    R-hat is NaN with a single chain. ``sampling_seconds`` is the sampler's own time for
    tuning and drawing; ``seconds`` (compilation included) is recorded as
    ``sample_call_seconds``. ``sampler`` is recorded, and ``approximate`` is True for a
    variational approximation (its draws are independent: R-hat and ESS then say nothing
    about how close the approximation is to the posterior).
    """
    posterior = idata["posterior"].to_dataset()
    if var_names is not None:
        posterior = posterior[list(var_names)]
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    stats = convergence_statistics(_stack_parameters(posterior))
    diverging = idata["sample_stats"]["diverging"].values if "sample_stats" in idata else None
    n_div = int(np.asarray(diverging).sum()) if diverging is not None else 0
    return {
        "max_rhat": _extreme(stats["rhat"], np.nanmax),
        "min_ess_bulk": _extreme(stats["ess_bulk"], np.nanmin),
        "min_ess_tail": _extreme(stats["ess_tail"], np.nanmin),
        "divergences": n_div,
        "chains": int(n_chains),
        "draws": int(n_draws),
        "sampling_seconds": float(idata["posterior"].attrs.get("sampling_time", np.nan)),
        "sample_call_seconds": seconds,
        "sampler": sampler,
        "approximate": sampler in APPROXIMATIONS,
        **{
            name: float(idata["posterior"].attrs[name])
            for name in ("pareto_k", "centred_share")
            if name in idata["posterior"].attrs
        },
    }


def _stack_parameters(posterior: xr.Dataset) -> np.ndarray:
    """All scalar parameters of ``posterior`` as one (parameters, chains, draws) array."""
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    blocks = [
        np.moveaxis(var.transpose("chain", "draw", ...).values, (0, 1), (-2, -1)).reshape(
            -1, chains, draws
        )
        for var in posterior.data_vars.values()
    ]
    return np.concatenate(blocks) if blocks else np.empty((0, chains, draws))


def warn_if_unconverged(diagnostics: Mapping[str, Any]) -> None:
    """Emit :class:`SamplingWarning` listing every failed check (MCMC only; for Pathfinder,
    a Pareto k above 0.7)."""
    if diagnostics.get("approximate"):
        k = diagnostics.get("pareto_k", np.nan)
        if np.isfinite(k) and k > PARETO_K_MAX:
            warnings.warn(
                f"Pathfinder's importance-sampling Pareto k is {k:.2f} > {PARETO_K_MAX}: the "
                "approximation is unreliable; use an MCMC sampler (the default 'nutpie')",
                SamplingWarning,
                stacklevel=3,
            )
        return
    problems = []
    if diagnostics["divergences"] > 0:
        problems.append(f"{diagnostics['divergences']} divergent transitions")
    if np.isfinite(diagnostics["max_rhat"]) and diagnostics["max_rhat"] > RHAT_MAX:
        problems.append(f"max R-hat {diagnostics['max_rhat']:.3f} > {RHAT_MAX}")
    ess = min(diagnostics["min_ess_bulk"], diagnostics["min_ess_tail"])
    if np.isfinite(ess) and ess < ESS_MIN:
        problems.append(f"min ESS {ess:.0f} < {ESS_MIN}")
    if problems:
        warnings.warn(
            "sampling may not have converged: " + "; ".join(problems) + ". Consider more "
            "draws/tune or a higher target_accept (partial pooling: or the other "
            "parametrization).",
            SamplingWarning,
            stacklevel=3,
        )


def _extreme(values: np.ndarray, reduce) -> float:
    if not values.size or np.isnan(values).all():
        return float("nan")
    return float(reduce(values))


def fit_diagnostics(
    idata: xr.DataTree,
    seconds: float,
    sampled: Sequence[str],
    settings: SamplerSettings,
    warn: bool = True,
) -> dict[str, Any]:
    """Convergence diagnostics of a fit over its sampled parameters (a packed Cholesky factor
    ``chol``/``chol_<factor>`` counted as its sds and correlations), with a
    :class:`SamplingWarning` where they fail (``warn``)."""
    names: list[str] = []
    for name in sampled:
        if name == "chol" or name.startswith("chol_"):
            suffix = name[len("chol") :]
            names += [f"tau{suffix}", f"corr{suffix}"]
        else:
            names.append(name)
    diagnostics = convergence_diagnostics(idata, seconds, var_names=names, sampler=settings.sampler)
    if warn:
        warn_if_unconverged(diagnostics)
    return diagnostics
