"""Posterior draws + new design -> predictions, in numpy (no PyMC graph is compiled).

The expected response is linear in the coefficients, so its posterior mean and variance for
a row are exact functions of the posterior mean and covariance of that row's coefficients:
``E[x @ beta] = x @ m`` and ``Var(x @ beta) = x @ C @ x``; the predictive variance adds the
posterior mean of ``sigma**2``. Draw-based predictions work in row chunks with bounded memory.

Rows of groups unseen at fit (``group_index == -1``) use the population distribution:

* ``"population"``: per posterior draw, a fresh group drawn from ``Normal(mu, tau)``, shared
  by all rows of that group, so the uncertainty includes the between-group spread;
* ``"mean"``: the population mean ``mu`` only (as lme4's ``re.form=NA`` does).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from hierreg.model.families import Family, family
from hierreg.model.structure import CORR_DIMS, ModelStructure, factor_term_dim

__all__ = [
    "FactorDraws",
    "Moments",
    "PosteriorArrays",
    "log_likelihood",
    "moments",
    "predict_moments",
    "predict_moments_with_factors",
    "predictive_draws",
]

# Working memory for one chunk of draws x rows (float64 elements).
CHUNK_ELEMENTS = 4_000_000
# Scratch for the log-likelihood (its result is stored whole): small, so rarely page-faulted.
LOGLIK_CHUNK_ELEMENTS = 250_000
# Threads for the log-likelihood's chunks.
MAX_THREADS = 4


@dataclass(frozen=True)
class FactorDraws:
    """Draws of a further grouping factor's deviations, in data units.

    Attributes
    ----------
    effect : ndarray of shape (n_draws, n_levels, n_terms)
        Each level's deviation of each term (0 for terms that do not vary by the factor).
    tau : ndarray of shape (n_draws, n_terms) or None
        Between-level sd (0 outside the varying terms); None under no pooling.
    corr : ndarray of shape (n_draws, n_terms, n_terms) or None
        Correlation of a level's deviations (``covariance="full"``); None: independent.
    """

    effect: np.ndarray
    tau: np.ndarray | None
    corr: np.ndarray | None = None

    def fresh(self, draw_index, n_new, new_groups, rng) -> np.ndarray:
        """Deviations of ``n_new`` unseen levels per draw: fresh from ``Normal(0, tau)``
        (``"population"``) or 0 (``"mean"``)."""
        shape = (len(draw_index), n_new, self.effect.shape[2])
        if new_groups != "population" or self.tau is None:
            return np.zeros(shape)
        z = rng.standard_normal(shape)
        if self.corr is not None:
            z = np.einsum("sij,suj->sui", np.linalg.cholesky(self.corr[draw_index]), z)
        return self.tau[draw_index][:, None, :] * z

    def new_level_cov(self) -> np.ndarray:
        """Posterior mean covariance of an unseen level's deviation."""
        if self.tau is None:
            return np.zeros((self.effect.shape[2],) * 2)
        return fresh_group_cov(self.tau, self.corr)


def fresh_group_cov(tau: np.ndarray, corr: np.ndarray | None) -> np.ndarray:
    """``E[diag(tau) R diag(tau)]`` over the draws (``R = I`` when ``corr`` is None): the
    covariance a fresh group's (or level's) deviation adds."""
    if corr is None:
        return np.diag((tau**2).mean(axis=0))
    return (tau[:, :, None] * corr * tau[:, None, :]).mean(axis=0)


