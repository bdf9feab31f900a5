"""Grouping structure: one or several grouping factors, from ``group=`` or from the formula.

* ``group="county"``: one grouping factor.
* ``group=["item", "rater"]``: crossed factors, each with its own varying terms and its own
  population distribution.
* ``group=["state", "state:county"]``: county nested in state. ``"a:b"``, when it is not a
  column of the data, is the interaction of columns ``a`` and ``b``, so a county name that
  occurs in two states is two groups.
* A mixed-model formula, ``"y ~ x + (1 + x | g1) + (1 | g2)"`` (lme4's syntax, parsed by
  formulae): its group-specific terms name the factors and the terms varying by each; an
  intercept is implied unless written ``0 +``, and ``(1 | a/b)`` means
  ``(1 | a) + (1 | a:b)``. ``group`` must then be None.

The first factor is modelled as with a single ``group`` (its coefficients are ``coef_``;
under partial pooling they are drawn around the population coefficients ``mu``). Every
further factor adds zero-centred deviations for its varying terms: ``Normal(0, tau_h)``
under partial pooling, sum-to-zero effects with fixed priors under no pooling.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hierreg.design._formulae import group_terms
from hierreg.design.build import INTERCEPT, term_columns

__all__ = ["Grouping", "resolve_grouping", "split_group_terms"]


@dataclass(frozen=True)
class Grouping:
    """Resolved grouping.

    Attributes
    ----------
    formula : str or None
        The formula without its group-specific terms.
    factors : tuple
        Grouping factors, the first one first; empty for no groups.
    varying : tuple
        Per factor, ``"all"`` or a list of term names varying by it.
    """

    formula: str | None
    factors: tuple[Hashable, ...]
    varying: tuple[Any, ...]
    from_formula: bool = False

    def check_terms(self, terms: Sequence[str]) -> None:
        """Raise ``ValueError`` when a group-specific term of the formula varies a term that
        is not in its common part (hierreg draws group effects around a population value)."""
        if not self.from_formula:
            return
        for factor, names in zip(self.factors, self.varying, strict=True):
            for name in names:
                if not term_columns(name, terms):
                    example = "1" if name == INTERCEPT else name
                    raise ValueError(
                        f"the formula varies {name!r} by {factor!r}, but {name!r} is not in "
                        f"its common part (terms {list(terms)}); add it, e.g. "
                        f"'... + {example} + (... | {factor})'"
                    )

    @property
    def group(self) -> Hashable | None:
        """The first grouping factor (None without groups)."""
        return self.factors[0] if self.factors else None

    @property
    def extra(self) -> tuple[Hashable, ...]:
        """The factors after the first."""
        return self.factors[1:]


def resolve_grouping(formula: str | None, group: Any, varying: Any) -> Grouping:
    """Grouping factors and their varying terms, from ``group``/``varying`` or the formula.

    Raises
    ------
    ValueError, TypeError
        A formula with group-specific terms and a ``group`` or ``varying`` too; an empty or
        repeated list of factors; a ``varying`` mapping naming a factor not in ``group``.
    """
    if isinstance(formula, str) and "|" in formula:
        if group is not None:
            raise ValueError(
                f"formula {formula!r} has group-specific terms '(...|...)', which define the "
                f"groups; group must then be None, got group={group!r}"
            )
        if not (isinstance(varying, str) and varying == "all"):
            raise ValueError(
                f"formula {formula!r} has group-specific terms, which say what varies by "
                f"each group; varying must then be 'all', got varying={varying!r}"
            )
        common, terms = split_group_terms(formula)
        return Grouping(
            formula=common,
            factors=tuple(name for name, _ in terms),
            varying=tuple(names for _, names in terms),
            from_formula=True,
        )
    if group is None:
        return Grouping(formula=formula, factors=(), varying=())
    if isinstance(group, list | tuple):
        factors = tuple(group)
        if not factors:
            raise ValueError("group is an empty list: give at least one column, or None")
        for name in factors:
            if not isinstance(name, Hashable) or isinstance(name, list | tuple):
                raise TypeError(f"group must list column names, got {group!r}")
        repeated = sorted({str(n) for n in factors if factors.count(n) > 1})
        if repeated:
            raise ValueError(f"group lists {repeated} more than once")
    else:
        factors = (group,)
    return Grouping(formula=formula, factors=factors, varying=_varying_per_factor(varying, factors))


def _varying_per_factor(varying: Any, factors: tuple) -> tuple[Any, ...]:
    if not isinstance(varying, Mapping):
        return tuple(varying for _ in factors)
    unknown = [k for k in varying if k not in factors]
    if unknown:
        raise ValueError(f"varying names factor(s) {unknown} that are not in group={list(factors)}")
    return tuple(varying.get(name, "all") for name in factors)


def split_group_terms(formula: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """``"y ~ x + (1 + x | g)"`` -> ``("y ~ x", [("g", ["Intercept", "x"])])``.

    Factors in order of first appearance, each with its varying term names in order
    (``"Intercept"`` for the intercept); nested ``a/b`` becomes ``a`` and ``a:b``.
    """
    lhs, _, rhs = formula.rpartition("~")
    pieces = _top_level_split(rhs, "+")
    group_pieces = [p for p in pieces if _is_group_term(p)]
    common = [p for p in pieces if not _is_group_term(p)]
    for piece in group_pieces:
        inner = piece.strip()[1:-1]
        expr, _, factor = inner.rpartition("|")
        if not expr.strip() or not factor.strip():
            raise ValueError(
                f"formula {formula!r}: group-specific term {piece.strip()!r} needs terms on "
                "the left of '|' and a grouping column on the right"
            )
    try:
        terms = group_terms(" + ".join(p.strip() for p in group_pieces))
    except Exception as err:  # formulae raises its own parse errors
        raise ValueError(f"formula {formula!r} could not be parsed: {err}") from None
    factors: dict[str, list[str]] = {}
    for name, expr in terms:
        names = factors.setdefault(name, [])
        if expr not in names:
            names.append(expr)
    rest = " + ".join(p.strip() for p in common if p.strip()) or "1"
    return (f"{lhs.strip()} ~ {rest}" if "~" in formula else rest), list(factors.items())


def _top_level_split(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside parentheses."""
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == separator and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces


def _is_group_term(piece: str) -> bool:
    """A parenthesised piece with a ``|`` at its own top level."""
    text = piece.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return False
    inner = text[1:-1]
    return len(_top_level_split(inner, "|")) > 1
