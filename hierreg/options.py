"""The estimator's parameters -> the options of one fit, checked before any data is read.

Each parameter is checked by its entry in :data:`hierreg.parameters.PARAMETERS`; this module
adds the checks between parameters (``likelihood_mode="sufficient"`` with a Student-t
likelihood, ``group_noise`` without groups, ...) and resolves what the data does not decide:
the grouping factors, the pooling actually used, the likelihood form, the sampler settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hierreg.design.build import normalize_formula
from hierreg.design.grouping import Grouping, resolve_grouping
from hierreg.model.families import family
from hierreg.parameters import check_parameter
from hierreg.sampling.samplers import SamplerSettings, check_sampler_available

__all__ = ["FitOptions", "fit_options", "sampler_settings"]


@dataclass(frozen=True)
class FitOptions:
    """The estimator's parameters as ``fit`` resolved them, before any data is read."""

    settings: SamplerSettings
    store_log_likelihood: bool | str
    likelihood: str
    likelihood_mode: str
    pooling: str
    parametrization: str
    covariance: str
    group_noise: bool
    grouping: Grouping
    # the first grouping factor's varying setting (as given), and each further factor's
    varying: Any
    factor_varying: tuple[Any, ...]
    group_predictors: list[str]
    # the formula with the group predictors added as terms
    formula: str | None
    # whether the grouping column is read from X (complete pooling ignores it, but array
    # input must still drop the group column)
    keep_group: bool


def sampler_settings(params: Mapping[str, Any]) -> SamplerSettings:
    """The sampler's settings from the estimator's parameters (checked; the sampler's
    optional dependencies must be installed)."""
    checked = {
        name: check_parameter(name, params[name])
        for name in (
            "draws", "tune", "chains", "target_accept", "sampler", "random_state",
            "progressbar", "sample_kwargs",
        )
    }  # fmt: skip
    check_sampler_available(checked["sampler"])
    return SamplerSettings(
        sampler=checked["sampler"],
        draws=checked["draws"],
        tune=checked["tune"],
        chains=checked["chains"],
        target_accept=checked["target_accept"],
        seed=checked["random_state"],
        progressbar=checked["progressbar"],
        sample_kwargs=checked["sample_kwargs"],
    )


def fit_options(params: Mapping[str, Any]) -> FitOptions:
    """Check the estimator's parameters (``est.get_params()``) and resolve the options of a
    fit; every error names the parameter."""
    settings = sampler_settings(params)
    check_parameter("new_groups", params["new_groups"])
    store_loglik = check_parameter("store_log_likelihood", params["store_log_likelihood"])
    likelihood_mode = check_parameter("likelihood_mode", params["likelihood_mode"])
    likelihood = check_parameter("likelihood", params["likelihood"])
    if not family(likelihood).sufficient_statistics:
        if likelihood_mode == "sufficient":
            raise ValueError(
                f"likelihood_mode='sufficient' needs likelihood='normal' (a {likelihood} "
                "likelihood has no sufficient statistics); use 'rows' or 'auto'"
            )
        likelihood_mode = "rows"
    pooling = check_parameter("pooling", params["pooling"])
    parametrization = check_parameter("parametrization", params["parametrization"])
    group_noise = check_parameter("group_noise", params["group_noise"])
    grouping = resolve_grouping(params["formula"], params["group"], params["varying"])
    if grouping.group is None:
        pooling = "complete"
    extra = grouping.extra if pooling != "complete" else ()
    if extra:
        if likelihood_mode == "sufficient":
            raise ValueError(
                f"likelihood_mode='sufficient' needs one grouping factor, got "
                f"{list(grouping.factors)} (crossed or nested groups do not split the "
                "likelihood by group); use 'rows' or 'auto'"
            )
        likelihood_mode = "rows"
    if pooling == "complete" and group_noise:
        raise ValueError("group_noise=True needs groups: use pooling='none' or 'partial'")
    predictors = _group_predictor_columns(params["group_predictors"], grouping)
    if predictors and pooling == "none":
        raise ValueError(
            "group_predictors cannot be estimated with pooling='none': every group's "
            "own intercept absorbs them; use pooling='partial'"
        )
    return FitOptions(
        settings=settings,
        store_log_likelihood=store_loglik,
        likelihood=likelihood,
        likelihood_mode=likelihood_mode,
        pooling=pooling,
        parametrization=parametrization,
        covariance=check_parameter("covariance", params["covariance"]),
        group_noise=group_noise,
        grouping=grouping,
        varying=grouping.varying[0] if grouping.varying else params["varying"],
        factor_varying=tuple(grouping.varying[1:]),
        group_predictors=predictors,
        formula=_formula_with(grouping.formula, predictors),
        keep_group=pooling != "complete" or params["formula"] is None,
    )


def _group_predictor_columns(predictors: Any, grouping: Grouping) -> list[str]:
    given = predictors
    if predictors is None:
        return []
    if isinstance(predictors, str):
        predictors = [predictors]
    if not isinstance(predictors, Sequence) or not all(
        isinstance(c, str) and c.isidentifier() for c in predictors
    ):
        raise TypeError(f"group_predictors must be a list of column names, got {given!r}")
    if grouping.formula is None or grouping.group is None:
        raise ValueError("group_predictors needs a formula and a group column")
    if len(set(predictors)) != len(predictors):
        raise ValueError(f"group_predictors lists a column twice: {list(predictors)}")
    return list(predictors)


def _formula_with(formula: str | None, predictors: list[str]) -> str | None:
    """The formula with the group predictors added as terms."""
    if not predictors or formula is None:
        return formula
    lhs, rhs = normalize_formula(formula)
    rhs = " + ".join([rhs, *predictors])
    return rhs if lhs is None else f"{lhs} ~ {rhs}"
