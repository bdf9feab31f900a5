"""Design + pooling + priors -> ``pymc.Model``. The only module that writes PyMC code.

The graph holds free parameters only (no deterministics), so it compiles and samples as
fast as the same model written by hand. It is built on the standardised design of
:mod:`hierreg.standardize`; :mod:`hierreg.posterior` maps the draws back to data units and
assembles the per-group coefficients ``beta``.

Free parameters (coordinates carry the real group labels and term names):

* complete pooling: ``beta`` (dims ``term``);
* no pooling: ``beta`` (dims ``(<group>, term)``), or ``beta_varying`` and ``beta_common``
  when only some terms vary;
* partial pooling: ``mu`` and ``tau`` (population mean and sd of each varying term) and
  ``z`` (standardised group offsets, non-centred: ``beta = mu + tau * z``) or the group
  coefficients themselves (centred); ``beta_common`` for the shared terms;
* ``sigma``: residual sd (scale of the Student-t), scalar or per group (``group_noise=True``);
* ``nu``: degrees of freedom, ``likelihood="student_t"`` only, ``Gamma(2, 0.1)``;
* ``y``: the observed response, dims ``obs`` (``likelihood_mode="rows"``), or
  ``y_loglik``, a potential holding the same log-likelihood computed from per-group
  sufficient statistics (``likelihood_mode="sufficient"``, see :mod:`hierreg.sufficient`).

Group-by-term parameters (``beta``/``beta_varying`` without pooling, ``z`` or centred
``beta`` with partial pooling) are sampled as one flat vector, dims ``group_term``, term-major
(term ``j`` of group ``g`` at ``j * n_groups + g``): every term's group coefficients are then
a contiguous 1-D slice, which is what a hand-written model uses. A ``(group, term)`` matrix
sliced by column compiles to about 40% more LLVM code and samples about 15% slower with
nutpie (radon, measured). :func:`unflatten` gives the ``(<group>, term)`` array back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hierreg.design import Design
from hierreg.priors import DefaultPriors
from hierreg.sufficient import SufficientStatistics

__all__ = [
    "FLAT_DIM",
    "ModelStructure",
    "build_model",
    "unflatten",
    "POOLING_MODES",
    "LIKELIHOODS",
    "PARAMETRIZATIONS",
]

POOLING_MODES = ("complete", "none", "partial")
LIKELIHOODS = ("normal", "student_t")
# Prior of the Student-t degrees of freedom: Gamma(2, 0.1) (Juarez & Steel 2010; the Stan
# prior-choice recommendation): mean 20, 5% quantile 3.6, little mass below 2.
NU_PRIOR = {"alpha": 2.0, "beta": 0.1}
PARAMETRIZATIONS = ("noncentered", "centered")
FLAT_DIM = "group_term"
COLUMNWISE_MAX_TERMS = 8
RESERVED = {
    "beta",
    "beta_varying",
    "beta_common",
    "mu",
    "tau",
    "z",
    "sigma",
    "nu",
    "y",
    "y_loglik",
    "obs",
    FLAT_DIM,
}


@dataclass(frozen=True)
class ModelStructure:
    """What shapes the graph, independent of the data values."""

    pooling: str
    varying: tuple[bool, ...]
    parametrization: str = "noncentered"
    group_noise: bool = False
    likelihood_mode: str = "rows"
    likelihood: str = "normal"

    @property
    def varying_index(self) -> np.ndarray:
        return np.flatnonzero(np.array(self.varying, dtype=bool))

    @property
    def common_index(self) -> np.ndarray:
        return np.flatnonzero(~np.array(self.varying, dtype=bool))


def group_dim(design: Design) -> str:
    """Dimension name for groups: the group column's name unless it clashes with ours."""
    name = design.spec.group_name
    return f"group_{name}" if name in RESERVED or name == "term" else name


def term_dims(structure: ModelStructure) -> tuple[str, str]:
    """(dimension of varying terms, dimension of shared terms)."""
    n_var, n_com = len(structure.varying_index), len(structure.common_index)
    return ("term" if n_com == 0 else "varying_term", "term" if n_var == 0 else "common_term")


