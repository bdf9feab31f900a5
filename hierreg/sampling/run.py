"""One model, sampled: the compiled-model cache for nutpie, :func:`pymc.sample` otherwise.

:func:`sample_model` is the sampling step of a fit. It returns the posterior on the
sampler's scale with the group slots and parametrisation undone (plain ``z`` offsets, one
entry per real group), which :mod:`hierreg.results.posterior` maps to data units.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import xarray as xr

from hierreg.design.build import Design
from hierreg.model.collapsed import conditional_offsets, conditional_population
from hierreg.model.graph import build_model, graph_key, model_data
from hierreg.model.priors import ModelPriors
from hierreg.model.structure import FLAT_DIM, ModelStructure, group_dim, term_dims
from hierreg.model.sufficient import SufficientStatistics
from hierreg.sampling.compiled import cached_model, sample_compiled
from hierreg.sampling.samplers import HIERARCHICAL_DOUBLINGS, SamplerSettings, sample_posterior

__all__ = ["drop_empty_slots", "offsets_from_mixed", "sample_model"]


def sample_model(
    design: Design,
    structure: ModelStructure,
    priors: Any,
    settings: SamplerSettings,
    statistics: SufficientStatistics | None = None,
    centring: np.ndarray | None = None,
) -> tuple[Any, float, list[str]]:
    """Sample the model of a standardised design: (idata, seconds, sampled parameter names).

    With nutpie and no ``sample_kwargs``, through the per-process cache of compiled models
    (:mod:`hierreg.sampling.compiled`: a refit of the same structure does not recompile); otherwise
    through :func:`pymc.sample`. ``statistics``: the standardised sufficient statistics,
    when they do not come from ``design``'s rows (a Dask fit). ``centring``: the centred
    group coefficients of a ``"mixed"`` parametrisation.
    """
    complete = structure.pooling == "complete"
    n_groups = 1 if complete else len(design.spec.groups)
    if structure.pooling == "partial" and settings.sampler == "nutpie":
        settings = replace(settings, extra_doublings=HIERARCHICAL_DOUBLINGS)
    if structure.likelihood_mode == "sufficient" and statistics is None:
        g = None if complete else design.group_index
        statistics = SufficientStatistics.from_arrays(design.X, design.y, g, n_groups)
    mixed = structure.pooling == "partial" and structure.parametrization == "mixed"
    collapsed = structure.pooling == "partial" and structure.parametrization == "collapsed"
    collapsed = collapsed and not structure.prior_only
    if settings.sampler != "nutpie" or settings.sample_kwargs:
        model = build_model(design, structure, priors, statistics, centring=centring)
        idata, seconds = sample_posterior(model, settings)
        if mixed:
            posterior = idata["posterior"].to_dataset()
            flat = model["centring"].get_value()
            idata["posterior"] = offsets_from_mixed(posterior, flat, n_groups)
        sampled = [rv.name for rv in model.free_RVs]
        if collapsed:
            idata["posterior"] = with_offsets(
                idata["posterior"].to_dataset(), structure, statistics, settings
            )
            sampled.append("z")
        return idata, seconds, _with_drawn(sampled, idata["posterior"])
    start = time.perf_counter()
    entry, _ = cached_model(
        graph_key(design, structure, priors),
        n_groups,
        lambda slots: build_model(design, structure, priors, statistics, slots, centring),
    )
    data = model_data(design, structure, priors, statistics, entry.slots, centring)
    idata, _ = sample_compiled(entry, data, settings)
    posterior = idata["posterior"].to_dataset()
    if mixed:
        posterior = offsets_from_mixed(posterior, data["centring"], n_groups)
    gdim = group_dim(design)
    posterior = drop_empty_slots(posterior, structure, gdim, n_groups, entry.slots)
    sampled = [rv.name for rv in entry.model.free_RVs]
    if collapsed:
        posterior = with_offsets(posterior, structure, statistics, settings, priors, design)
        sampled.append("z")
    idata["posterior"] = posterior
    seconds = time.perf_counter() - start  # compilation (if any) included
    return idata, seconds, _with_drawn(sampled, posterior)


def _with_drawn(sampled: list[str], posterior) -> list[str]:
    """The sampled names plus the population coefficients drawn after sampling (diagnostics
    cover every stored parameter)."""
    return sampled + [v for v in ("mu", "beta_common") if v in posterior and v not in sampled]


def with_offsets(
    posterior: xr.Dataset,
    structure: ModelStructure,
    statistics: SufficientStatistics,
    settings: SamplerSettings,
    priors: ModelPriors,
    design: Design,
) -> xr.Dataset:
    """``parametrization="collapsed"``: what the sampler integrated out, drawn exactly from
    its conditional normal given each draw: the population coefficients (``mu``,
    ``beta_common``) when they were integrated (normal priors,
    :func:`hierreg.model.collapsed.conditional_population`), then the group offsets ``z``
    (:func:`hierreg.model.collapsed.conditional_offsets`), stored as the non-centred model
    stores them (flat, term-major)."""
    var_idx, com_idx = structure.varying_index, structure.common_index
    var_dim, com_dim = term_dims(structure)
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    terms = np.array(design.spec.terms, dtype=object)

    def flat(name: str, dim: str | None) -> np.ndarray:
        var = posterior[name]
        order = ("chain", "draw") if dim is None else ("chain", "draw", dim)
        return var.transpose(*order).values.reshape(chains * draws, -1)

    tau = flat("tau", var_dim)
    sigma = flat("sigma", None)[:, 0]
    rng = np.random.default_rng(None if settings.seed is None else [settings.seed, 20261202])
    out = posterior.copy()
    if "mu" in posterior:
        coefficients = np.empty((chains * draws, len(terms)))
        coefficients[:, var_idx] = flat("mu", var_dim)
        if len(com_idx):
            coefficients[:, com_idx] = flat("beta_common", com_dim)
    else:
        coefficients = conditional_population(
            statistics, var_idx, tau, sigma,
            np.array([p.params["mu"] for p in priors.coef]),
            np.array([p.params["sigma"] for p in priors.coef]),
            rng,
        )  # fmt: skip
        shape = (chains, draws, -1)
        out["mu"] = (("chain", "draw", var_dim), coefficients[:, var_idx].reshape(shape))
        out = out.assign_coords({var_dim: list(terms[var_idx])})
        if len(com_idx):
            out["beta_common"] = (
                ("chain", "draw", com_dim),
                coefficients[:, com_idx].reshape(shape),
            )
            out = out.assign_coords({com_dim: list(terms[com_idx])})
    u = conditional_offsets(statistics, coefficients, var_idx, tau, sigma, rng)
    n_groups = u.shape[1]
    z = np.transpose(u, (0, 2, 1)).reshape(chains, draws, -1)  # term-major: j * groups + g
    out["z"] = (("chain", "draw", FLAT_DIM), z)
    return out.assign_coords({FLAT_DIM: np.arange(n_groups * len(var_idx))})


def offsets_from_mixed(posterior: xr.Dataset, centring: np.ndarray, n_groups: int) -> xr.Dataset:
    """``parametrization="mixed"``: the sampled ``z`` (flat, term-major) holds the group
    coefficient itself where ``centring`` is 1; make every entry the standardised offset
    ``(beta - mu) / tau``, as in the non-centred model, so ``beta = mu + tau * z``. The
    share of the ``n_groups`` groups' coefficients sampled centred goes to the attribute
    ``centred_share``."""
    u = posterior["z"].transpose("chain", "draw", FLAT_DIM)
    mu = posterior["mu"].transpose("chain", "draw", ...).values
    tau = posterior["tau"].transpose("chain", "draw", ...).values
    slots = centring.size // mu.shape[-1]
    centred = np.asarray(centring) > 0
    mu_flat, tau_flat = np.repeat(mu, slots, axis=-1), np.repeat(tau, slots, axis=-1)
    z = np.where(centred, (u.values - mu_flat) / tau_flat, u.values)
    out = posterior.assign(z=(u.dims, z))
    out.attrs["centred_share"] = float(centred.reshape(mu.shape[-1], slots)[:, :n_groups].mean())
    return out


def drop_empty_slots(
    posterior: xr.Dataset, structure: ModelStructure, group_dim: str, n_groups: int, slots: int
) -> xr.Dataset:
    """Keep the first ``n_groups`` of ``slots`` group slots (see :mod:`hierreg.sampling.compiled`).

    Flat term-major parameters (dims ``group_term``) keep positions ``j * slots + g`` for
    ``g < n_groups``; per-group parameters (dims ``<group>``) their first ``n_groups``.
    """
    if slots == n_groups or structure.pooling == "complete":
        return posterior
    n_var = len(structure.varying_index)
    keep = (np.arange(n_var)[:, None] * slots + np.arange(n_groups)[None, :]).ravel()
    out = posterior
    if FLAT_DIM in posterior.dims:
        out = out.isel({FLAT_DIM: keep}).assign_coords({FLAT_DIM: np.arange(keep.size)})
    if group_dim in posterior.dims:
        out = out.isel({group_dim: slice(0, n_groups)})
    return out
