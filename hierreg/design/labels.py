"""Group labels -> indices: the columns a grouping factor reads, its sorted levels, and the
index of each row's label (unseen labels numbered ``-1 - k``), with the checks that keep a
label from silently becoming a new group."""

from __future__ import annotations

import numbers
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FACTOR_SEPARATOR", "factor_columns", "group_labels", "level_index", "sorted_levels"]


# A grouping factor named "a:b" that is not a column of X is the interaction of columns a and b
# (nested groups: "state:county" keeps a county name repeated in two states apart).
FACTOR_SEPARATOR = ":"


def level_index(frame: pd.DataFrame, name: Hashable, levels: pd.Index) -> np.ndarray:
    """Index of each row's label in ``levels``; the k-th distinct unseen label gets -1 - k."""
    labels = group_labels(frame, name, context="predict")
    index = levels.get_indexer(labels.to_numpy())
    unseen = index < 0
    if unseen.any():
        codes, uniques = pd.factorize(labels[unseen])
        _check_label_kinds(uniques, levels, name)
        index[unseen] = -1 - codes
    return index


def _label_kind(label: Any) -> str:
    if isinstance(label, bool | np.bool_):
        return "bool"
    if isinstance(label, numbers.Number):
        return "numeric"
    if isinstance(label, str):
        return "text"
    return type(label).__name__


def _check_label_kinds(unseen: Any, levels: pd.Index, name: Hashable) -> None:
    """Refuse unseen labels of another kind than every label seen at fit (ints at fit,
    strings at predict): they would all be taken for new groups."""
    fitted = {_label_kind(v) for v in levels}
    for label in unseen:
        kind = _label_kind(label)
        if kind not in fitted:
            example, label = (
                v.item() if isinstance(v, np.generic) else v for v in (levels[0], label)
            )
            raise ValueError(
                f"group column {name!r} holds {kind} labels at predict (e.g. {label!r}) but "
                f"{'/'.join(sorted(fitted))} labels at fit (e.g. {example!r}); every row "
                "would be taken for a new group: convert the column to the type it had at fit"
            )


def factor_columns(name: Hashable, columns: pd.Index) -> list[Hashable]:
    """The columns a grouping factor reads: itself, or the parts of ``"a:b"``."""
    if name in columns:
        return [name]
    if isinstance(name, str) and FACTOR_SEPARATOR in name:
        parts = [p.strip() for p in name.split(FACTOR_SEPARATOR)]
        missing = [p for p in parts if p not in columns]
        if not missing:
            return parts
        raise ValueError(
            f"group {name!r} (the interaction of columns {parts}) needs column(s) {missing}, "
            "which are not columns of X"
        )
    raise ValueError(f"group column {name!r} is not a column of X")


def group_labels(frame: pd.DataFrame, group: Hashable, context: str) -> pd.Series:
    columns = factor_columns(group, frame.columns)
    parts = []
    for column in columns:
        labels = frame[column]
        if labels.isna().any():
            raise ValueError(
                f"group column {column!r} has {int(labels.isna().sum())} missing (NaN/None) "
                f"value(s) at {context}; every row needs a group"
            )
        if isinstance(labels.dtype, pd.CategoricalDtype):
            labels = labels.astype(labels.cat.categories.dtype)
        parts.append(labels.reset_index(drop=True))
    if len(parts) == 1:
        return parts[0]
    joined = parts[0].astype(str)
    for part in parts[1:]:
        joined = joined + FACTOR_SEPARATOR + part.astype(str)
    distinct = len(pd.concat(parts, axis=1).drop_duplicates())
    if joined.nunique() != distinct:  # e.g. ("a:b", "c") and ("a", "b:c")
        raise ValueError(
            f"group {group!r}: joining columns {columns} with {FACTOR_SEPARATOR!r} merges "
            f"different combinations (labels contain {FACTOR_SEPARATOR!r}); make one column "
            "of unique labels first"
        )
    return joined.rename(group)


def sorted_levels(labels: pd.Series) -> pd.Index:
    unique = pd.unique(labels.to_numpy())
    try:
        return pd.Index(sorted(unique))
    except TypeError:  # mixed, unorderable labels: keep order of appearance
        return pd.Index(unique)
