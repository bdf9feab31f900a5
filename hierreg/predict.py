"""Posterior draws + new design -> predictions, in numpy (no PyMC graph is compiled).

The expected response is linear in the coefficients, so its posterior mean for a row is
exactly ``x_row @ E[beta_group]``: predictions need only posterior-mean coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CoefficientMeans", "predict_mean"]


@dataclass(frozen=True)
class CoefficientMeans:
    """Posterior-mean coefficients.

    Attributes
    ----------
    by_group : ndarray of shape (n_groups, n_terms) or None
        Per-group coefficients; None under complete pooling.
    shared : ndarray of shape (n_terms,) or None
        Coefficients for a row whose group is unknown: the pooled coefficients (complete),
        the population mean for varying terms plus the shared terms (partial); None for
        pooling ``"none"``, where an unseen group has no sensible coefficients.
    """

    by_group: np.ndarray | None
    shared: np.ndarray | None


def predict_mean(
    X: np.ndarray, group_index: np.ndarray | None, coef: CoefficientMeans
) -> np.ndarray:
    """Posterior mean of the expected response for each row.

    Rows with ``group_index == -1`` (a group unseen at fit) use ``coef.shared``; the caller
    has already checked that this is allowed.
    """
    if coef.by_group is None:
        return X @ coef.shared
    seen = group_index >= 0
    out = np.empty(X.shape[0])
    out[seen] = np.einsum("ij,ij->i", X[seen], coef.by_group[group_index[seen]])
    if not seen.all():
        out[~seen] = X[~seen] @ coef.shared
    return out