@dataclass(frozen=True)
class PosteriorArrays:
    """Posterior draws flattened over (chain, draw), in data units.

    Attributes
    ----------
    beta : ndarray of shape (n_draws, n_groups, n_terms)
        Per-group coefficients (one pseudo-group under complete pooling).
    population : ndarray of shape (n_draws, n_terms) or None
        Coefficients of the population: ``mu`` for varying terms, shared values for the rest.
    tau : ndarray of shape (n_draws, n_terms) or None
        Between-group sd per term (0 for shared terms).
    sigma : ndarray of shape (n_draws,) or (n_draws, n_groups)
        Residual sd (the scale of the Student-t noise).
    likelihood : str
        The likelihood family's name (:mod:`hierreg.model.families`).
    noise_params : dict of str to ndarray of shape (n_draws,)
        The family's further parameters (Student-t: ``nu``).
    corr : ndarray of shape (n_draws, n_terms, n_terms) or None
        Correlation of a group's coefficients (``covariance="full"``; identity outside the
        varying terms); None: independent.
    factors : tuple of FactorDraws
        The grouping factors after the first.
    """

    beta: np.ndarray
    population: np.ndarray | None
    tau: np.ndarray | None
    sigma: np.ndarray
    likelihood: str = "normal"
    noise_params: Mapping[str, np.ndarray] = field(default_factory=dict)
    corr: np.ndarray | None = None
    factors: tuple[FactorDraws, ...] = ()

    @property
    def family(self) -> Family:
        return family(self.likelihood)

    @classmethod
    def from_posterior(
        cls,
        posterior: xr.Dataset,
        structure: ModelStructure,
        gdim: str,
        fdims: Sequence[str] = (),
    ):
        def flat(name, dims):
            values = posterior[name].transpose("chain", "draw", *dims).values
            # contiguous: the same draws give bit-identical predictions whatever their layout
            return np.ascontiguousarray(values.reshape(-1, *[posterior.sizes[d] for d in dims]))

        arrays = cls._primary(posterior, structure, gdim, flat)
        if not fdims:
            return arrays
        factors = tuple(
            _factor_draws(posterior, fs, fdim, flat, len(structure.varying))
            for fs, fdim in zip(structure.factors, fdims, strict=True)
        )
        return replace(arrays, factors=factors)

    @classmethod
    def _primary(cls, posterior, structure, gdim, flat):
        n_terms = len(structure.varying)
        noise = {
            "likelihood": structure.likelihood,
            "noise_params": family(structure.likelihood).draws(posterior, flat),
        }
        if structure.pooling == "complete":
            beta = flat("beta", ["term"])[:, None, :]
            sigma = flat("sigma", [])
            return cls(beta=beta, population=beta[:, 0, :], tau=None, sigma=sigma, **noise)
        beta = flat("beta", [gdim, "term"])
        sigma = flat("sigma", [gdim] if structure.group_noise else [])
        if structure.pooling == "none":
            return cls(beta=beta, population=None, tau=None, sigma=sigma, **noise)
        var_dim = "term" if not len(structure.common_index) else "varying_term"
        population = np.empty((beta.shape[0], n_terms))
        tau = np.zeros((beta.shape[0], n_terms))
        population[:, structure.varying_index] = flat("mu", [var_dim])
        tau[:, structure.varying_index] = flat("tau", [var_dim])
        if len(structure.common_index):
            population[:, structure.common_index] = flat("beta_common", ["common_term"])
        corr = None
        if structure.covariance == "full":
            corr = np.broadcast_to(np.eye(n_terms), (beta.shape[0], n_terms, n_terms)).copy()
            block = np.ix_(structure.varying_index, structure.varying_index)
            corr[:, block[0], block[1]] = flat("corr", list(CORR_DIMS))
        return cls(beta=beta, population=population, tau=tau, sigma=sigma, corr=corr, **noise)

    @property
    def n_draws(self) -> int:
        return self.beta.shape[0]


def _factor_draws(posterior, fs, fdim: str, flat, n_terms: int) -> FactorDraws:
    term_dim, var = factor_term_dim(fdim), fs.varying_index
    effect_var = flat(f"effect_{fdim}", [fdim, term_dim])
    effect = np.zeros(effect_var.shape[:2] + (n_terms,))
    effect[:, :, var] = effect_var
    tau = corr = None
    if f"tau_{fdim}" in posterior:  # partial pooling
        tau = np.zeros((effect.shape[0], n_terms))
        tau[:, var] = flat(f"tau_{fdim}", [term_dim])
        if f"corr_{fdim}" in posterior:
            corr = np.broadcast_to(np.eye(n_terms), (effect.shape[0], n_terms, n_terms)).copy()
            block = np.ix_(var, var)
            dims = [f"{fdim}_{CORR_DIMS[0]}", f"{fdim}_{CORR_DIMS[1]}"]
            corr[:, block[0], block[1]] = flat(f"corr_{fdim}", dims)
    return FactorDraws(effect=np.ascontiguousarray(effect), tau=tau, corr=corr)


@dataclass(frozen=True)
class Moments:
    """Posterior mean and covariance of each group's coefficients, and of a new group's."""

    mean: np.ndarray  # (n_groups, n_terms)
    cov: np.ndarray  # (n_groups, n_terms, n_terms)
    noise_var: np.ndarray  # (n_groups,) posterior mean of the noise variance
    new_mean: np.ndarray | None  # (n_terms,)
    new_cov: np.ndarray | None  # (n_terms, n_terms)
    new_noise_var: float | None


