"""Input -> a pandas frame, and the checks on its values: shape, missing and infinite values,
numeric features and response. Rows are never dropped silently."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning

__all__ = ["array_features", "as_2d_frame", "check_finite_columns", "check_rows", "response_from_y"]


def as_2d_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame (arrays get integer column labels); rejects non-2-D input."""
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        raise ValueError("X must be 2-D (a DataFrame or a 2-D array), got a Series")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("sparse input is not supported; convert X to a dense array")
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data either using "
            "X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) if it has a "
            "single sample"
        )
    if np.iscomplexobj(arr):
        raise ValueError("Complex data not supported")
    return pd.DataFrame(arr)


def check_rows(frame: pd.DataFrame, minimum: int) -> None:
    n = len(frame)
    if n == 0:
        raise ValueError("X is empty: 0 rows (0 sample(s)); at least 1 is required")
    if n < minimum:
        raise ValueError(
            f"fitting needs at least {minimum} rows; got {n} (n_samples = 1, 1 sample)"
        )


def feature_name(column: Hashable) -> str:
    return f"x{column}" if isinstance(column, int | np.integer) else str(column)


def array_features(frame: pd.DataFrame, columns: Sequence, terms: list[str]) -> np.ndarray:
    matrix = np.ones((len(frame), len(columns) + 1))
    for j, col in enumerate(columns, start=1):
        if col not in frame.columns:
            raise ValueError(f"feature column {col!r} is missing from X")
        values = frame[col]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype | pd.CategoricalDtype):
            try:
                numeric = values.astype(float)
            except (TypeError, ValueError):
                raise TypeError(
                    f"feature column {terms[j]!r} is not numeric (dtype {values.dtype}); "
                    "argument must be a string or a real number; use a formula to encode it"
                ) from None
        else:
            if not (
                pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values)
            ):
                raise TypeError(f"feature column {terms[j]!r} is not numeric ({values.dtype})")
            if pd.api.types.is_complex_dtype(values.dtype):
                raise ValueError("Complex data not supported")
            numeric = values.astype(float)
        matrix[:, j] = numeric.to_numpy()
    bad = ~np.isfinite(matrix)
    if bad.any():
        j = int(np.argwhere(bad.any(axis=0))[0, 0])
        kind = "NaN" if np.isnan(matrix[:, j]).any() else "infinity"
        raise ValueError(
            f"Input X contains {kind} in column {terms[j]!r} "
            f"({int(bad[:, j].sum())} row(s)); remove or impute them"
        )
    return matrix


def response_from_y(y: Any, n_rows: int, name: str | None) -> tuple[str, np.ndarray]:
    if y is None:
        raise ValueError(
            "requires y to be passed, but the target y is None (give y, or name the "
            "response on the formula's left-hand side)"
        )
    if name is None:
        name = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "y"
    values = y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else np.asarray(y)
    if values.ndim == 2 and values.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is flattened",
            DataConversionWarning,
            stacklevel=4,
        )
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"response {name!r} must be 1-D, got shape {values.shape}")
    return name, numeric_response(values, name, n_rows)


def numeric_response(values: np.ndarray, name: str, n_rows: int) -> np.ndarray:
    if len(values) != n_rows:
        raise ValueError(
            f"X has {n_rows} rows but the response {name!r} has {len(values)}; "
            "inconsistent numbers of samples"
        )
    if values.dtype == bool or not (
        np.issubdtype(values.dtype, np.number) or values.dtype == object
    ):
        raise ValueError(f"response {name!r} must be numeric, got dtype {values.dtype}")
    if np.iscomplexobj(values):
        raise ValueError("Complex data not supported")
    try:
        numeric = values.astype(float)
    except (TypeError, ValueError):
        raise ValueError(
            f"response {name!r} must be numeric, got non-numeric values (dtype {values.dtype})"
        ) from None
    bad = ~np.isfinite(numeric)
    if bad.any():
        kind = "NaN" if np.isnan(numeric).any() else "infinity"
        raise ValueError(
            f"Input y contains {kind}: response {name!r} has {int(bad.sum())} non-finite "
            "value(s); remove those rows"
        )
    return numeric


def check_finite_columns(frame: pd.DataFrame, columns: Sequence[str], role: str) -> None:
    for col in columns:
        values = frame[col]
        if values.isna().any():
            raise ValueError(
                f"{role} column {col!r} contains NaN/None in {int(values.isna().sum())} "
                "row(s); remove or impute them (rows are never dropped silently)"
            )
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype
        ):
            if not np.isfinite(values.to_numpy(dtype=float)).all():
                raise ValueError(f"{role} column {col!r} contains infinity")
