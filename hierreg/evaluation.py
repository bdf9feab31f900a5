"""Model checking and comparison: LOO (ArviZ) and the posterior-predictive RMSD."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

__all__ = ["compare", "posterior_predictive_rmsd"]


def compare(
    models: Mapping[str, Any], method: str = "stacking", round_to: int | str = "none"
) -> pd.DataFrame:
    """Compare fitted estimators by PSIS-LOO expected log predictive density (ArviZ).

    Parameters
    ----------
    models : dict of str to HierarchicalLinearRegression
        Fitted on the same rows, with the log-likelihood stored (``store_log_likelihood``
        True, or "auto" for data of up to 10^8 draws x rows).
    method : str, default="stacking"
        Weighting method passed to :func:`arviz_stats.compare`.
    round_to : int, "auto" or "none", default="none"
        Rounding of the table (ArviZ's ``round_to``); "none" keeps full precision.

    Returns
    -------
    pandas.DataFrame
        ArviZ's comparison table, best model first: ``rank``, ``elpd``, ``p``, ``se``,
        ``elpd_diff``, ``dse``, ``p_worse``, ``weight``, and ``diag_elpd``/``diag_diff``,
        which carry ArviZ's Pareto-k warnings (e.g. "6 k̂ > 0.64") where LOO is unreliable.
    """
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("compare needs a dict of at least two fitted estimators")
    trees = {}
    n_rows = set()
    for name, est in models.items():
        check_is_fitted(est)
        if "log_likelihood" not in est.idata_:
            raise ValueError(
                f"model {name!r} has no stored log-likelihood; refit it with "
                "store_log_likelihood=True"
            )
        trees[name] = est.idata_
        n_rows.add(est.idata_["log_likelihood"].sizes["obs"])
    if len(n_rows) > 1:
        raise ValueError(f"models were fitted on different numbers of rows: {sorted(n_rows)}")
    return azs.compare(trees, method=method, round_to=round_to)


def posterior_predictive_rmsd(
    estimator: Any,
    X: Any,
    y: Any = None,
    n_draws: int | None = None,
    random_state: Any = None,
) -> np.ndarray:
    """Root-mean-square deviation between observed responses and the model, per draw.

    For each posterior draw ``s``: ``sqrt(mean_i (E[y_i | theta_s] - y_i)^2)``, the radon
    notebook's posterior-predictive check (lower is better). The response comes from ``y``
    or, when the formula names it, from ``X``.

    Returns
    -------
    ndarray of shape (n_draws,)
    """
    if y is None:
        response = estimator.design_.response
        if not isinstance(X, pd.DataFrame) or response not in X:
            raise ValueError(f"give y, or an X with the response column {response!r}")
        y = X[response]
    y = np.asarray(y, dtype=float)
    draws = estimator.predict_draws(
        X, include_noise=False, n_draws=n_draws, random_state=random_state
    )
    if draws.shape[1] != len(y):
        raise ValueError(f"X has {draws.shape[1]} rows but y has {len(y)}")
    return np.sqrt(np.mean((draws - y) ** 2, axis=1))
