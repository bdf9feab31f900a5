"""The normal model with its group effects integrated out, and their exact conditional draws.

Partial pooling, one grouping factor, a normal likelihood: group ``g``'s coefficients of the
varying terms are ``mu + b_g`` with ``b_g = D u_g``, ``D = diag(tau)``, ``u_g ~ N(0, I)``.
Integrating ``u_g`` out, ``y_g ~ N(X_g m, sigma^2 I + Z_g D^2 Z_g')`` (``m``: every term's
population coefficient, ``Z_g``: the varying columns). With ``r = y_g - X_g m``,
``M_g = I + D Z_g'Z_g D / sigma^2`` (Woodbury and the matrix determinant lemma)::

    log p(y_g) = -n_g/2 log(2 pi sigma^2) - 1/2 log|M_g|
                 - (r'r - w_g' M_g^-1 w_g) / (2 sigma^2),      w_g = D Z_g'r / sigma

which needs only each group's ``n``, ``X'X``, ``X'y``, ``y'y`` (:mod:`hierreg.model.sufficient`)
and one small Cholesky factor per group: a gradient costs ``groups x k^3``, not rows. ``M_g``
stays well conditioned as ``tau -> 0`` (it tends to ``I``), where ``D^-1`` would not.

Given ``mu``, ``tau``, ``sigma``, the offsets are exactly normal:
``u_g ~ N(M_g^-1 w_g / sigma, M_g^-1)`` (:func:`conditional_offsets`); ``u_g`` is the
non-centred ``z`` of the same model, so the draws have the layout and meaning of
``parametrization="noncentered"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

__all__ = [
    "collapsed_log_likelihood",
    "conditional_offsets",
    "conditional_population",
    "integrate_population",
]


def integrate_population(priors: Any) -> bool:
    """Whether the population coefficients are integrated out too: when every coefficient
    prior is normal (otherwise they are sampled with the variance parameters)."""
    return all(p.distribution == "Normal" for p in priors.coef)


def _inverse_pieces(ztz: Any, tau: Any, s2: Any, k: int) -> tuple[Any, Any]:
    """Per slot, ``log|M|`` and ``G = D M^-1 D / sigma^2`` (slots, k, k), with
    ``M = I + D Z'Z D / sigma^2`` (closed forms for one and two varying terms)."""
    scaled = ztz * (tau[:, None] * tau[None, :])[None, :, :] / s2
    outer = (tau[:, None] * tau[None, :])[None, :, :] / s2
    if k == 1:
        a = 1.0 + scaled[:, 0, 0]
        return pt.log(a), (outer[:, 0, 0] / a)[:, None, None]
    if k == 2:
        a, b, d = 1.0 + scaled[:, 0, 0], scaled[:, 0, 1], 1.0 + scaled[:, 1, 1]
        det = a * d - b**2
        inverse = pt.stack([pt.stack([d, -b], axis=1), pt.stack([-b, a], axis=1)], axis=1)
        return pt.log(det), inverse / det[:, None, None] * outer
    M = pt.eye(k)[None, :, :] + scaled
    chol = pt.linalg.cholesky(M)
    logdet = 2.0 * pt.sum(pt.log(pt.diagonal(chol, axis1=1, axis2=2)), axis=1)
    return logdet, pt.linalg.inv(M) * outer


