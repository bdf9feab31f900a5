"""Raw draws -> the posterior users see: data units, and per-group coefficients ``beta``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hierreg.design.frames import as_2d_frame
from hierreg.model.standardize import Standardization
from hierreg.model.structure import (
    CORR_DIMS,
    FLAT_DIM,
    FactorStructure,
    ModelStructure,
    factor_dims,
    factor_term_dim,
    group_dim,
    term_dims,
    unflatten,
)
from hierreg.results.predict import PosteriorArrays, log_likelihood
from hierreg.schema import plain

__all__ = [
    "posterior_in_data_units",
    "training_columns",
    "add_log_likelihood",
    "finalize_posterior",
    "label_groups",
]


def label_groups(posterior: xr.Dataset, group_dim: str, groups: Sequence | None) -> xr.Dataset:
    """Give the group dimension the real labels (the model's may be strings, or those of
    the fit that compiled a cached model)."""
    if groups is None or group_dim not in posterior.dims:
        return posterior
    return posterior.assign_coords({group_dim: list(groups)})


def finalize_posterior(
    idata: xr.DataTree,
    structure: ModelStructure,
    standardization: Standardization,
    y: np.ndarray | None,
    group_dim: str,
    groups: Sequence | None,
    group_sd_scale: np.ndarray | None = None,
    factors: Sequence[tuple[str, Sequence]] = (),
    factor_sd_scale: Mapping[str, np.ndarray] | None = None,
) -> xr.DataTree:
    """Map draws back to data units and add ``beta`` with dims ``(<group>, term)``.

    Group-by-term parameters sampled flat (dims ``group_term``) get dims ``(<group>, term)``
    with coordinates ``groups`` (``None`` under complete pooling). Under partial pooling
    (non-centred) ``beta = mu + tau * z``; when only some terms vary, ``beta`` joins the
    varying and the shared coefficients. ``observed_data`` holds the response in data units.
    With ``covariance="full"``, ``group_sd_scale`` (the standardised prior scales of the
    varying terms' sds) turns the sampled Cholesky factor into ``tau`` and ``corr``.
    ``factors``: ``(dimension, levels)`` of each grouping factor after the first; each gets
    ``effect_<dim>`` (dims ``(<dim>, <dim>_term)``, data units) and, under partial pooling,
    ``tau_<dim>`` (and ``corr_<dim>`` with a full covariance; ``factor_sd_scale``: by
    dimension, the standardised unit scales of every term's between-level sd prior).
    Modifies and returns ``idata``.
    """
    posterior = label_groups(idata["posterior"].to_dataset(), group_dim, groups)
    if groups is not None:
        terms = np.array(standardization.terms, dtype=object)
        posterior = _unflatten_group_terms(posterior, structure, group_dim, groups, terms)
        for (fdim, levels), fs in zip(factors, structure.factors, strict=True):
            posterior = _restore_factor_effects(
                posterior,
                structure,
                fs,
                fdim,
                levels,
                standardization,
                None if factor_sd_scale is None else factor_sd_scale.get(fdim),
            )
        if structure.covariance == "full":
            posterior = _correlated_effects(posterior, structure, group_dim, group_sd_scale)
    attrs = dict(posterior.attrs)
    restored = standardization.restore(posterior)
    if structure.pooling != "complete" and "beta" not in restored:
        restored["beta"] = _assemble_beta(restored, structure, group_dim)
    restored.attrs = attrs
    idata["posterior"] = restored
    if y is None:  # fitted from distributed statistics: the rows stayed on the cluster
        return idata
    # the response in data units (the sufficient-statistics model has no observed variable)
    idata["observed_data"] = xr.Dataset(
        {"y": (("obs",), np.asarray(y, dtype=float))}, coords={"obs": np.arange(len(y))}
    )
    return idata


def _unflatten_group_terms(
    posterior: xr.Dataset, structure: ModelStructure, group_dim: str, groups, terms
) -> xr.Dataset:
    """Flat ``group_term`` draws (see :mod:`hierreg.model.graph`) -> dims ``(<group>, term)``."""
    flat = [name for name, var in posterior.data_vars.items() if FLAT_DIM in var.dims]
    if not flat:
        return posterior
    var_dim, _ = term_dims(structure)
    out = posterior.drop_vars([*flat, FLAT_DIM]).assign_coords(
        {group_dim: list(groups), var_dim: list(terms[structure.varying_index])}
    )
    for name in flat:
        values = posterior[name].transpose("chain", "draw", FLAT_DIM).values
        out[name] = (("chain", "draw", group_dim, var_dim), unflatten(values, len(groups)))
    return out


def _correlated_effects(
    posterior: xr.Dataset, structure: ModelStructure, group_dim: str, scale: np.ndarray
) -> xr.Dataset:
    """``covariance="full"``: the packed Cholesky factor ``chol`` -> ``tau`` (sds),
    ``corr`` (correlation matrix, dims ``corr_term`` x ``corr_term_2``) and the varying
    coefficients ``mu + L z`` (still in standardised units: restored afterwards)."""
    var_dim, _ = term_dims(structure)
    n_var = len(structure.varying_index)
    L = _cholesky_from_packed(posterior["chol"], n_var)
    L *= np.asarray(scale, dtype=float)[:, None]  # rows of diag(s) L
    tau = np.sqrt(np.sum(L**2, axis=-1))
    corr = np.einsum("cdij,cdkj->cdik", L, L) / (tau[..., :, None] * tau[..., None, :])
    z = posterior["z"].transpose("chain", "draw", group_dim, var_dim).values
    mu = posterior["mu"].transpose("chain", "draw", var_dim).values
    varying = mu[:, :, None, :] + np.einsum("cdjk,cdgk->cdgj", L, z)
    names = posterior[var_dim].values
    chol_dims = [d for d in posterior["chol"].dims if d not in ("chain", "draw")]
    out = posterior.drop_vars("chol").drop_dims(chol_dims, errors="ignore")
    out["tau"] = (("chain", "draw", var_dim), tau)
    out["corr"] = (("chain", "draw", *CORR_DIMS), corr)
    out = out.assign_coords({CORR_DIMS[0]: names, CORR_DIMS[1]: names})
    name = "beta_varying" if "beta_common" in posterior else "beta"
    out[name] = (("chain", "draw", group_dim, var_dim), varying)
    return out


def _restore_factor_effects(
    posterior: xr.Dataset,
    structure: ModelStructure,
    fs: FactorStructure,
    fdim: str,
    levels: Sequence,
    units: Standardization,
    scale: np.ndarray | None,
) -> xr.Dataset:
    """A further grouping factor's draws -> ``effect_<fdim>`` (dims ``(<fdim>, <fdim>_term)``,
    data units), ``tau_<fdim>`` (and ``corr_<fdim>``), and ``z_<fdim>`` (the iid ``N(0, 1)``
    draws ``z0 + w / sqrt(L)``, same dims); the mean deviation that the model moved into the
    population coefficients' variables (see :func:`hierreg.model.graph._factor_effects`) is taken
    back out of ``mu`` / ``beta_common`` (still standardised: restored afterwards)."""
    term_dim = factor_term_dim(fdim)
    names = [units.terms[k] for k in fs.varying_index]
    factor = units.coef_factor[fs.varying_index]  # standardised -> data units, per term
    n_levels, n_var = len(levels), len(names)
    out = posterior.assign_coords({fdim: list(levels), term_dim: names})
    dims = ("chain", "draw", fdim, term_dim)
    if structure.pooling == "none":
        effect = posterior[f"effect_{fdim}"].transpose("chain", "draw", fdim, term_dim).values
        out[f"effect_{fdim}"] = (dims, effect * factor)
        return out
    w = posterior[f"zbar_{fdim}"].transpose("chain", "draw", term_dim).values
    if f"u_{fdim}" in posterior:  # centred: u0 = tau * z0
        tau = posterior[f"tau_{fdim}"].transpose("chain", "draw", term_dim).values
        u0 = posterior[f"u_{fdim}"].transpose("chain", "draw", fdim, term_dim).values
        out[f"u_{fdim}"] = (dims, u0)
        effect = u0 + (tau * w)[:, :, None, :] / np.sqrt(n_levels)
        return _with_effects(out, structure, names, effect, tau, factor, fdim)
    z0 = posterior[f"z_{fdim}"].transpose("chain", "draw", fdim, term_dim).values
    z = z0 + w[:, :, None, :] / np.sqrt(n_levels)  # (chain, draw, levels, terms)
    out[f"z_{fdim}"] = (dims, z)
    if f"chol_{fdim}" in posterior:
        s = np.asarray(scale, dtype=float)[fs.varying_index]
        L = _cholesky_from_packed(posterior[f"chol_{fdim}"], n_var) * s[:, None]
        tau = np.sqrt(np.sum(L**2, axis=-1))
        corr = np.einsum("cdij,cdkj->cdik", L, L) / (tau[..., :, None] * tau[..., None, :])
        effect = np.einsum("cdjk,cdgk->cdgj", L, z)
        chol_dims = [d for d in posterior[f"chol_{fdim}"].dims if d not in ("chain", "draw")]
        out = out.drop_vars(f"chol_{fdim}").drop_dims(chol_dims, errors="ignore")
        corr_dims = (f"{fdim}_{CORR_DIMS[0]}", f"{fdim}_{CORR_DIMS[1]}")
        out[f"corr_{fdim}"] = (("chain", "draw", *corr_dims), corr)
        out = out.assign_coords({corr_dims[0]: names, corr_dims[1]: names})
    else:
        tau = posterior[f"tau_{fdim}"].transpose("chain", "draw", term_dim).values
        effect = tau[:, :, None, :] * z
    return _with_effects(out, structure, names, effect, tau, factor, fdim)


def _with_effects(out, structure, names, effect, tau, factor, fdim) -> xr.Dataset:
    """Store a factor's deviations and sds in data units; take their mean over the levels
    (``D(w) / sqrt(L)``, as ``z0`` sums to zero) back out of the locations."""
    out = _subtract_shift(out, structure, names, effect.mean(axis=2))
    term_dim = factor_term_dim(fdim)
    out[f"tau_{fdim}"] = (("chain", "draw", term_dim), tau * factor)
    out[f"effect_{fdim}"] = (("chain", "draw", fdim, term_dim), effect * factor)
    return out


def _subtract_shift(
    posterior: xr.Dataset, structure: ModelStructure, names: list[str], shift: np.ndarray
) -> xr.Dataset:
    """``mu`` (or ``beta_common``) of term ``names[j]`` minus ``shift[..., j]``."""
    var_dim, com_dim = term_dims(structure)
    for name, dim in (("mu", var_dim), ("beta_common", com_dim)):
        if name not in posterior:
            continue
        var = posterior[name].transpose("chain", "draw", dim)
        values = var.values.copy()
        labels = list(var[dim].values)
        for j, term in enumerate(names):
            if term in labels:
                values[:, :, labels.index(term)] -= shift[:, :, j]
        posterior[name] = (var.dims, values)
    return posterior


def _cholesky_from_packed(packed: xr.DataArray, n: int) -> np.ndarray:
    """PyMC's packed lower triangle (chain, draw, n(n+1)/2) -> (chain, draw, n, n)."""
    values = packed.transpose("chain", "draw", ...).values
    L = np.zeros(values.shape[:2] + (n, n))
    rows, cols = np.tril_indices(n)
    L[..., rows, cols] = values
    return L


def _assemble_beta(posterior: xr.Dataset, structure: ModelStructure, group_dim: str):
    var_dim, com_dim = term_dims(structure)
    if "beta_varying" in posterior:
        varying = posterior["beta_varying"]
    else:  # non-centred: beta = mu + tau * z
        varying = posterior["mu"] + posterior["tau"] * posterior["z"]
    if var_dim == "term":
        return varying.transpose("chain", "draw", group_dim, "term")
    common = posterior["beta_common"].expand_dims({group_dim: posterior[group_dim].values})
    parts = [varying.rename({var_dim: "term"}), common.rename({com_dim: "term"})]
    joined = xr.concat(parts, dim="term")
    order = _term_order(structure, varying[var_dim].values, common[com_dim].values)
    return joined.isel(term=order).transpose("chain", "draw", group_dim, "term")


def _term_order(structure: ModelStructure, varying_terms, common_terms) -> np.ndarray:
    """Positions, in the concatenation [varying..., common...], of terms in design order."""
    n = len(structure.varying)
    position = np.empty(n, dtype=int)
    position[structure.varying_index] = np.arange(len(varying_terms))
    position[structure.common_index] = len(varying_terms) + np.arange(len(common_terms))
    return position


def add_log_likelihood(idata: xr.DataTree, pointwise: np.ndarray) -> xr.DataTree:
    """Store pointwise log-likelihood, shape (chains * draws, rows), as ``log_likelihood/y``."""
    posterior = idata["posterior"]
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    values = pointwise.reshape(chains, draws, -1)
    idata["log_likelihood"] = xr.Dataset(
        {"y": (("chain", "draw", "obs"), values)},
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values,
            "obs": np.arange(values.shape[2]),
        },
    )
    return idata


