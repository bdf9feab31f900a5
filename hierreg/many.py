"""One model per segment: many independent fits, locally or on a Dask cluster."""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any

import pandas as pd
from joblib import Parallel, delayed, parallel_backend
from sklearn.base import clone

__all__ = ["fit_many"]


def fit_many(
    estimator: Any,
    frame: pd.DataFrame,
    by: Hashable,
    *,
    client: Any = None,
    n_jobs: int = -1,
    progress: bool = True,
) -> dict[Hashable, Any]:
    """Fit a clone of ``estimator`` to the rows of each segment of ``frame``.

    Parameters
    ----------
    estimator : HierarchicalLinearRegression (or any scikit-learn regressor)
        Unfitted template; each segment gets its own clone.
    frame : pandas.DataFrame
        All rows; the response must be named by the estimator's formula.
    by : hashable
        Column whose values define the segments.
    client : dask.distributed.Client or None
        Run the fits on this Dask cluster (joblib's ``"dask"`` backend); None runs them in
        local worker processes (joblib's default backend). Estimators pickle without compiled
        code, so they travel to and from workers; each worker compiles a model structure once
        and reuses it for its later segments (see :mod:`hierreg.sampling.compiled`).
    n_jobs : int, default=-1
        Parallel fits (-1: one per core, or per Dask worker thread).
    progress : bool, default=True
        Print "fit_many: k/n segments" to stderr as fits finish.

    Returns
    -------
    dict
        Segment value -> fitted estimator, in the order of the sorted segment values.
    """
    if by not in frame.columns:
        raise ValueError(f"by={by!r} is not a column of the frame")
    if frame[by].isna().any():
        raise ValueError(f"column {by!r} has missing values: every row needs a segment")
    segments = [(key, part) for key, part in frame.groupby(by, sort=True, observed=True)]
    total = len(segments)

    def run() -> dict:
        jobs = (delayed(_fit_one)(key, clone(estimator), part) for key, part in segments)
        fitted = {}
        for key, est in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            fitted[key] = est
            if progress:
                print(f"fit_many: {len(fitted)}/{total} segments", file=sys.stderr, flush=True)
        return {key: fitted[key] for key, _ in segments}

    if client is None:
        return run()
    with parallel_backend("dask", client=client):
        return run()


def _fit_one(key: Hashable, estimator: Any, part: pd.DataFrame) -> tuple[Hashable, Any]:
    return key, estimator.fit(part)