def columnwise_log_likelihood(
    n: Any,
    yty: Any,
    xty: list,
    xtx: dict,
    varying: np.ndarray,
    tau: Any,
    sigma: Any,
    coefficients: list | None = None,
    prior_mean: Any = None,
    prior_sd: Any = None,
) -> Any:
    """:func:`collapsed_log_likelihood` for one or two varying terms and a few terms, written
    entry by entry on (slots,) vectors: ``xty[k]``, ``xtx[k, j]`` (``k <= j``). The same
    numbers; a much smaller compiled function than the batched matrix form (radon: cold
    compile about 3x faster)."""
    n_terms = len(xty)
    k = len(varying)

    def X(a, b):
        return xtx[min(a, b), max(a, b)]

    s2 = sigma**2
    log_2pi = float(np.log(2 * np.pi))
    # G = D M^-1 D / s2 per slot, M = I + D Z'Z D / s2
    if k == 1:
        v0 = varying[0]
        a = 1.0 + tau[0] ** 2 * X(v0, v0) / s2
        logdet = pt.log(a)
        G = {(0, 0): tau[0] ** 2 / s2 / a}
    else:
        v0, v1 = varying
        a = 1.0 + tau[0] ** 2 * X(v0, v0) / s2
        b = tau[0] * tau[1] * X(v0, v1) / s2
        d = 1.0 + tau[1] ** 2 * X(v1, v1) / s2
        det = a * d - b**2
        logdet = pt.log(det)
        G = {
            (0, 0): d / det * tau[0] ** 2 / s2,
            (0, 1): -b / det * tau[0] * tau[1] / s2,
            (1, 1): a / det * tau[1] ** 2 / s2,
        }
        G[1, 0] = G[0, 1]
    base = -0.5 * pt.sum(n) * (log_2pi + pt.log(s2)) - 0.5 * pt.sum(logdet)
    if coefficients is not None:
        m = coefficients
        xtx_m = [sum(X(r, c) * m[c] for c in range(n_terms)) for r in range(n_terms)]
        rtr = yty - 2.0 * sum(xty[r] * m[r] for r in range(n_terms))
        rtr = rtr + sum(xtx_m[r] * m[r] for r in range(n_terms))
        ztr = [xty[v] - xtx_m[v] for v in varying]
        quad = sum(G[i, j] * ztr[i] * ztr[j] for i in range(k) for j in range(k))
        return base - pt.sum(rtr - quad) / (2.0 * s2)
    zty = [xty[v] for v in varying]
    g_zty = [sum(G[i, j] * zty[j] for j in range(k)) for i in range(k)]
    c = pt.sum(yty - sum(zty[i] * g_zty[i] for i in range(k))) / s2
    bvec = [
        pt.sum(xty[r] - sum(X(r, varying[i]) * g_zty[i] for i in range(k))) / s2
        for r in range(n_terms)
    ]
    A = {}
    for r in range(n_terms):
        for col in range(r, n_terms):
            correction = sum(
                X(r, varying[i]) * G[i, j] * X(varying[j], col) for i in range(k) for j in range(k)
            )
            A[r, col] = pt.sum(X(r, col) - correction) / s2
    A_matrix = pt.stack(
        [pt.stack([A[min(r, col), max(r, col)] for col in range(n_terms)]) for r in range(n_terms)]
    )
    return base + _integrated(A_matrix, pt.stack(bvec), c, prior_mean, prior_sd, n_terms)