# store_log_likelihood="auto" stores it up to this many (draw, row) values (800 MB).
LOG_LIKELIHOOD_AUTO_MAX = 100_000_000


def posterior_in_data_units(
    idata, design, structure, units, std_priors, store_loglik, training, rows: bool
):
    """The sampler's draws -> data units and labels, the pointwise log-likelihood (when the
    rows are here and it is wanted), and the training values of the formula's columns."""
    gdim = group_dim(design)
    fdims = factor_dims(design) if structure.factors else []
    idata = finalize_posterior(
        idata, structure, units, design.y if rows else None, gdim, design.spec.groups,
        group_sd_scale=std_priors.tau_unit_scales()[structure.varying_index],
        factors=[(d, f.levels) for d, f in zip(fdims, design.spec.factors, strict=True)],
        factor_sd_scale={d: std_priors.tau_unit_scales(d) for d in std_priors.factor_tau},
    )  # fmt: skip
    if rows and _store_log_likelihood(store_loglik, idata, len(design.y)):
        post = PosteriorArrays.from_posterior(
            idata["posterior"].to_dataset(), structure, gdim, fdims
        )
        pointwise = log_likelihood(
            design.X, design.y, design.group_index, post, design.factor_index
        )
        add_log_likelihood(idata, pointwise)
    if "constant_data" in idata:  # PyMC's copy of the model's data containers
        del idata["constant_data"]
    if design.spec.formula_columns:
        idata["constant_data"] = training_columns(training, design.spec.formula_columns)
    return idata


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


def _store_log_likelihood(setting: Any, idata, n_rows: int) -> bool:
    if not _is_auto(setting):
        return bool(setting)
    posterior = idata["posterior"]
    return posterior.sizes["chain"] * posterior.sizes["draw"] * n_rows <= LOG_LIKELIHOOD_AUTO_MAX


def training_columns(X: Any, columns: list[str]) -> xr.Dataset:
    """The training values of the formula's columns, as ArviZ's ``constant_data`` group.

    Categorical columns are stored as their labels; ``model.json`` keeps the categories.
    """
    frame = as_2d_frame(X)
    data = {}
    for name in columns:
        values, attrs = frame[name], {}
        if isinstance(values.dtype, pd.CategoricalDtype):
            attrs = {
                "categories": json.dumps([plain(c) for c in values.dtype.categories]),
                "ordered": int(values.dtype.ordered),
            }
            values = values.astype(object)
        data[name] = xr.Variable("obs", values.to_numpy(), attrs=attrs)
    return xr.Dataset(data, coords={"obs": np.arange(len(frame))})
