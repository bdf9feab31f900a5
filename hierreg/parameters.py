"""The estimator's parameters: one table of what each may hold.

:data:`PARAMETER_SCHEMA` maps every ``__init__`` parameter of
:class:`hierreg.HierarchicalLinearRegression` to the schema (:mod:`hierreg.schema`) of its
JSON form. Loading a saved model checks the saved parameters against it field by field, so a
tampered or damaged file is refused with the parameter's name before anything is built; the
estimator (:func:`check_choice`) and the CLI (:func:`choices`) read the allowed values of
the choice parameters from it.
"""

from __future__ import annotations

from hierreg.model.graph import COVARIANCES, LIKELIHOODS, PARAMETRIZATIONS, POOLING_MODES
from hierreg.model.sufficient import LIKELIHOOD_MODES
from hierreg.sampling.samplers import SAMPLERS
from hierreg.schema import AnyOf, Check, Choice, Fields, ListOf, MapOf, Optional

__all__ = ["LABEL", "NEW_GROUPS", "PARAMETER_SCHEMA", "PRIOR_SCHEMA", "check_choice", "choices"]

NEW_GROUPS = ("population", "mean", "error")

# a group label or level as JSON holds it
LABEL = (str, int, float, bool)
_COLUMN = (str, int)
_POSITIVE_INT = Check(int, lambda v: v > 0, "must be a positive integer")
_NAMES = ListOf(str)

PRIOR_SCHEMA = Fields({"distribution": str, "params": MapOf(float)})

PARAMETER_SCHEMA = {
    "formula": Optional(str),
    "group": Optional(AnyOf((str, int, ListOf(_COLUMN, 1)), "a column name, a list or null")),
    "pooling": Choice(POOLING_MODES),
    "varying": AnyOf(
        (str, _NAMES, MapOf(AnyOf((str, _NAMES), "'all' or a list of term names"))),
        "'all', a list of term names or an object of them by factor",
    ),
    "parametrization": Choice(PARAMETRIZATIONS),
    "group_noise": bool,
    "draws": _POSITIVE_INT,
    "tune": _POSITIVE_INT,
    "chains": _POSITIVE_INT,
    "target_accept": Optional(Check(float, lambda v: 0 < v < 1, "must be in (0, 1)")),
    "sampler": Choice(SAMPLERS),
    "random_state": Optional(int),
    "progressbar": bool,
    "sample_kwargs": Optional(dict),
    "new_groups": Choice(NEW_GROUPS),
    "store_log_likelihood": AnyOf((bool, Choice(("auto",))), "true, false or 'auto'"),
    "priors": Optional(MapOf(PRIOR_SCHEMA)),
    "group_predictors": Optional(_NAMES),
    "likelihood_mode": Choice(LIKELIHOOD_MODES),
    "likelihood": Choice(LIKELIHOODS),
    "covariance": Choice(COVARIANCES),
}


def choices(name: str) -> tuple[str, ...]:
    """The allowed values of the choice parameter ``name``."""
    schema = PARAMETER_SCHEMA[name]
    if not isinstance(schema, Choice):
        raise KeyError(f"parameter {name!r} is not a choice")
    return schema.options


def check_choice(name: str, value: object) -> str:
    """``value`` if it is one of the allowed values of ``name``, else ``ValueError``:
    ``"pooling='parital' is not one of 'complete', 'none', 'partial'"``."""
    allowed = choices(name)
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not one of {options}")
    return value