def collapsed_log_likelihood(
    n: Any,
    yty: Any,
    xty: Any,
    xtx: Any,
    varying: np.ndarray,
    tau: Any,
    sigma: Any,
    coefficients: Any = None,
    prior_mean: Any = None,
    prior_sd: Any = None,
) -> Any:
    """The marginal log-likelihood of every group slot, summed (PyTensor).

    With ``coefficients`` (every term's population coefficient: ``mu`` for the varying
    terms, the shared coefficient for the others) the group effects are integrated out;
    without, the population coefficients are integrated out too, under their independent
    normal priors ``N(prior_mean, prior_sd)`` (the data enter through the sums over groups
    of ``X'X - X'Z G Z'X``, ``X'y - X'Z G Z'y``, ``y'y - y'Z G Z'y``, divided by
    ``sigma^2``, and one terms x terms Cholesky factor).

    Parameters
    ----------
    n, yty : tensors of shape (slots,)
    xty : tensor of shape (slots, terms)
    xtx : tensor of shape (slots, terms, terms)
    varying : ndarray of int
        Positions of the varying terms.
    tau : tensor of shape (len(varying),)
    sigma : scalar tensor
    """
    s2 = sigma**2
    k = len(varying)
    log_2pi = float(np.log(2 * np.pi))
    ztz = xtx[:, varying][:, :, varying]
    logdet, G = _inverse_pieces(ztz, tau, s2, k)
    base = -0.5 * pt.sum(n) * (log_2pi + pt.log(s2)) - 0.5 * pt.sum(logdet)
    xtz = xtx[:, :, varying]  # (slots, terms, k)
    zty = xty[:, varying]  # (slots, k)
    if coefficients is not None:
        m = coefficients
        xtx_m = pt.sum(xtx * m[None, None, :], axis=2)
        rtr = yty - 2.0 * pt.sum(xty * m[None, :], axis=1) + pt.sum(xtx_m * m[None, :], axis=1)
        ztr = zty - xtx_m[:, varying]
        quad = pt.sum(pt.sum(G * ztr[:, None, :], axis=2) * ztr, axis=1)
        return base - pt.sum(rtr - quad) / (2.0 * s2)
    # sum_g of the quadratic in the population coefficients: c - 2 b'm + m'A m
    g_zty = pt.sum(G * zty[:, None, :], axis=2)  # (slots, k): G Z'y
    g_ztx = pt.sum(G[:, :, :, None] * pt.swapaxes(xtz, 1, 2)[:, None, :, :], axis=2)  # G Z'X
    A = pt.sum(xtx - pt.sum(xtz[:, :, :, None] * g_ztx[:, None, :, :], axis=2), axis=0) / s2
    b = pt.sum(xty - pt.sum(xtz * g_zty[:, None, :], axis=2), axis=0) / s2
    c = pt.sum(yty - pt.sum(zty * g_zty, axis=1)) / s2
    return base + _integrated(A, b, c, prior_mean, prior_sd, int(xty.type.shape[1] or 0))


def _integrated(A: Any, b: Any, c: Any, prior_mean: Any, prior_sd: Any, n_terms: int) -> Any:
    """``log`` of the integral over the population coefficients ``m ~ N(prior_mean,
    diag(prior_sd^2))`` of ``exp(-(c - 2 b'm + m'A m) / 2)``."""
    precision = 1.0 / prior_sd**2
    Q = A + pt.diag(precision)
    v = b + precision * prior_mean
    log_det_post, quad_post = _log_det_and_quadratic(Q, v, n_terms)
    return (
        -0.5 * c
        - pt.sum(pt.log(prior_sd))
        - 0.5 * pt.sum(precision * prior_mean**2)
        + 0.5 * quad_post
        - 0.5 * log_det_post
    )


def _log_det_and_quadratic(Q: Any, v: Any, n_terms: int) -> tuple[Any, Any]:
    """``log|Q|`` and ``v' Q^-1 v`` for a small SPD ``Q`` (closed forms up to 2 x 2: a
    Cholesky factor and its gradient compile to much more code)."""
    if n_terms == 1:
        return pt.log(Q[0, 0]), v[0] ** 2 / Q[0, 0]
    if n_terms == 2:
        det = Q[0, 0] * Q[1, 1] - Q[0, 1] ** 2
        quad = (Q[1, 1] * v[0] ** 2 - 2.0 * Q[0, 1] * v[0] * v[1] + Q[0, 0] * v[1] ** 2) / det
        return pt.log(det), quad
    chol = pt.linalg.cholesky(Q)
    half = pt.linalg.solve_triangular(chol, v, lower=True)
    return 2.0 * pt.sum(pt.log(pt.diag(chol))), pt.sum(half**2)