def _mean_cov(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance over axis 0 of draws with shape (S, ..., P)."""
    mean = draws.mean(axis=0)
    centred = draws - mean
    cov = np.einsum("s...i,s...j->...ij", centred, centred) / draws.shape[0]
    return mean, cov


def moments(post: PosteriorArrays, new_groups: str | None) -> Moments:
    """Exact posterior moments for predictions; ``new_groups`` as in the module docstring."""
    mean, cov = _mean_cov(post.beta)
    n_groups = post.beta.shape[1]
    sigma2 = post.sigma**2
    factor = post.family.variance_factor(post.noise_params)
    if factor is not None:
        sigma2 = sigma2 * (factor if sigma2.ndim == 1 else factor[:, None])
    noise_var = np.full(n_groups, sigma2.mean()) if sigma2.ndim == 1 else sigma2.mean(axis=0)
    new_mean = new_cov = new_noise = None
    if post.population is not None and new_groups in ("population", "mean"):
        new_mean, new_cov = _mean_cov(post.population)
        if new_groups == "population" and post.tau is not None:
            # Var(mu + L z) = Cov(mu) + E[diag(tau) R diag(tau)] for z ~ N(0, I)
            new_cov = new_cov + fresh_group_cov(post.tau, post.corr)
        new_noise = float(sigma2.mean()) if sigma2.ndim == 1 else None
    return Moments(mean, cov, noise_var, new_mean, new_cov, new_noise)


def predict_moments(
    X: np.ndarray, group_index: np.ndarray, m: Moments, include_noise: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-predictive mean and variance per row (exact, no draws).

    Rows with a negative ``group_index`` (unseen groups) use ``m.new_mean``/``m.new_cov``.
    """
    mean = np.empty(X.shape[0])
    var = np.empty(X.shape[0])
    seen = group_index >= 0
    for rows in _chunks(np.flatnonzero(seen), X.shape[1] ** 2):
        x, g = X[rows], group_index[rows]
        mean[rows] = np.einsum("ij,ij->i", x, m.mean[g])
        var[rows] = np.einsum("ij,ijk,ik->i", x, m.cov[g], x)
        if include_noise:
            var[rows] += m.noise_var[g]
    unseen = np.flatnonzero(~seen)
    if len(unseen):
        x = X[unseen]
        mean[unseen] = x @ m.new_mean
        var[unseen] = np.einsum("ij,jk,ik->i", x, m.new_cov, x)
        if include_noise:
            var[unseen] += m.new_noise_var
    return mean, np.maximum(var, 0.0)


def predict_moments_with_factors(
    X: np.ndarray,
    group_index: np.ndarray,
    factor_index: Sequence[np.ndarray],
    post: PosteriorArrays,
    m: Moments,
    new_groups: str,
    include_noise: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-predictive mean and variance per row with several grouping factors.

    A row's coefficients sum the first factor's and the others' deviations, which are
    correlated in the posterior, so mean and variance are taken over the posterior draws of
    the expected response (no random numbers: unseen groups and levels enter at their mean),
    plus, for ``new_groups="population"``, the exact variance of an unseen group's or
    level's fresh deviation, ``x' E[diag(tau) R diag(tau)] x``, and the noise variance.
    """
    mean = np.empty(X.shape[0])
    var = np.empty(X.shape[0])
    chunks = predictive_draws(
        X, group_index, post, new_groups="mean", include_noise=False,
        draw_index=np.arange(post.n_draws), rng=np.random.default_rng(0),
        factor_index=factor_index,
    )  # fmt: skip
    for rows, draws in chunks:
        mean[rows] = draws.mean(axis=0)
        var[rows] = draws.var(axis=0)
    if new_groups == "population":
        fresh = [
            (index, fd.new_level_cov())
            for fd, index in zip(post.factors, factor_index, strict=True)
        ]
        if post.tau is not None:  # unseen groups of the first factor
            fresh.append((group_index, fresh_group_cov(post.tau, post.corr)))
        for index, cov in fresh:
            rows = np.flatnonzero(index < 0)
            var[rows] += np.einsum("ij,jk,ik->i", X[rows], cov, X[rows])
    if include_noise:
        seen = group_index >= 0
        var[seen] += m.noise_var[group_index[seen]]
        if (~seen).any():
            var[~seen] += m.new_noise_var
    return mean, np.maximum(var, 0.0)


def predictive_draws(
    X: np.ndarray,
    group_index: np.ndarray,
    post: PosteriorArrays,
    *,
    new_groups: str | None,
    include_noise: bool,
    draw_index: np.ndarray,
    rng: np.random.Generator,
    factor_index: Sequence[np.ndarray] = (),
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(rows, draws)`` chunks: ``draws`` has shape (len(draw_index), len(rows)).

    ``group_index`` is ``-1 - k`` for a row of the k-th distinct unseen group; each unseen
    group gets one fresh coefficient vector per draw, shared by its rows. ``factor_index``
    gives each row's level of the further grouping factors (``post.factors``), numbered the
    same way; an unseen level gets fresh deviations (``"population"``) or none (``"mean"``).
    """
    beta = post.beta[draw_index]
    n_draws = len(draw_index)
    extra = []  # further factors: (deviations with fresh unseen levels, level per row)
    for fd, index in zip(post.factors, factor_index, strict=True):
        effect = fd.effect[draw_index]
        n_new = int(-index.min()) if (index < 0).any() else 0
        if n_new:
            effect = np.concatenate([effect, fd.fresh(draw_index, n_new, new_groups, rng)], 1)
        extra.append((effect, np.where(index < 0, fd.effect.shape[1] - 1 - index, index)))
    n_unseen = int(-group_index.min()) if (group_index < 0).any() else 0
    if n_unseen:
        population = post.population[draw_index]
        fresh = np.repeat(population[:, None, :], n_unseen, axis=1)
        if new_groups == "population":
            z = rng.standard_normal((n_draws, n_unseen, population.shape[1]))
            if post.corr is not None:  # correlated: z -> chol(R) z
                z = np.einsum("sij,suj->sui", np.linalg.cholesky(post.corr[draw_index]), z)
            fresh = fresh + post.tau[draw_index][:, None, :] * z
        beta = np.concatenate([beta, fresh], axis=1)
    index = np.where(group_index < 0, post.beta.shape[1] - 1 - group_index, group_index)
    sigma = post.sigma[draw_index]
    params = {name: v[draw_index][:, None] for name, v in post.noise_params.items()}
    for rows in _chunks(np.arange(X.shape[0]), n_draws * X.shape[1]):
        g = index[rows]
        eta = np.einsum("ij,sij->si", X[rows], beta[:, g, :])
        for effect, level in extra:
            eta += np.einsum("ij,sij->si", X[rows], effect[:, level[rows], :])
        if include_noise:
            scale = sigma[:, None] if sigma.ndim == 1 else sigma[:, g]
            noise = post.family.standard_noise(rng, eta.shape, params)
            eta = eta + scale * noise
        yield rows, eta


def _chunks(rows: np.ndarray, per_row: int, elements: int | None = None) -> Iterator[np.ndarray]:
    size = max(1, (elements or CHUNK_ELEMENTS) // max(per_row, 1))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def log_likelihood(
    X: np.ndarray,
    y: np.ndarray,
    group_index: np.ndarray,
    post: PosteriorArrays,
    factor_index: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Pointwise log-likelihood (of ``post``'s likelihood family), shape (n_draws, n_rows),
    computed in row chunks, in threads (NumPy releases the GIL).

    Written into the result in place, one term at a time, through one small scratch buffer
    per thread reused by its chunks: no (draws, rows, terms) temporary and no per-operation
    allocations (fresh memory costs page faults: on radon, 4000 x 919, about 4x the time).
    """
    n_draws = post.n_draws
    out = np.empty((n_draws, X.shape[0]))
    g_all = np.zeros(X.shape[0], dtype=int) if group_index is None else group_index
    # each term's coefficients as a contiguous (draws, groups) block: fast gathers by group
    coef = [np.ascontiguousarray(post.beta[:, :, k]) for k in range(X.shape[1])]
    # (term, its (draws, levels) deviations, level per row) of the further grouping factors
    extra = [
        (k, np.ascontiguousarray(fd.effect[:, :, k]), index)
        for fd, index in zip(post.factors, factor_index, strict=True)
        for k in range(X.shape[1])
        if np.any(fd.effect[:, :, k])
    ]
    per_group_sigma = post.sigma.ndim > 1
    sigma = post.sigma if per_group_sigma else post.sigma[:, None]
    log_density = post.family.log_density_of_squares(
        {name: v[:, None] for name, v in post.noise_params.items()}
    )

    def fill(chunks: list[np.ndarray]) -> None:
        buffer = np.empty(min(LOGLIK_CHUNK_ELEMENTS, n_draws * X.shape[0]))
        for rows in chunks:
            g = g_all[rows]
            resid = out[:, rows[0] : rows[-1] + 1]  # a view: chunks are consecutive rows
            scratch = buffer[: resid.size].reshape(resid.shape)
            resid[...] = y[rows]
            for k, c in enumerate(coef):
                np.take(c, g, axis=1, out=scratch, mode="clip")  # "raise" would buffer again
                if not np.all(X[rows, k] == 1.0):
                    scratch *= X[rows, k]
                resid -= scratch
            for k, effect, index in extra:
                np.take(effect, index[rows], axis=1, out=scratch, mode="clip")
                if not np.all(X[rows, k] == 1.0):
                    scratch *= X[rows, k]
                resid -= scratch
            if per_group_sigma:
                scale = np.take(sigma, g, axis=1, out=scratch, mode="clip")
            else:
                scale = sigma
            resid /= scale
            np.square(resid, out=resid)
            log_density(resid)
            resid -= np.log(scale)

    chunks = list(_chunks(np.arange(X.shape[0]), n_draws, LOGLIK_CHUNK_ELEMENTS))
    workers = min(os.cpu_count() or 1, MAX_THREADS, len(chunks))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fill, [chunks[i::workers] for i in range(workers)]))
    else:
        fill(chunks)
    return out