def build_model(
    design: Design,
    structure: ModelStructure,
    priors: DefaultPriors,
    statistics: SufficientStatistics | None = None,
) -> pm.Model:
    """Build the PyMC model for one design.

    Parameters
    ----------
    design : Design
        Training arrays (``y`` required; ``group_index`` required unless pooling is complete).
    structure : ModelStructure
        Pooling mode, which terms vary by group, parametrisation, per-group noise.
    priors : DefaultPriors
        Location/scale of every coefficient prior, between-group sd scales, sigma rate.
    statistics : SufficientStatistics, optional
        With ``structure.likelihood_mode == "sufficient"``: the per-group statistics of
        the (standardised) data; computed from ``design`` when not given.

    Returns
    -------
    pymc.Model
    """
    X, y, spec = design.X, design.y, design.spec
    terms = np.array(spec.terms, dtype=object)
    var_idx, com_idx = structure.varying_index, structure.common_index
    var_dim, com_dim = term_dims(structure)
    gdim = group_dim(design)
    sufficient = structure.likelihood_mode == "sufficient"
    coords: dict[str, object] = {"term": list(terms)}
    if not sufficient:
        coords["obs"] = np.arange(len(y))
    if structure.pooling != "complete":
        coords[gdim] = list(spec.groups)
        coords[var_dim] = list(terms[var_idx])
        coords[com_dim] = list(terms[com_idx])
        coords[FLAT_DIM] = np.arange(len(spec.groups) * len(var_idx))
    n_groups = 1 if structure.pooling == "complete" else len(spec.groups)
    if sufficient and structure.likelihood != "normal":
        raise ValueError("the sufficient-statistics likelihood exists for likelihood='normal' only")
    if sufficient and statistics is None:
        statistics = SufficientStatistics.from_arrays(X, y, design.group_index, n_groups)

    with pm.Model(coords=coords) as model:
        # coefficients: per term, a scalar (shared) or a (n_groups,) vector (varying)
        coefficients: list = [None] * len(terms)
        shared = None  # the vector of shared coefficients, for the row-wise predictor
        if structure.pooling == "complete":
            shared = pm.Normal("beta", mu=priors.loc, sigma=priors.scale, dims="term")
            coefficients = [shared[k] for k in range(len(terms))]
        else:
            name = "beta" if len(com_idx) == 0 else "beta_varying"
            columns = _varying_coefficients(structure, priors, var_idx, name, var_dim, n_groups)
            for column, k in zip(columns, var_idx, strict=True):
                coefficients[k] = column
            if len(com_idx):
                shared = pm.Normal(
                    "beta_common",
                    mu=priors.loc[com_idx],
                    sigma=priors.scale[com_idx],
                    dims=com_dim,
                )
                for j, k in enumerate(com_idx):
                    coefficients[k] = shared[j]
        sigma_dims = gdim if structure.group_noise else None
        sigma = pm.Exponential("sigma", lam=priors.sigma_rate, dims=sigma_dims)
        if sufficient:
            pm.Potential("y_loglik", _sufficient_log_likelihood(statistics, coefficients, sigma))
        else:
            eta = _linear_predictor(X, design.group_index, coefficients, shared, structure)
            sigma_obs = sigma[design.group_index] if structure.group_noise else sigma
            if structure.likelihood == "student_t":
                nu = pm.Gamma("nu", **NU_PRIOR)
                pm.StudentT("y", nu=nu, mu=eta, sigma=sigma_obs, observed=y, dims="obs")
            else:
                pm.Normal("y", mu=eta, sigma=sigma_obs, observed=y, dims="obs")
    return model


def _linear_predictor(X, g, coefficients, shared, structure):
    """Row-wise ``x_i @ beta[g[i]]``, written as one would by hand."""
    var_idx, com_idx = structure.varying_index, structure.common_index
    if structure.pooling == "complete":
        return _shared_linear_predictor(X, shared)
    eta = _group_linear_predictor(X, g, [coefficients[k] for k in var_idx], var_idx)
    if len(com_idx):
        eta = eta + _shared_linear_predictor(X[:, com_idx], shared)
    return eta


