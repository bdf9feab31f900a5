"""Data -> design: formula and grouping column to numeric arrays, with a reusable encoding.

The fitted :class:`DesignSpec` holds everything needed to encode new data the same way
(formulae's ``evaluate_new_data`` for the predictors, our own label -> index map for the
groups), so encodings are never re-fitted at predict time.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hierreg.design._formulae import (
    common_from_pickle,
    common_to_pickle,
    design_matrix,
    evaluate_new_data,
    formula_columns,
    formula_common,
    formula_names,
    formula_response,
    formula_terms,
    safe_formula_environment,
)
from hierreg.design.frames import (
    array_features,
    as_2d_frame,
    check_finite_columns,
    check_rows,
    feature_name,
    numeric_response,
    response_from_y,
)
from hierreg.design.labels import (
    factor_columns,
    group_labels,
    level_index,
    sorted_levels,
)

__all__ = [
    "Design",
    "DesignSpec",
    "GroupingFactor",
    "build_design",
    "check_constant_within_groups",
    "formula_spec_from_columns",
    "normalize_formula",
    "term_columns",
]

INTERCEPT = "Intercept"


@dataclass(frozen=True, eq=False)
class GroupingFactor:
    """A grouping factor after the first (crossed or nested groups).

    Attributes
    ----------
    name : str or hashable
        Column name, or ``"a:b"`` for the interaction of columns ``a`` and ``b``.
    levels : pandas.Index
        Sorted labels seen at fit (``"a_value:b_value"`` strings for an interaction).
    """

    name: Hashable
    levels: pd.Index


@dataclass(frozen=True)
class Design:
    """Numeric arrays for one dataset, ready for the model.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_terms)
        Design matrix (float64, finite).
    y : ndarray of shape (n_rows,) or None
        Response (float64, finite); None when encoding data for prediction.
    group_index : ndarray of shape (n_rows,) or None
        Index of each row's group into ``spec.groups``; a group unseen at fit is numbered
        ``-1 - k`` for the k-th distinct unseen label (``spec.unseen_groups`` lists them).
    spec : DesignSpec
        The fitted encoding that produced these arrays.
    factor_index : tuple of ndarray of shape (n_rows,)
        For each of ``spec.factors``, the index of each row's level (unseen: ``-1 - k``).
    """

    X: np.ndarray
    y: np.ndarray | None
    group_index: np.ndarray | None
    spec: DesignSpec
    factor_index: tuple[np.ndarray, ...] = ()


@dataclass
class DesignSpec:
    """The fitted encoding of predictors, response and groups.

    Attributes
    ----------
    formula : str or None
        Normalised right-hand side passed to formulae, or None for numeric-array input.
    response : str
        Name of the response (formula left-hand side, ``y.name``, or ``"y"``).
    terms : list of str
        Design-matrix column names, e.g. ``["Intercept", "floor"]``.
    group : hashable or None
        Grouping column (name, or integer position for arrays), None without groups.
    groups : pandas.Index or None
        Sorted group labels seen at fit.
    feature_columns : list
        For array input, the columns of X used as features (positions or names).
    n_columns : int
        Number of columns of the X seen at fit.
    factors : tuple of GroupingFactor
        Grouping factors after the first (``group`` is the first), crossed or nested.
    """

    formula: str | None
    response: str
    terms: list[str]
    group: Hashable | None
    groups: pd.Index | None
    feature_columns: list = field(default_factory=list)
    n_columns: int = 0
    _common: Any = field(default=None, repr=False)
    factors: tuple[GroupingFactor, ...] = ()

    def __getstate__(self) -> dict:
        """Pickle without formulae's evaluation environment (it holds module objects).

        The captured environment holds the calling frame (module objects and the training
        frame itself); it is rebuilt on unpickling from formulae's transforms and this
        module's globals, which is what formula calls such as ``np.log(x)`` resolve against.
        """
        state = dict(self.__dict__)
        state["_common_pickle"] = common_to_pickle(state.pop("_common"))
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state["_common"] = common_from_pickle(state.pop("_common_pickle"))
        self.__dict__.update(state)

    @property
    def group_name(self) -> str:
        """Name used for the group dimension in the model's coordinates."""
        if self.group is None or not isinstance(self.group, str):
            return "group"
        return self.group

    def transform(self, X: Any) -> Design:
        """Encode new data with the fitted encoding (no response).

        Unseen group labels get index ``-1 - k`` (k-th distinct unseen label, in order of
        appearance); the caller decides what they mean.
        """
        frame = as_2d_frame(X)
        check_rows(frame, minimum=1)
        if self.formula is None:
            matrix = array_features(frame, self.feature_columns, self.terms)
        else:
            matrix = self._formula_new_data(frame)
        group_index = None
        if self.groups is not None:
            group_index = level_index(frame, self.group, self.groups)
        factor_index = tuple(level_index(frame, f.name, f.levels) for f in self.factors)
        return Design(
            X=matrix, y=None, group_index=group_index, spec=self, factor_index=factor_index
        )

    def unseen_groups(self, X: Any, factor: int | None = None) -> list:
        """Group labels in ``X`` that were not seen at fit, in order of appearance.

        ``factor``: position in ``factors`` (None: the first grouping factor, ``group``).
        """
        if factor is None:
            name, levels = self.group, self.groups
        else:
            name, levels = self.factors[factor].name, self.factors[factor].levels
        if levels is None:
            return []
        labels = group_labels(as_2d_frame(X), name, context="predict")
        mask = levels.get_indexer(labels.to_numpy()) < 0
        return list(pd.unique(labels[mask]))

    @property
    def formula_columns(self) -> list[str]:
        """Columns of the data the formula reads (empty for numeric-array input)."""
        return [] if self._common is None else formula_columns(self._common)

    def _formula_new_data(self, frame: pd.DataFrame) -> np.ndarray:
        needed = self.formula_columns
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} used by the formula {self.formula!r} are missing from X"
            )
        check_finite_columns(frame, needed, "predictor")
        try:
            matrix = evaluate_new_data(self._common, frame)
        except ValueError as err:
            raise ValueError(f"cannot encode X with the fitted formula: {err}") from None
        return matrix.reshape(len(frame), len(self.terms))


