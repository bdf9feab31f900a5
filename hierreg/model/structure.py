"""What shapes the model: pooling, varying terms, covariance, parametrisation, likelihood.

:class:`ModelStructure` is everything about the graph that does not depend on the data's
values; :func:`resolve_structure` derives it from the estimator's options and the design
before anything is compiled. Dimension names (:func:`group_dim`, :func:`factor_dims`) live
here too, since the posterior, predictions and saved files all read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hierreg.design.build import Design, DesignSpec, term_columns
from hierreg.model.centring import centring_mask
from hierreg.model.families import family
from hierreg.model.priors import (
    ModelPriors,
    check_user_priors,
    prior_kinds,
    with_user_priors,
)
from hierreg.model.sufficient import SufficientStatistics, choose_likelihood_mode

POOLING_MODES = ("complete", "none", "partial")


COVARIANCES = ("diagonal", "full")


CORR_DIMS = ("corr_term", "corr_term_2")


# what the estimator accepts; "auto" becomes "mixed" (a centring choice per group and term,
# see hierreg.model.centring) or, with a full covariance, "noncentered"
PARAMETRIZATIONS = ("auto", "noncentered", "centered", "collapsed")


FLAT_DIM = "group_term"


RESERVED = {
    "beta",
    "beta_varying",
    "beta_common",
    "mu",
    "tau",
    "z",
    "chol",
    "corr",
    "sigma",
    "nu",
    "y",
    "y_loglik",
    "obs",
    "group_mask",
    "centring",
    "z_centring",
    FLAT_DIM,
}


@dataclass(frozen=True)
class FactorStructure:
    """A grouping factor after the first: which terms vary by it, and how."""

    varying: tuple[bool, ...]
    covariance: str = "diagonal"

    @property
    def varying_index(self) -> np.ndarray:
        return np.flatnonzero(np.array(self.varying, dtype=bool))


@dataclass(frozen=True)
class ModelStructure:
    """What shapes the graph, independent of the data values.

    ``covariance`` is that of the first grouping factor; ``factors`` describe the others.
    """

    pooling: str
    varying: tuple[bool, ...]
    parametrization: str = "noncentered"
    group_noise: bool = False
    likelihood_mode: str = "rows"
    likelihood: str = "normal"
    covariance: str = "diagonal"
    factors: tuple[FactorStructure, ...] = ()
    # the priors alone: no likelihood (prior predictive checks; never saved)
    prior_only: bool = False

    @property
    def varying_index(self) -> np.ndarray:
        return np.flatnonzero(np.array(self.varying, dtype=bool))

    @property
    def common_index(self) -> np.ndarray:
        return np.flatnonzero(~np.array(self.varying, dtype=bool))


def group_dim(design: Design | DesignSpec) -> str:
    """Dimension name for groups: the group column's name unless it clashes with ours."""
    name = _spec(design).group_name
    return f"group_{name}" if name in RESERVED or name == "term" else name


def factor_dims(design: Design | DesignSpec) -> list[str]:
    """Dimension names of the grouping factors after the first (unique, not ours)."""
    taken = set(RESERVED) | {"term", group_dim(design)}
    names = []
    for factor in _spec(design).factors:
        name = str(factor.name)
        while name in taken:
            name = f"group_{name}"
        taken.add(name)
        names.append(name)
    return names


def _spec(design: Design | DesignSpec) -> DesignSpec:
    return design.spec if isinstance(design, Design) else design


def factor_term_dim(fdim: str) -> str:
    return f"{fdim}_term"


def term_dims(structure: ModelStructure) -> tuple[str, str]:
    """(dimension of varying terms, dimension of shared terms)."""
    n_var, n_com = len(structure.varying_index), len(structure.common_index)
    return ("term" if n_com == 0 else "varying_term", "term" if n_var == 0 else "common_term")


def _resolve_parametrization(
    parametrization: str,
    pooling: str,
    covariance: str,
    design: Design,
    varying: tuple[bool, ...],
    statistics: SufficientStatistics | None = None,
) -> tuple[str, np.ndarray | None]:
    """The structure's parametrisation and, for ``"mixed"``, which group coefficients are
    centred (groups x varying terms). ``"auto"``: a centring choice per group and term
    (:mod:`hierreg.model.centring`), or ``"noncentered"`` where no coefficient qualifies (the
    same graph, and draws, as asking for it) and with a full covariance (its Cholesky form).
    ``statistics``: the design's per-group statistics when its rows are elsewhere (Dask)."""
    if parametrization != "auto":
        return parametrization, None
    if pooling != "partial" or covariance == "full":
        return "noncentered", None
    if statistics is None:
        n_groups = len(design.spec.groups)
        statistics = SufficientStatistics.from_arrays(
            design.X, design.y, design.group_index, n_groups
        )
    # in data units: hierreg.model.centring's ratio does not depend on them
    centring = centring_mask(statistics, np.flatnonzero(np.array(varying, dtype=bool)))
    return ("mixed", centring) if centring.any() else ("noncentered", None)