def _sufficient_log_likelihood(stats: SufficientStatistics, coefficients, sigma):
    """Sum over groups of the exact normal log-likelihood from ``n, X'X, X'y, y'y``.

    ``coefficients[k]`` is term ``k``'s coefficient: a scalar (shared) or one value per
    group. The residual sum of squares of group ``g`` is
    ``y'y - 2 sum_k b_k (X'y)_k + sum_k sum_l b_k b_l (X'X)_kl``, written term by term for
    a few terms (a small graph, as by hand) and with one (groups, terms, terms) product
    beyond.
    """
    n_terms = len(coefficients)
    if n_terms <= COLUMNWISE_MAX_TERMS:
        ssr = stats.yty
        for k, b_k in enumerate(coefficients):
            ssr = ssr - 2.0 * b_k * stats.xty[:, k] + b_k**2 * stats.xtx[:, k, k]
            for j in range(k + 1, n_terms):
                ssr = ssr + 2.0 * b_k * coefficients[j] * stats.xtx[:, k, j]
    else:
        B = pt.stack([pt.broadcast_to(c, (stats.n_groups,)) for c in coefficients], axis=1)
        quad = pt.sum(pt.sum(B[:, :, None] * stats.xtx, axis=1) * B, axis=1)
        ssr = stats.yty - 2.0 * pt.sum(B * stats.xty, axis=1) + quad
    log_norm = 0.5 * np.log(2 * np.pi)
    if sigma.ndim == 0:
        return -stats.n.sum() * (pt.log(sigma) + log_norm) - pt.sum(ssr) / (2.0 * sigma**2)
    return pt.sum(-stats.n * (pt.log(sigma) + log_norm) - ssr / (2.0 * sigma**2))


def unflatten(values: np.ndarray, n_groups: int) -> np.ndarray:
    """``(..., n_terms * n_groups)`` term-major draws -> ``(..., n_groups, n_terms)``."""
    n_terms = values.shape[-1] // n_groups
    stacked = values.reshape(*values.shape[:-1], n_terms, n_groups)
    return np.swapaxes(stacked, -1, -2)


def _shared_linear_predictor(X, beta):
    """``X @ beta``: term by term for a few terms (smaller graph, measured faster with
    nutpie on radon), one matrix-vector product for many."""
    if X.shape[1] > COLUMNWISE_MAX_TERMS:
        return pt.dot(X, beta)
    eta = 0.0
    for k in range(X.shape[1]):
        eta = eta + (beta[k] if np.all(X[:, k] == 1.0) else X[:, k] * beta[k])
    return eta


def _group_linear_predictor(X, g, columns, var_idx):
    """``sum_k X[:, k] * columns[k][g]``, as one would write it by hand.

    An all-ones column (the intercept) needs no multiplication: the graph stays as small as
    a hand-written one.
    """
    eta = 0.0
    for column, k in zip(columns, var_idx, strict=True):
        gathered = column[g]
        eta = eta + (gathered if np.all(X[:, k] == 1.0) else X[:, k] * gathered)
    return eta


def _varying_coefficients(structure, priors, var_idx, name, var_dim, n_groups):
    """Per-group coefficients of the varying terms: one 1-D tensor (n_groups,) per term."""
    n_var = len(var_idx)
    loc, scale = priors.loc[var_idx], priors.scale[var_idx]
    term_of = np.repeat(np.arange(n_var), n_groups)  # term of each flat position

    def columns(flat):
        return [flat[j * n_groups : (j + 1) * n_groups] for j in range(n_var)]

    if structure.pooling == "none":
        return columns(pm.Normal(name, mu=loc[term_of], sigma=scale[term_of], dims=FLAT_DIM))
    mu = pm.Normal("mu", mu=loc, sigma=scale, dims=var_dim)
    tau = pm.HalfNormal("tau", sigma=priors.group_sd_scale[var_idx], dims=var_dim)
    if structure.parametrization == "centered":
        return columns(pm.Normal(name, mu=mu[term_of], sigma=tau[term_of], dims=FLAT_DIM))
    z = columns(pm.Normal("z", mu=0.0, sigma=1.0, dims=FLAT_DIM))
    return [mu[j] + tau[j] * z[j] for j in range(n_var)]
