"""Every use of formulae's API and internals: parsing, evaluation environments, the fitted
encoding's training values and pickling, and formulae's scanner for the safety check.

Only this module imports formulae, so a formulae upgrade is checked here (``formulae>=0.9``;
internals used: ``Environment``, ``Scanner``, ``TRANSFORMS``/``ENCODINGS``, and the attributes
in ``_TRAINING_VALUE_ATTRIBUTES``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import formulae
import numpy as np
import pandas as pd
from formulae import design_matrices
from formulae.environment import Environment
from formulae.scanner import Scanner
from formulae.terms.call import ENCODINGS, TRANSFORMS

from hierreg.design.frames import check_finite_columns

__all__ = [
    "ENCODINGS",
    "SAFE_NUMPY",
    "TRANSFORMS",
    "Scanner",
    "common_from_pickle",
    "common_to_pickle",
    "formula_columns",
    "formula_common",
    "formula_response",
    "safe_formula_environment",
]


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


def formula_columns(common: Any) -> list[str]:
    return sorted({name for term in common.terms.values() for name in _term_vars(term)})


def formula_common(
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
    check_finite_columns(frame, formula_columns(common), "predictor")
    matrix = np.asarray(common.design_matrix).astype(float)
    bad = ~np.isfinite(matrix)
    if bad.any():
        raise ValueError(
            f"formula {formula!r} produces non-finite values in {int(bad.any(axis=1).sum())} "
            "row(s) (e.g. log of zero); transform the data first"
        )
    return common


def common_to_pickle(common: Any) -> bytes:
    """A fitted formulae encoding as bytes, without the training rows it carries and without
    its evaluation environment (it holds module objects and the caller's frame)."""
    common = _without_training_values(common)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.persistent_id = lambda obj: "env" if isinstance(obj, Environment) else None
    pickler.dump(common)
    return buffer.getvalue()


def common_from_pickle(data: bytes) -> Any:
    """:func:`common_to_pickle`'s encoding back, its environment rebuilt from formulae's
    transforms and this module's globals (what ``np.log(x)`` resolves against)."""
    unpickler = pickle.Unpickler(io.BytesIO(data))
    unpickler.persistent_load = lambda token: _formula_environment()
    return unpickler.load()


def formula_response(lhs: str, frame: pd.DataFrame) -> np.ndarray:
    """The response a formula's left-hand side computes from ``frame`` (``np.log(y)``);
    ``KeyError`` naming a column that is not there."""
    with _quiet_logger("formulae"):
        return np.asarray(design_matrices(f"{lhs} ~ 1", frame, na_action="pass").response)


def evaluate_new_data(common: Any, frame: pd.DataFrame) -> np.ndarray:
    """New rows encoded with a fitted formulae encoding."""
    return np.asarray(common.evaluate_new_data(frame)).astype(float)


def formula_terms(common: Any) -> list[str]:
    """The design-matrix column names of a fitted formulae encoding."""
    return [str(t) for t in common.as_dataframe().columns]


def formula_names(text: str) -> list[str]:
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


def group_terms(text: str) -> list[tuple[str, str]]:
    """(grouping factor, term) for each term of lme4-style group-specific terms such as
    ``"(1 + x | g)"`` (``"Intercept"`` for the ``1``); parse errors propagate."""
    out = []
    for term in formulae.model_description(text).terms:
        if not hasattr(term, "factor"):
            continue
        expr = "Intercept" if type(term.expr).__name__ == "Intercept" else str(term.expr.name)
        out.append((str(term.factor.name), expr))
    return out


def design_matrix(common: Any) -> tuple[np.ndarray, list[str]]:
    """The training design matrix of a fitted formulae encoding, and its column names."""
    matrix = np.asarray(common.design_matrix).astype(float)
    return matrix, (formula_terms(common) if matrix.shape[1] else [])
