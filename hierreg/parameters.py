"""The estimator's parameters: one table of what each may hold, and how each is checked.

:data:`PARAMETERS` maps every ``__init__`` parameter of
:class:`hierreg.HierarchicalLinearRegression` to a :class:`Parameter`: the schema
(:mod:`hierreg.schema`) of its JSON form in a saved model, and the check of its Python value
at ``fit``. Every reader uses this table:

* the estimator checks its parameters with :func:`check_parameter` (through
  :mod:`hierreg.options`) before any data is read;
* the CLI offers :func:`choices` as its option choices;
* loading a saved model checks the saved parameters against :data:`PARAMETER_SCHEMA`, field by
  field, before anything is built.

Parameters whose meaning depends on the data (``group``, ``varying``, ``priors``,
``group_predictors``, ``formula``) are checked here for their form and by the module named in
``checked_by`` against the data.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from hierreg.model.families import LIKELIHOODS
from hierreg.model.structure import COVARIANCES, PARAMETRIZATIONS, POOLING_MODES
from hierreg.model.sufficient import LIKELIHOOD_MODES
from hierreg.sampling.samplers import SAMPLERS
from hierreg.schema import AnyOf, Check, Choice, Fields, ListOf, MapOf, Optional

__all__ = [
    "LABEL",
    "NEW_GROUPS",
    "PARAMETERS",
    "PARAMETER_SCHEMA",
    "PRIOR_SCHEMA",
    "Parameter",
    "check_choice",
    "check_parameter",
    "choices",
]

NEW_GROUPS = ("population", "mean", "error")

# sample_kwargs may not set what the estimator's own parameters set
RESERVED_SAMPLE_KWARGS = frozenset(
    {
        "draws",
        "tune",
        "chains",
        "random_seed",
        "progressbar",
        "nuts_sampler",
        "model",
        "compute_convergence_checks",
    }
)

# a group label or level as JSON holds it
LABEL = (str, int, float, bool)
_COLUMN = (str, int)
_POSITIVE_INT = Check(int, lambda v: v > 0, "must be a positive integer")
_NAMES = ListOf(str)

PRIOR_SCHEMA = Fields({"distribution": str, "params": MapOf(float)})


# --- checks of Python values: each takes (name, value) and returns the value to use ------


def _choice_of(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            allowed = ", ".join(repr(a) for a in options)
            raise ValueError(f"{name}={value!r} is not one of {allowed}")
        return value

    return check


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _probability_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a float in (0, 1) or None, got {value!r}")
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _truthy(name: str, value: Any) -> bool:
    return bool(value)


def _flag_or_auto(name: str, value: Any) -> bool | str:
    if isinstance(value, str) and value == "auto":
        return "auto"
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True, False or 'auto', got {value!r}")
    return bool(value)


def _seed(name: str, value: Any) -> int | None:
    """The integer seed a ``random_state`` stands for (None: fresh entropy)."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.random.Generator):
        return int(value.integers(2**31 - 1))
    return int(check_random_state(value).randint(2**31 - 1))


def _sample_kwargs(name: str, value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict or None, got {type(value)}")
    clash = sorted(RESERVED_SAMPLE_KWARGS.intersection(value))
    if clash:
        raise ValueError(f"{name} may not set {clash}: use the estimator's own parameters")
    return dict(value) if value else None


@dataclass(frozen=True)
class Parameter:
    """One ``__init__`` parameter: ``schema`` of its JSON form (saved models), ``check`` of
    its Python value (None: taken as is here, checked against the data by ``checked_by``)."""

    schema: Any
    check: Callable[[str, Any], Any] | None = None
    checked_by: str = ""


def _choice(options: tuple[str, ...]) -> Parameter:
    return Parameter(Choice(options), _choice_of(options))


PARAMETERS: dict[str, Parameter] = {
    "formula": Parameter(Optional(str), None, "hierreg.design.build"),
    "group": Parameter(
        Optional(AnyOf((str, int, ListOf(_COLUMN, 1)), "a column name, a list or null")),
        None,
        "hierreg.design.grouping",
    ),
    "pooling": _choice(POOLING_MODES),
    "varying": Parameter(
        AnyOf(
            (str, _NAMES, MapOf(AnyOf((str, _NAMES), "'all' or a list of term names"))),
            "'all', a list of term names or an object of them by factor",
        ),
        None,
        "hierreg.model.structure",
    ),
    "parametrization": _choice(PARAMETRIZATIONS),
    "group_noise": Parameter(bool, _flag),
    "draws": Parameter(_POSITIVE_INT, _positive_int),
    "tune": Parameter(_POSITIVE_INT, _positive_int),
    "chains": Parameter(_POSITIVE_INT, _positive_int),
    "target_accept": Parameter(
        Optional(Check(float, lambda v: 0 < v < 1, "must be in (0, 1)")), _probability_or_none
    ),
    "sampler": _choice(SAMPLERS),
    "random_state": Parameter(Optional(int), _seed),
    "progressbar": Parameter(bool, _truthy),
    "sample_kwargs": Parameter(Optional(dict), _sample_kwargs),
    "new_groups": _choice(NEW_GROUPS),
    "store_log_likelihood": Parameter(
        AnyOf((bool, Choice(("auto",))), "true, false or 'auto'"), _flag_or_auto
    ),
    "priors": Parameter(Optional(MapOf(PRIOR_SCHEMA)), None, "hierreg.model.priors"),
    "group_predictors": Parameter(Optional(_NAMES), None, "hierreg.options"),
    "likelihood_mode": _choice(LIKELIHOOD_MODES),
    "likelihood": _choice(LIKELIHOODS),
    "covariance": _choice(COVARIANCES),
}

# the JSON form of every parameter, as a saved model holds it
PARAMETER_SCHEMA = {name: p.schema for name, p in PARAMETERS.items()}


def choices(name: str) -> tuple[str, ...]:
    """The allowed values of the choice parameter ``name``."""
    schema = PARAMETERS[name].schema
    if not isinstance(schema, Choice):
        raise KeyError(f"parameter {name!r} is not a choice")
    return schema.options


def check_parameter(name: str, value: Any) -> Any:
    """``value`` checked (``TypeError``/``ValueError`` naming ``name``) and normalised
    (``draws=np.int64(5)`` -> ``5``, ``random_state`` -> its integer seed)."""
    check = PARAMETERS[name].check
    return value if check is None else check(name, value)


def check_choice(name: str, value: object) -> str:
    """``value`` if it is one of the allowed values of ``name``, else ``ValueError``:
    ``"pooling='parital' is not one of 'complete', 'none', 'partial'"``."""
    choices(name)  # KeyError for a parameter that is not a choice
    return check_parameter(name, value)
