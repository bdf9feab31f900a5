"""Per-group sufficient statistics of the normal linear model.

For rows ``i`` of group ``g`` with design rows ``x_i`` and responses ``y_i``, the normal
log-likelihood of coefficients ``b_g`` and residual sd ``sigma_g`` is

    sum_i log N(y_i | x_i @ b_g, sigma_g)
      = -n_g log(sigma_g) - n_g / 2 log(2 pi)
        - (y_g'y_g - 2 b_g' X_g'y_g + b_g' X_g'X_g b_g) / (2 sigma_g^2),

so it depends on the data only through ``n_g``, ``X_g'X_g``, ``X_g'y_g`` and ``y_g'y_g``.
The model built from these (``likelihood_mode="sufficient"``) is exactly the row-wise model,
with a gradient whose cost is independent of the number of rows. Statistics of disjoint
row blocks add up (``a + b``), so they can be reduced over partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SufficientStatistics", "choose_likelihood_mode", "LIKELIHOOD_MODES"]

LIKELIHOOD_MODES = ("auto", "rows", "sufficient")


@dataclass(frozen=True)
class SufficientStatistics:
    """``n_g``, ``X_g'X_g``, ``X_g'y_g`` and ``y_g'y_g`` for every group ``g``.

    Attributes
    ----------
    n : ndarray of shape (n_groups,)
        Rows per group (float, so that it enters the graph without a cast).
    xtx : ndarray of shape (n_groups, n_terms, n_terms)
    xty : ndarray of shape (n_groups, n_terms)
    yty : ndarray of shape (n_groups,)
    """

    n: np.ndarray
    xtx: np.ndarray
    xty: np.ndarray
    yty: np.ndarray

    @classmethod
    def from_arrays(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        group_index: np.ndarray | None,
        n_groups: int = 1,
    ) -> SufficientStatistics:
        """Statistics of rows ``X``, ``y`` in groups ``group_index`` (None: one group).

        One weighted ``bincount`` per pair of columns: O(rows x terms^2) vectorised, no
        loop over groups and no (rows, terms, terms) temporary.
        """
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if group_index is None:
            g = np.zeros(X.shape[0], dtype=np.intp)
        else:
            g = np.asarray(group_index, dtype=np.intp)
            if g.size and (g.min() < 0 or g.max() >= n_groups):
                raise ValueError(f"group_index must lie in [0, {n_groups}) for statistics")
        n_terms = X.shape[1]

        def total(weights: np.ndarray) -> np.ndarray:
            return np.bincount(g, weights=weights, minlength=n_groups)

        xtx = np.empty((n_groups, n_terms, n_terms))
        for k in range(n_terms):
            for j in range(k, n_terms):
                xtx[:, k, j] = xtx[:, j, k] = total(X[:, k] * X[:, j])
        xty = np.stack([total(X[:, k] * y) for k in range(n_terms)], axis=1)
        if n_terms == 0:
            xty = np.zeros((n_groups, 0))
        return cls(
            n=np.bincount(g, minlength=n_groups).astype(float),
            xtx=xtx,
            xty=xty,
            yty=total(y * y),
        )

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        """Statistics of the union of two disjoint sets of rows (same groups and terms)."""
        if self.xtx.shape != other.xtx.shape:
            raise ValueError(
                f"cannot add statistics of shapes {self.xtx.shape} and {other.xtx.shape}"
            )
        return SufficientStatistics(
            n=self.n + other.n,
            xtx=self.xtx + other.xtx,
            xty=self.xty + other.xty,
            yty=self.yty + other.yty,
        )

    @property
    def n_groups(self) -> int:
        return self.n.shape[0]


def choose_likelihood_mode(mode: str, n_rows: int, n_groups: int, n_terms: int) -> str:
    """``"rows"`` or ``"sufficient"``: for ``"auto"``, the form with the cheaper gradient.

    The row-wise gradient costs about ``n_rows x n_terms`` multiply-adds, the sufficient one
    about ``n_groups x n_terms^2``; ``"auto"`` takes the sufficient form once it is at least
    4 times cheaper (below that the difference is lost in the sampler's overhead).
    """
    if mode != "auto":
        return mode
    rows_cost = n_rows * max(n_terms, 1)
    sufficient_cost = max(n_groups, 1) * max(n_terms, 1) ** 2
    return "sufficient" if rows_cost >= 4 * sufficient_cost else "rows"