def formula_spec_from_columns(
    frame: pd.DataFrame,
    *,
    formula: str,
    response: str,
    group: Hashable | None,
    groups: pd.Index | None,
    n_columns: int,
) -> DesignSpec:
    """Re-create a fitted formula encoding from the training values of the columns it reads.

    Evaluated in :func:`safe_formula_environment`: a formula calling anything else raises
    ``ValueError``.
    """
    common = formula_common(frame, formula, formula, env=safe_formula_environment())
    return DesignSpec(
        formula=formula,
        response=response,
        terms=formula_terms(common),
        group=group,
        groups=groups,
        n_columns=n_columns,
        _common=common,
    )


def check_constant_within_groups(X: Any, columns: Sequence[str], group: Hashable) -> None:
    """Raise ``ValueError`` naming a column and a group where it is not constant.

    For group-level predictors (one value per group); missing columns and values are left to
    the design's own checks, which name them.
    """
    frame = as_2d_frame(X)
    try:
        labels = group_labels(frame, group, context="fit")
    except ValueError:
        return  # the design's own checks name the problem
    labels.index = frame.index
    for column in columns:
        if column not in frame.columns:
            continue
        counts = frame.groupby(labels, observed=True, dropna=True)[column].nunique(dropna=False)
        varies = counts[counts > 1]
        if len(varies):
            label = varies.index[0]
            values = pd.unique(frame.loc[labels == label, column])[:3]
            raise ValueError(
                f"group predictor {column!r} varies within group {label!r} of column "
                f"{group!r} (values {list(values)}); a group predictor must be constant "
                "within each group"
            )