def _check_full_covariance(pooling: str, parametrization: str, varying_counts: list[int]):
    if pooling != "partial":
        raise ValueError(
            f"covariance='full' correlates partially pooled group effects; pooling={pooling!r} "
            "has none (use pooling='partial')"
        )
    if max(varying_counts) < 2:
        raise ValueError(
            "covariance='full' needs at least two varying terms (e.g. varying='all' with an "
            "intercept and a slope)"
        )
    if parametrization == "centered":
        raise ValueError(
            "covariance='full' is implemented with parametrization='noncentered' only (or "
            "'auto', which then means it)"
        )


def _resolve_varying(
    varying: Any, spec: DesignSpec, pooling: str, group_predictors: Sequence[str] = ()
) -> tuple[bool, ...]:
    terms = spec.terms
    if pooling == "complete":
        return tuple(False for _ in terms)
    shared = set(group_predictors)
    if isinstance(varying, str):
        if varying == "all":
            return tuple(t not in shared for t in terms)
        varying = [varying]
    listed = sorted(shared.intersection(varying) if isinstance(varying, Sequence) else ())
    if listed:
        raise ValueError(
            f"group predictor(s) {listed} cannot vary by group (constant within each group): "
            "remove them from varying"
        )
    if not isinstance(varying, Sequence) or not all(isinstance(v, str) for v in varying):
        raise TypeError(f"varying must be 'all' or a list of term names, got {varying!r}")
    if len(varying) == 0:
        raise ValueError("varying is empty: name at least one term, or use pooling='complete'")
    chosen = set()
    for name in varying:
        matches = term_columns(name, terms)
        if not matches:
            raise ValueError(f"varying term {name!r} is not a model term; terms are {terms}")
        chosen.update(matches)
    return tuple(t in chosen for t in terms)


def resolve_structure(
    design: Design,
    *,
    pooling: str,
    varying: Any,
    factor_varying: Sequence[Any],
    group_predictors: Sequence[str],
    covariance: str,
    parametrization: str,
    group_noise: bool,
    likelihood: str,
    likelihood_mode: str,
    statistics: SufficientStatistics | None = None,
    n_rows: int | None = None,
) -> tuple[ModelStructure, np.ndarray | None]:
    """The structure of the model of ``design`` and, for a ``"mixed"`` parametrisation, which
    group coefficients are centred (groups x varying terms; else None).

    ``varying``/``factor_varying``: the ``varying`` setting of the first grouping factor and
    of each further one; ``statistics`` and ``n_rows``: the design's per-group statistics and
    row count when its rows are elsewhere (a Dask fit), which also means the sufficient-
    statistics likelihood.
    """
    primary = _resolve_varying(varying, design.spec, pooling, group_predictors)
    factor_structures = tuple(
        FactorStructure(varying=_resolve_varying(v, design.spec, pooling), covariance=covariance)
        for v in factor_varying[: len(design.spec.factors)]
    )
    if covariance == "full":
        varying_counts = [sum(primary)] + [sum(f.varying) for f in factor_structures]
        _check_full_covariance(pooling, parametrization, varying_counts)
        if sum(primary) < 2:  # the first factor varies one term: nothing to correlate
            covariance = "diagonal"
    parametrization, centring = _resolve_parametrization(
        parametrization, pooling, covariance, design, primary, statistics
    )
    if parametrization == "collapsed" and pooling == "partial":
        _check_collapsible(likelihood, covariance, group_noise, factor_structures)
        likelihood_mode = "sufficient"
    n_groups = 0 if design.spec.groups is None else len(design.spec.groups)
    structure = ModelStructure(
        pooling=pooling,
        varying=primary,
        parametrization=parametrization,
        group_noise=bool(group_noise),
        likelihood_mode=choose_likelihood_mode(
            "sufficient" if statistics is not None else likelihood_mode,
            len(design.y) if n_rows is None else n_rows,
            max(n_groups, 1),
            len(design.spec.terms),
        ),
        likelihood=likelihood,
        covariance=covariance,
        factors=factor_structures,
    )
    return structure, centring


