"""Data -> design: formula and grouping column to numeric arrays, with a reusable encoding.

The fitted :class:`DesignSpec` holds everything needed to encode new data the same way
(formulae's ``evaluate_new_data`` for the predictors, our own label -> index map for the
groups), so encodings are never re-fitted at predict time.
"""

from __future__ import annotations

import contextlib
import io
import logging
import numbers
import pickle
import warnings
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from formulae import design_matrices
from formulae.environment import Environment
from formulae.scanner import Scanner
from formulae.terms.call import ENCODINGS, TRANSFORMS
from sklearn.exceptions import DataConversionWarning

__all__ = [
    "Design",
    "DesignSpec",
    "GroupingFactor",
    "as_2d_frame",
    "build_design",
    "check_constant_within_groups",
    "factor_columns",
    "formula_spec_from_columns",
    "normalize_formula",
    "safe_formula_environment",
    "term_columns",
]

INTERCEPT = "Intercept"
# A grouping factor named "a:b" that is not a column of X is the interaction of columns a and b
# (nested groups: "state:county" keeps a county name repeated in two states apart).
FACTOR_SEPARATOR = ":"


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
        common = _without_training_values(state.pop("_common"))
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer)
        pickler.persistent_id = lambda obj: "env" if isinstance(obj, Environment) else None
        pickler.dump(common)
        state["_common_pickle"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        unpickler = pickle.Unpickler(io.BytesIO(state.pop("_common_pickle")))
        unpickler.persistent_load = lambda token: _formula_environment()
        state["_common"] = unpickler.load()
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
        _check_rows(frame, minimum=1)
        if self.formula is None:
            matrix = _array_features(frame, self.feature_columns, self.terms)
        else:
            matrix = self._formula_new_data(frame)
        group_index = None
        if self.groups is not None:
            group_index = _level_index(frame, self.group, self.groups)
        factor_index = tuple(_level_index(frame, f.name, f.levels) for f in self.factors)
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
        labels = _group_labels(as_2d_frame(X), name, context="predict")
        mask = levels.get_indexer(labels.to_numpy()) < 0
        return list(pd.unique(labels[mask]))

    @property
    def formula_columns(self) -> list[str]:
        """Columns of the data the formula reads (empty for numeric-array input)."""
        return [] if self._common is None else _formula_columns(self._common)

    def _formula_new_data(self, frame: pd.DataFrame) -> np.ndarray:
        needed = self.formula_columns
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} used by the formula {self.formula!r} are missing from X"
            )
        _check_finite_columns(frame, needed, "predictor")
        try:
            matrix = np.asarray(self._common.evaluate_new_data(frame)).astype(float)
        except ValueError as err:
            raise ValueError(f"cannot encode X with the fitted formula: {err}") from None
        return matrix.reshape(len(frame), len(self.terms))


# Attributes where formulae keeps the training values; new data never reads them.
_TRAINING_VALUE_ATTRIBUTES = ("data", "design_matrix", "value", "_intermediate_data")


def _without_training_values(common: Any) -> Any:
    """A copy of a formulae matrix without the training rows it carries (terms, components)."""
    if common is None:
        return None
    environments: dict[int, Environment] = {}

    def keep_environment(obj: Any) -> int | None:
        if isinstance(obj, Environment):
            environments[id(obj)] = obj
            return id(obj)
        return None

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.persistent_id = keep_environment
    pickler.dump(common)  # a deep copy that shares (does not copy) the environments
    unpickler = pickle.Unpickler(io.BytesIO(buffer.getvalue()))
    unpickler.persistent_load = environments.__getitem__
    common = unpickler.load()
    stack = [common, *common.terms.values()]
    while stack:
        obj = stack.pop()
        for attr in _TRAINING_VALUE_ATTRIBUTES:
            if attr in getattr(obj, "__dict__", {}):
                setattr(obj, attr, None)
        stack.extend(getattr(obj, "components", []) or [])
    return common


