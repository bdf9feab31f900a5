"""Fitting from a Dask DataFrame: the rows stay on the cluster, only statistics come back.

The normal model depends on the data only through each group's sufficient statistics
(:mod:`hierreg.model.sufficient`), which add up over row blocks. A fit from a Dask DataFrame:

1. finds, on the cluster, the levels of the group column and of every non-numeric column
   the formula reads (small results), and fits the formula's encoding on a small template
   frame holding every level (so every partition is encoded the same way, and a level is
   never silently dropped);
2. encodes each partition with that encoding and reduces the per-group statistics of the
   design augmented with a column of ones (``n``, ``X'X``, ``X'y``, ``y'y``, plus the column
   sums needed for centring), and the count of missing values per column, on the cluster;
3. on the driver, derives the default priors and the standardisation from those pooled
   moments, maps the statistics to standardised units exactly, and samples the same model as
   ``likelihood_mode="sufficient"`` on the equivalent pandas frame.

Driver memory is independent of the number of rows. ``dask[dataframe]`` is an optional
dependency: ``pip install "hierreg[dask]"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hierreg.design.build import Design, DesignSpec, build_design, normalize_formula
from hierreg.model.families import family
from hierreg.model.sufficient import SufficientStatistics

__all__ = [
    "DistributedStatistics",
    "is_dask_collection",
    "predict_dask",
    "require_dask",
    "statistics_from_dask",
]

# formulae transforms that learn from the data they are first applied to: fitted on a
# template frame they would be wrong, so they are refused for Dask input
STATEFUL_TRANSFORMS = ("center", "scale", "standardize", "bs", "cr", "cc")
TEMPLATE_ROWS = 50


def is_dask_collection(X: Any) -> bool:
    """True for a Dask DataFrame or Series (without importing Dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_partitions")


def require_dask() -> None:
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "fitting from a Dask DataFrame needs dask[dataframe]; install it with: "
            "pip install 'hierreg[dask]'"
        ) from err


@dataclass(frozen=True)
class DistributedStatistics:
    """What a Dask fit brings back to the driver.

    Attributes
    ----------
    design : Design
        The template design (its ``spec`` is the fitted encoding; its rows are the template's,
        used for nothing but the encoding).
    template : pandas.DataFrame
        The small frame the encoding was fitted on (every level of every non-numeric column
        the formula reads, and every group); saved as the model's ``constant_data``.
    statistics : SufficientStatistics
        Per group, of the design augmented with a last column of ones, in data units.
    n_rows : int
    """

    design: Design
    template: pd.DataFrame
    statistics: SufficientStatistics
    n_rows: int

    @property
    def moments(self) -> dict[str, np.ndarray | float]:
        """Pooled means and population sds of the design columns and the response."""
        s = self.statistics
        n = s.n.sum()
        xtx, xty = s.xtx.sum(axis=0), s.xty.sum(axis=0)
        k = xtx.shape[0] - 1  # the ones column
        x_mean = xtx[:k, k] / n
        x_var = np.maximum(np.diag(xtx)[:k] / n - x_mean**2, 0.0)
        y_mean = xty[k] / n
        y_var = max(s.yty.sum() / n - y_mean**2, 0.0)
        return {"x_mean": x_mean, "x_sd": np.sqrt(x_var), "y_mean": y_mean, "y_sd": y_var**0.5}


def statistics_from_dask(ddf: Any, formula: str, group: Any) -> DistributedStatistics:
    """Encode a Dask DataFrame partition by partition and reduce its statistics.

    Raises
    ------
    ValueError
        For a formula without a response, a stateful transform, a missing column, or missing
        values (naming the column and how many).
    """
    require_dask()
    import dask

    lhs, rhs = normalize_formula(formula)
    if lhs is None:
        raise ValueError(
            "fitting from a Dask DataFrame needs the response in the formula ('y ~ x'); "
            "y= cannot be a separate array"
        )
    stateful = [t for t in STATEFUL_TRANSFORMS if re.search(rf"\b{t}\s*\(", rhs)]
    if stateful:
        raise ValueError(
            f"formula transform(s) {stateful} learn from the data and cannot be fitted "
            "partition by partition; transform the columns before fitting"
        )
    columns = list(ddf.columns)
    used = [c for c in columns if re.search(rf"\b{re.escape(str(c))}\b", formula)]
    if group is not None:
        if group not in columns:
            raise ValueError(f"group column {group!r} is not a column of X")
        used = list(dict.fromkeys([*used, group]))
    missing = ddf[used].isna().sum().compute()
    if missing.any():
        column = missing[missing > 0].index[0]
        raise ValueError(
            f"column {column!r} has {int(missing[column])} missing value(s); drop or impute "
            "them before fitting"
        )
    template = _template(ddf, used, group)
    design = build_design(template, None, formula=formula, group=group)
    spec = design.spec
    n_groups = 1 if spec.groups is None else len(spec.groups)
    response = spec.response
    parts = [
        dask.delayed(_partition_statistics)(part, spec, response, n_groups)
        for part in ddf.to_delayed()
    ]
    statistics, n_rows = dask.delayed(_total, pure=True)(parts).compute()
    return DistributedStatistics(design, template, statistics, int(n_rows))