def term_columns(name: str, terms: Sequence[str]) -> list[str]:
    """The design columns a term name stands for: itself, or every column of a formula term
    such as ``"C(x)"`` (``"C(x)[b]"``, ``"C(x)[c]"``); empty if none."""
    return [t for t in terms if t == name or t.startswith(f"{name}[")]


def normalize_formula(formula: str) -> tuple[str | None, str]:
    """Split a formula into (left-hand side or None, right-hand side).

    ``"~ floor"`` and ``"floor"`` both mean "no response in the formula".

    Raises
    ------
    TypeError
        If ``formula`` is not a string.
    ValueError
        If it is empty, has more than one ``~``, or uses group-specific ``(...|...)`` terms.
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string or None, got {type(formula).__name__}")
    text = formula.strip()
    if text.count("~") > 1:
        raise ValueError(f"formula {formula!r} has more than one '~'")
    lhs, rhs = text.split("~") if "~" in text else ("", text)
    lhs, rhs = lhs.strip() or None, rhs.strip()
    if not rhs:
        raise ValueError(f"formula {formula!r} has an empty right-hand side; write e.g. 'y ~ 1'")
    if "|" in rhs:
        raise ValueError(
            f"formula {formula!r} has a group-specific term '(...|...)'; pass the grouping "
            "column as group= and list varying terms in varying= instead"
        )
    return lhs, rhs


def build_design(
    X: Any,
    y: Any,
    *,
    formula: str | None,
    group: Hashable | None,
    factors: Sequence[Hashable] = (),
) -> Design:
    """Encode training data: validate it and build X, y and group indices.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_rows, n_columns)
        Predictors and the grouping column (and the response when the formula names it).
    y : array-like of shape (n_rows,) or None
        Response; may be None when the formula's left-hand side names a column of X.
    formula : str or None
        ``"y ~ x1 + x2"``, ``"~ x1 + x2"`` or ``"x1 + x2"``; None for numeric arrays, where
        every column but the group column is a feature and an intercept is added.
    group : hashable or None
        Grouping column name (or integer position for arrays); None for no groups.
        ``"a:b"``, when not a column, is the interaction of columns ``a`` and ``b``.
    factors : sequence of hashable
        Further grouping factors (crossed or nested), named like ``group``.

    Raises
    ------
    ValueError, TypeError
        Naming the column or parameter and the problem; nothing is dropped silently.
    """
    frame = as_2d_frame(X)
    check_rows(frame, minimum=2)
    grouping_columns = [
        c for name in [group, *factors] if name is not None
        for c in factor_columns(name, frame.columns)
    ]  # fmt: skip
    if formula is None:
        if frame.shape[1] == 0:
            raise ValueError(
                f"X has 0 feature(s) (shape={frame.shape}) while a minimum of 1 is required."
            )
        response_name, y_values = response_from_y(y, len(frame), name=None)
        feature_columns = [c for c in frame.columns if c not in grouping_columns]
        lhs = None
        terms = [INTERCEPT] + [feature_name(c) for c in feature_columns]
        matrix = array_features(frame, feature_columns, terms)
        common = None
        rhs = None
    else:
        lhs, rhs = normalize_formula(formula)
        response_name, y_values = _formula_response(frame, y, lhs)
        common = formula_common(frame, rhs, formula)
        matrix, terms = design_matrix(common)
        feature_columns = []
    if matrix.shape[1] == 0:
        raise ValueError(f"formula {formula!r} produces no terms; add '1' for an intercept")
    if common is not None:
        _check_column_roles(
            frame, y, formula, lhs, formula_columns(common), grouping_columns, response_name
        )
    _check_unique_terms([str(t) for t in terms], formula)
    groups = group_index = None
    if group is not None:
        labels = group_labels(frame, group, context="fit")
        groups = sorted_levels(labels)
        group_index = groups.get_indexer(labels.to_numpy()).astype(np.int64)
    grouping_factors, factor_index = [], []
    for name in factors:
        labels = group_labels(frame, name, context="fit")
        levels = sorted_levels(labels)
        grouping_factors.append(GroupingFactor(name=name, levels=levels))
        factor_index.append(levels.get_indexer(labels.to_numpy()).astype(np.int64))
    spec = DesignSpec(
        formula=rhs,
        response=response_name,
        terms=[str(t) for t in terms],
        group=group,
        groups=groups,
        feature_columns=feature_columns,
        n_columns=frame.shape[1],
        _common=common,
        factors=tuple(grouping_factors),
    )
    return Design(
        X=matrix, y=y_values, group_index=group_index, spec=spec, factor_index=tuple(factor_index)
    )


def _check_column_roles(
    frame: pd.DataFrame,
    y: Any,
    formula: str,
    lhs: str | None,
    predictors: Sequence[str],
    grouping_columns: Sequence[Hashable],
    response_name: str,
) -> None:
    """A column plays one role: the response, a predictor or a grouping column; and no
    column may be named like the intercept, which formulae would silently merge into it."""
    if INTERCEPT in predictors:
        raise ValueError(
            f"column {INTERCEPT!r} used by the formula {formula!r} has the name of the "
            "intercept term (formulae would merge it into the intercept); rename the column"
        )
    response_columns = set(formula_names(lhs)) if lhs is not None else set()
    if lhs is None and isinstance(y, pd.Series) and y.name in predictors:
        same = np.array_equal(
            np.asarray(y, dtype=float), frame[y.name].to_numpy(dtype=float), equal_nan=True
        )
        if same:
            response_columns.add(y.name)
    both = sorted(response_columns.intersection(predictors))
    if both:
        raise ValueError(
            f"column {both[0]!r} is the response ({response_name!r}) and also a predictor in "
            f"the formula {formula!r}; a response cannot predict itself: remove it from the "
            "right-hand side"
        )
    both = [c for c in grouping_columns if c in predictors]
    if both:
        raise ValueError(
            f"column {both[0]!r} is a grouping column and also a predictor in the formula "
            f"{formula!r}; its group effects already hold what a predictor of it would "
            "(the two are confounded): remove it from the formula, or use "
            "pooling='complete' to fit it as an ordinary predictor"
        )
    both = [c for c in grouping_columns if c in response_columns]
    if both:
        raise ValueError(f"column {both[0]!r} is the response and also a grouping column")


def _check_unique_terms(terms: list[str], formula: str | None) -> None:
    seen: set[str] = set()
    for term in terms:
        if term in seen:
            where = "the columns of X" if formula is None else f"the formula {formula!r}"
            raise ValueError(
                f"{where} give two terms named {term!r} (a column named like the intercept "
                "or like another column's term); rename the column"
            )
        seen.add(term)


# --- helpers -----------------------------------------------------------------------------


def _formula_response(frame: pd.DataFrame, y: Any, lhs: str | None) -> tuple[str, np.ndarray]:
    if lhs is None:
        return response_from_y(y, len(frame), name=None)
    if lhs in frame.columns:
        from_frame = numeric_response(frame[lhs].to_numpy(), lhs, len(frame))
    elif y is None:
        try:
            response = formula_response(lhs, frame)
        except KeyError as err:
            raise ValueError(
                f"response column {err.args[0]!r} named by the formula is not a column of X "
                "and y is None"
            ) from None
        return lhs, numeric_response(np.asarray(response).ravel(), lhs, len(frame))
    else:
        return response_from_y(y, len(frame), name=lhs)
    if y is not None:
        _, given = response_from_y(y, len(frame), name=lhs)
        if not np.allclose(given, from_frame, rtol=1e-12, atol=0.0):
            raise ValueError(
                f"the response is given twice with different values: column {lhs!r} of X "
                "(from the formula) and y; pass only one"
            )
    return lhs, from_frame