def conditional_offsets(
    statistics: Any,
    coefficients: np.ndarray,
    varying: np.ndarray,
    tau: np.ndarray,
    sigma: np.ndarray,
    rng: np.random.Generator,
    max_elements: int = 4_000_000,
) -> np.ndarray:
    """Exact draws of the offsets ``u`` (the non-centred ``z``) given each posterior draw of
    the population coefficients, ``tau`` and ``sigma``.

    Parameters
    ----------
    statistics : SufficientStatistics
        Of the groups (``n``, ``xtx``, ``xty``, ``yty``), on the sampler's scale.
    coefficients : ndarray of shape (draws, terms)
    varying : ndarray of int
    tau : ndarray of shape (draws, len(varying))
    sigma : ndarray of shape (draws,)

    Returns
    -------
    ndarray of shape (draws, groups, len(varying))
    """
    n_draws, k = tau.shape
    n_groups = len(statistics.n)
    out = np.empty((n_draws, n_groups, k))
    ztz = statistics.xtx[:, varying][:, :, varying]  # (groups, k, k)
    step = max(1, max_elements // max(1, n_groups * k * k))
    for start in range(0, n_draws, step):
        rows = slice(start, min(n_draws, start + step))
        m, t, s = coefficients[rows], tau[rows], sigma[rows]
        xtx_m = np.einsum("gij,dj->dgi", statistics.xtx, m)  # (d, g, terms)
        ztr = (statistics.xty[None] - xtx_m)[:, :, varying]  # (d, g, k)
        w = ztr * t[:, None, :] / s[:, None, None]
        scale = t[:, :, None] * t[:, None, :] / (s**2)[:, None, None]  # (d, k, k)
        M = np.eye(k) + ztz[None] * scale[:, None]  # (d, g, k, k)
        L = np.linalg.cholesky(M)
        mean = np.linalg.solve(M, w[..., None])[..., 0] / s[:, None, None]
        eps = rng.standard_normal(mean.shape)
        # u = mean + L^-T eps has covariance M^-1
        noise = np.linalg.solve(np.swapaxes(L, -1, -2), eps[..., None])[..., 0]
        out[rows] = mean + noise
    return out


def conditional_population(
    statistics: Any,
    varying: np.ndarray,
    tau: np.ndarray,
    sigma: np.ndarray,
    prior_mean: np.ndarray,
    prior_sd: np.ndarray,
    rng: np.random.Generator,
    max_elements: int = 4_000_000,
) -> np.ndarray:
    """Exact draws of every term's population coefficient given each posterior draw of
    ``tau`` and ``sigma``, the group effects integrated out: ``N(Q^-1 v, Q^-1)`` with
    ``Q = A + diag(1 / prior_sd^2)``, ``v = b + prior_mean / prior_sd^2`` (``A``, ``b`` as in
    :func:`collapsed_log_likelihood`).

    Returns
    -------
    ndarray of shape (draws, terms)
    """
    n_draws, k = tau.shape
    n_groups, n_terms = statistics.xty.shape
    out = np.empty((n_draws, n_terms))
    ztz = statistics.xtx[:, varying][:, :, varying]
    xtz = statistics.xtx[:, :, varying]  # (g, terms, k)
    zty = statistics.xty[:, varying]
    precision = 1.0 / np.asarray(prior_sd, dtype=float) ** 2
    step = max(1, max_elements // max(1, n_groups * k * max(k, n_terms)))
    for start in range(0, n_draws, step):
        rows = slice(start, min(n_draws, start + step))
        t, s = tau[rows], sigma[rows]
        s2 = s**2
        outer = t[:, :, None] * t[:, None, :] / s2[:, None, None]  # (d, k, k)
        M = np.eye(k) + ztz[None] * outer[:, None]  # (d, g, k, k)
        G = np.linalg.inv(M) * outer[:, None]
        A = statistics.xtx.sum(axis=0)[None] - np.einsum("gai,dgij,gbj->dab", xtz, G, xtz)
        A /= s2[:, None, None]
        b = statistics.xty.sum(axis=0)[None] - np.einsum("gai,dgij,gj->da", xtz, G, zty)
        b /= s2[:, None]
        Q = A + np.diag(precision)[None]
        v = b + (precision * prior_mean)[None]
        L = np.linalg.cholesky(Q)
        mean = np.linalg.solve(Q, v[..., None])[..., 0]
        eps = rng.standard_normal(mean.shape)
        out[rows] = mean + np.linalg.solve(np.swapaxes(L, -1, -2), eps[..., None])[..., 0]
    return out