def predict_dask(fitted: Any, ddf: Any, new_groups: str, return_std: bool = False):
    """Predictions of ``fitted`` (a :class:`hierreg.results.fitted.FittedModel`) partition by
    partition: a Dask Series of means (and one of sds). The fitted model, not the estimator,
    travels to the workers."""

    def predict_partition(frame: pd.DataFrame) -> pd.DataFrame:
        if len(frame) == 0:
            return pd.DataFrame({"mean": [], "std": []}, index=frame.index, dtype=float)
        mean, var = fitted.predict(frame, new_groups)
        return pd.DataFrame({"mean": mean, "std": np.sqrt(var)}, index=frame.index)

    meta = pd.DataFrame({"mean": pd.Series(dtype=float), "std": pd.Series(dtype=float)})
    out = ddf.map_partitions(predict_partition, meta=meta)
    return (out["mean"], out["std"]) if return_std else out["mean"]


def _template(ddf: Any, used: list, group: Any) -> pd.DataFrame:
    """A few real rows plus one row per level of every non-numeric column and group."""
    head = ddf[used].head(TEMPLATE_ROWS, npartitions=-1)
    rows = [head]
    for column in used:
        dtype = head[column].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        if numeric and column != group:
            continue
        levels = ddf[column].drop_duplicates().compute()
        extra = head.iloc[np.zeros(len(levels), dtype=int)].copy()
        extra[column] = levels.to_numpy()
        rows.append(extra)
    return pd.concat(rows, ignore_index=True)


def _partition_statistics(
    part: pd.DataFrame, spec: DesignSpec, response: str, n_groups: int
) -> tuple[SufficientStatistics, int]:
    if len(part) == 0:
        empty = SufficientStatistics.from_arrays(
            np.zeros((0, len(spec.terms) + 1)), np.zeros(0), None, n_groups
        )
        return empty, 0
    design = spec.transform(part)
    y = part[response].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise ValueError(f"response {response!r} has non-finite values")
    g = design.group_index
    if g is not None and (g < 0).any():  # cannot happen: every level is in the template
        raise ValueError(f"group(s) {spec.unseen_groups(part)[:10]} missing from the encoding")
    X = np.column_stack([design.X, np.ones(len(part))])
    return SufficientStatistics.from_arrays(X, y, g, n_groups), len(part)


def _total(parts: list[tuple[SufficientStatistics, int]]) -> tuple[SufficientStatistics, int]:
    statistics, n_rows = parts[0]
    for more, rows in parts[1:]:
        statistics, n_rows = statistics + more, n_rows + rows
    return statistics, n_rows


def check_dask_fit(formula, y, store_loglik, likelihood, likelihood_mode, predictors) -> None:
    """What a fit from a Dask DataFrame (sufficient statistics only) cannot do."""
    require_dask()
    if formula is None:
        raise ValueError("fitting from a Dask DataFrame needs a formula naming the response")
    if y is not None:
        raise ValueError(
            "fitting from a Dask DataFrame takes the response from the formula; pass y=None"
        )
    if not family(likelihood).sufficient_statistics or likelihood_mode == "rows":
        raise ValueError(
            "a Dask DataFrame is fitted through sufficient statistics: it needs "
            "likelihood='normal' and likelihood_mode 'auto' or 'sufficient'"
        )
    if store_loglik is True:
        raise ValueError(
            "store_log_likelihood=True needs the rows on the driver; a Dask fit keeps them "
            "on the cluster (use 'auto' or False)"
        )
    if predictors:
        raise ValueError("group_predictors are not supported for Dask DataFrame input yet")
