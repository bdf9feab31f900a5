"""An allow-list for formulas read from files: a formula is data, never code.

formulae resolves a call's name by walking attributes (``a.b.c`` is ``getattr(getattr(a,
"b"), "c")``) and looks a bare name up in the data, then in the evaluation environment. A
formula from a saved model is therefore checked token by token, with formulae's own scanner
(which evaluates nothing), before formulae sees it:

* a called name must be one of formulae's transforms and encodings (``C``, ``scale``,
  ``center``, ``bs``, ...) or ``np.<ufunc>`` (``np.log``, ``np.exp``, ...);
* any other name must be a column the model reads (or a keyword argument's name, or
  ``True``/``False``/``None``);
* no name may contain ``__`` and no name but ``np.<ufunc>`` may contain a dot.

Everything else in formula syntax (numbers, strings, operators, brackets, ``|`` group terms)
carries no name and is allowed.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from hierreg.design._formulae import ENCODINGS, TRANSFORMS, Scanner

__all__ = ["ALLOWED_CALLS", "UnsafeFormulaError", "check_formula_is_data"]

ALLOWED_CALLS = (
    frozenset(TRANSFORMS)
    | frozenset(ENCODINGS)
    | frozenset(f"np.{name}" for name in dir(np) if isinstance(getattr(np, name), np.ufunc))
)
_CONSTANTS = frozenset({"True", "False", "None"})


class UnsafeFormulaError(ValueError):
    """A formula read from a file names something other than data columns and the allowed
    transforms."""


def check_formula_is_data(
    formula: str, columns: Collection[str], *, where: str, any_plain_name: bool = False
) -> None:
    """Raise :class:`UnsafeFormulaError` unless every name in ``formula`` is allowed.

    Parameters
    ----------
    formula : str
        The formula text, as saved (right-hand side, or a whole ``lhs ~ rhs`` formula with
        ``(... | g)`` terms).
    columns : collection of str
        The column names the formula may read (a column named with a dot, ``x.y``, is one).
    any_plain_name : bool
        Also allow any other name without a dot (a formula whose columns are not all known,
        such as a ``formula`` parameter with its response and group columns).
    where : str
        Where the formula came from, for the message (e.g. ``"model.json: design.formula"``).
    """
    if not isinstance(formula, str):
        raise UnsafeFormulaError(f"{where} must be a string, got {type(formula).__name__}")
    try:
        tokens = [t for t in Scanner(formula).scan() if t.kind != "EOF"]
    except Exception as err:  # formulae's scanner errors on characters it does not know
        raise UnsafeFormulaError(f"{where} {formula!r} is not a formula: {err}") from None
    for i, token in enumerate(tokens):
        if token.kind == "BQNAME":
            name = token.lexeme[1:-1]
            if "__" in name or name not in columns:
                _refuse(formula, where, name, "is not a column the model reads")
            continue
        if token.kind != "IDENTIFIER":
            continue
        name = token.lexeme
        following = tokens[i + 1].kind if i + 1 < len(tokens) else "EOF"
        if "__" in name:
            _refuse(formula, where, name, "contains '__'")
        if following == "LEFT_PAREN":
            if name not in ALLOWED_CALLS:
                _refuse(
                    formula, where, name,
                    "is not an allowed call (formulae's transforms and encodings, np.<ufunc>)",
                )  # fmt: skip
        elif name in columns:
            continue  # looked up in the data first, never as an attribute
        elif "." in name:
            _refuse(formula, where, name, "is an attribute access")
        elif following == "EQUAL":  # a keyword argument's name: C(x, levels=[...])
            continue
        elif not any_plain_name and name not in _CONSTANTS:
            _refuse(formula, where, name, "is not a column the model reads")


def _refuse(formula: str, where: str, name: str, why: str) -> None:
    raise UnsafeFormulaError(
        f"{where} {formula!r} is refused: {name!r} {why}; a saved formula may name only its "
        "data columns, formulae's transforms and NumPy ufuncs"
    )