def _formula_environment() -> Environment:
    """A formulae environment like the one captured at fit, without the captured locals.

    formulae's own transforms and encodings (``C``, ``scale``, ...) first, then this
    module's globals (``np``, ``pd``, builtins), which formula calls resolve against.
    """
    return Environment([{**TRANSFORMS, **ENCODINGS}, dict(globals())])


# What a formula may call in a model loaded from disk: formulae's own transforms and
# encodings, and NumPy's ufuncs (np.log, np.exp, np.sqrt, np.power, ...). Nothing else resolves,
# so loading a model file evaluates no other code.
SAFE_NUMPY = SimpleNamespace(
    **{name: obj for name in dir(np) if isinstance(obj := getattr(np, name), np.ufunc)}
)


def safe_formula_environment() -> Environment:
    """The evaluation environment of formulas loaded from disk (see ``SAFE_NUMPY``)."""
    return Environment([{**TRANSFORMS, **ENCODINGS, "np": SAFE_NUMPY}])


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
    common = _formula_common(frame, formula, formula, env=safe_formula_environment())
    return DesignSpec(
        formula=formula,
        response=response,
        terms=[str(t) for t in common.as_dataframe().columns],
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
        labels = _group_labels(frame, group, context="fit")
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
    _check_rows(frame, minimum=2)
    grouping_columns = [
        c for name in [group, *factors] if name is not None
        for c in factor_columns(name, frame.columns)
    ]  # fmt: skip
    if formula is None:
        if frame.shape[1] == 0:
            raise ValueError(
                f"X has 0 feature(s) (shape={frame.shape}) while a minimum of 1 is required."
            )
        response_name, y_values = _response_from_y(y, len(frame), name=None)
        feature_columns = [c for c in frame.columns if c not in grouping_columns]
        lhs = None
        terms = [INTERCEPT] + [_feature_name(c) for c in feature_columns]
        matrix = _array_features(frame, feature_columns, terms)
        common = None
        rhs = None
    else:
        lhs, rhs = normalize_formula(formula)
        response_name, y_values = _formula_response(frame, y, lhs)
        common = _formula_common(frame, rhs, formula)
        matrix = np.asarray(common.design_matrix).astype(float)
        terms = list(common.as_dataframe().columns) if matrix.shape[1] else []
        feature_columns = []
    if matrix.shape[1] == 0:
        raise ValueError(f"formula {formula!r} produces no terms; add '1' for an intercept")
    if common is not None:
        _check_column_roles(
            frame, y, formula, lhs, _formula_columns(common), grouping_columns, response_name
        )
    _check_unique_terms([str(t) for t in terms], formula)
    groups = group_index = None
    if group is not None:
        labels = _group_labels(frame, group, context="fit")
        groups = _sorted_levels(labels)
        group_index = groups.get_indexer(labels.to_numpy()).astype(np.int64)
    grouping_factors, factor_index = [], []
    for name in factors:
        labels = _group_labels(frame, name, context="fit")
        levels = _sorted_levels(labels)
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
    response_columns = set(_formula_names(lhs)) if lhs is not None else set()
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


def _formula_names(text: str) -> list[str]:
    """The names a formula fragment reads (not the functions it calls)."""
    try:
        tokens = [t for t in Scanner(text).scan() if t.kind != "EOF"]
    except Exception:
        return [text]
    names = []
    for i, token in enumerate(tokens):
        following = tokens[i + 1].kind if i + 1 < len(tokens) else "EOF"
        if token.kind == "IDENTIFIER" and following not in ("LEFT_PAREN", "EQUAL"):
            names.append(token.lexeme)
        elif token.kind == "BQNAME":
            names.append(token.lexeme[1:-1])
    return names


# --- helpers -----------------------------------------------------------------------------


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


def _check_rows(frame: pd.DataFrame, minimum: int) -> None:
    n = len(frame)
    if n == 0:
        raise ValueError("X is empty: 0 rows (0 sample(s)); at least 1 is required")
    if n < minimum:
        raise ValueError(
            f"fitting needs at least {minimum} rows; got {n} (n_samples = 1, 1 sample)"
        )


def _feature_name(column: Hashable) -> str:
    return f"x{column}" if isinstance(column, int | np.integer) else str(column)


def _array_features(frame: pd.DataFrame, columns: Sequence, terms: list[str]) -> np.ndarray:
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


def _response_from_y(y: Any, n_rows: int, name: str | None) -> tuple[str, np.ndarray]:
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
    return name, _numeric_response(values, name, n_rows)


def _numeric_response(values: np.ndarray, name: str, n_rows: int) -> np.ndarray:
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


def _formula_response(frame: pd.DataFrame, y: Any, lhs: str | None) -> tuple[str, np.ndarray]:
    if lhs is None:
        return _response_from_y(y, len(frame), name=None)
    if lhs in frame.columns:
        from_frame = _numeric_response(frame[lhs].to_numpy(), lhs, len(frame))
    elif y is None:
        try:
            with _quiet_logger("formulae"):
                response = design_matrices(f"{lhs} ~ 1", frame, na_action="pass").response
        except KeyError as err:
            raise ValueError(
                f"response column {err.args[0]!r} named by the formula is not a column of X "
                "and y is None"
            ) from None
        return lhs, _numeric_response(np.asarray(response).ravel(), lhs, len(frame))
    else:
        return _response_from_y(y, len(frame), name=lhs)
    if y is not None:
        _, given = _response_from_y(y, len(frame), name=lhs)
        if not np.allclose(given, from_frame, rtol=1e-12, atol=0.0):
            raise ValueError(
                f"the response is given twice with different values: column {lhs!r} of X "
                "(from the formula) and y; pass only one"
            )
    return lhs, from_frame


def _term_vars(term: Any) -> set[str]:
    """Data columns a formulae term reads (formulae lists a literal, as in ``np.log(1 + x)``,
    as the empty name)."""
    return {name for name in getattr(term, "var_names", set()) or set() if name}


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _formula_columns(common: Any) -> list[str]:
    return sorted({name for term in common.terms.values() for name in _term_vars(term)})


def _formula_common(
    frame: pd.DataFrame, rhs: str, formula: str, env: Environment | None = None
) -> Any:
    try:
        # formulae logs "Keeping k/n rows with at least one missing value" at INFO: noise, as
        # hierreg rejects missing values itself with a message naming the column
        with _quiet_logger("formulae"):
            dm = design_matrices(rhs, frame, na_action="pass", env=0 if env is None else env)
    except KeyError as err:
        raise ValueError(
            f"column {err.args[0]!r} used by the formula {formula!r} is not a column of X"
        ) from None
    except Exception as err:  # formulae raises its own parse errors
        raise ValueError(f"formula {formula!r} could not be parsed: {err}") from None
    common = dm.common
    if common is None:
        raise ValueError(f"formula {formula!r} produces no terms; add '1' for an intercept")
    _check_finite_columns(frame, _formula_columns(common), "predictor")
    matrix = np.asarray(common.design_matrix).astype(float)
    bad = ~np.isfinite(matrix)
    if bad.any():
        raise ValueError(
            f"formula {formula!r} produces non-finite values in {int(bad.any(axis=1).sum())} "
            "row(s) (e.g. log of zero); transform the data first"
        )
    return common


def _check_finite_columns(frame: pd.DataFrame, columns: Sequence[str], role: str) -> None:
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


def _level_index(frame: pd.DataFrame, name: Hashable, levels: pd.Index) -> np.ndarray:
    """Index of each row's label in ``levels``; the k-th distinct unseen label gets -1 - k."""
    labels = _group_labels(frame, name, context="predict")
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


def _group_labels(frame: pd.DataFrame, group: Hashable, context: str) -> pd.Series:
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


def _sorted_levels(labels: pd.Series) -> pd.Index:
    unique = pd.unique(labels.to_numpy())
    try:
        return pd.Index(sorted(unique))
    except TypeError:  # mixed, unorderable labels: keep order of appearance
        return pd.Index(unique)