def unflatten(values: np.ndarray, n_groups: int) -> np.ndarray:
    """``(..., n_terms * n_groups)`` term-major draws -> ``(..., n_groups, n_terms)``."""
    n_terms = values.shape[-1] // n_groups
    stacked = values.reshape(*values.shape[:-1], n_terms, n_groups)
    return np.swapaxes(stacked, -1, -2)


def model_correlations(structure: ModelStructure, fdims: Sequence[str]) -> list[str]:
    """Names of the correlation matrices the structure samples (``"corr"``, ``"corr_<f>"``)."""
    if structure.pooling != "partial":
        return []
    names = ["corr"] if structure.covariance == "full" and sum(structure.varying) >= 2 else []
    for fs, fdim in zip(structure.factors, fdims, strict=False):
        if fs.covariance == "full" and sum(fs.varying) > 1:
            names.append(f"corr_{fdim}")
    return names


def complete_priors(
    priors: ModelPriors, design: Design | DesignSpec, structure: ModelStructure
) -> ModelPriors:
    """``priors`` with defaults for what the structure adds and they lack: further factors'
    sds (the first factor's), the family's parameters, the correlation matrices' LKJ."""
    fdims = factor_dims(design) if structure.pooling != "complete" else []
    return priors.completed(
        fdims[: len(structure.factors)],
        family(structure.likelihood).priors,
        model_correlations(structure, fdims),
    )


def resolve_priors(
    defaults: ModelPriors, user: Any, design: Design | DesignSpec, structure: ModelStructure
) -> tuple[ModelPriors, ModelPriors]:
    """(the model's priors, the defaults), both completed for the structure: the user's
    ``priors=`` checked against the names the model has (``ValueError`` listing them) and put
    in place of the defaults."""
    fdims = factor_dims(design)[: len(structure.factors)] if structure.pooling != "complete" else []
    likelihood = family(structure.likelihood)
    correlations = model_correlations(structure, fdims)
    defaults = complete_priors(defaults, design, structure)
    extra = {name: "scale" for name in likelihood.priors}
    extra.update({name: "correlation" for name in correlations})
    kinds = prior_kinds(_spec(design).terms, fdims, extra)
    priors = with_user_priors(defaults, check_user_priors(user, kinds))
    _check_prior_form(priors, structure, fdims)
    return priors, defaults


def _check_prior_form(priors: ModelPriors, structure: ModelStructure, fdims: Sequence[str]):
    """What the graph cannot take, refused before anything is built: a Uniform prior on
    some terms of a vector only (its bounds need one transform for the vector), and sds of
    different distributions under one LKJ Cholesky prior."""
    vectors = {"coefficients": priors.coef, "tau": priors.tau}
    vectors.update({f"tau_{k}": v for k, v in priors.factor_tau.items()})
    for name, vector in vectors.items():
        kinds = {p.distribution for p in vector}
        if "Uniform" in kinds and len(kinds) > 1:
            raise ValueError(
                f"priors: a Uniform prior must apply to every term of {name} (its bounds need "
                f"one transform for the whole vector), got {sorted(kinds)}; set it for all "
                f"terms (e.g. priors={{'tau': Prior('Uniform', ...)}})"
            )
    correlated = [("tau", structure.varying_index, "corr")] + [
        (f"tau_{fdim}", fs.varying_index, f"corr_{fdim}")
        for fs, fdim in zip(structure.factors, fdims, strict=False)
    ]
    for name, index, corr in correlated:
        if corr in priors.extra:
            kinds = {vectors[name][k].distribution for k in index}
            if len(kinds) > 1:
                raise ValueError(
                    f"covariance='full' needs one distribution for every varying term's sd in "
                    f"{name} (the LKJ Cholesky prior takes one), got {sorted(kinds)}"
                )


def _check_collapsible(likelihood: str, covariance: str, group_noise: bool, factors) -> None:
    """``parametrization="collapsed"`` integrates the group effects out of a normal model
    with one grouping factor and independent effects (:mod:`hierreg.model.collapsed`)."""
    problems = []
    if likelihood != "normal":
        problems.append(f"likelihood={likelihood!r} (needs 'normal')")
    if covariance != "diagonal":
        problems.append("covariance='full' (not yet: needs 'diagonal')")
    if group_noise:
        problems.append("group_noise=True")
    if factors:
        problems.append("several grouping factors (needs one)")
    if problems:
        raise ValueError(
            "parametrization='collapsed' integrates the group effects out of a normal model "
            f"with one grouping factor; this model has {', '.join(problems)}"
        )
