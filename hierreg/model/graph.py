"""Design + pooling + priors -> ``pymc.Model``. The only module that writes PyMC code.

The graph holds free parameters only (no deterministics), so it compiles and samples as
fast as the same model written by hand. It is built on the standardised design of
:mod:`hierreg.model.standardize`; :mod:`hierreg.results.posterior` maps the draws back to
data units and assembles the per-group coefficients ``beta``.

Free parameters (coordinates carry the real group labels and term names):

* complete pooling: ``beta`` (dims ``term``);
* no pooling: ``beta`` (dims ``(<group>, term)``), or ``beta_varying`` and ``beta_common``
  when only some terms vary;
* partial pooling: ``mu`` and ``tau`` (population mean and sd of each varying term) and
  ``z`` (standardised group offsets, non-centred: ``beta = mu + tau * z``) or the group
  coefficients themselves (centred); ``beta_common`` for the shared terms;
* ``sigma``: residual sd (scale of the Student-t), scalar or per group (``group_noise=True``);
* ``nu``: degrees of freedom, ``likelihood="student_t"`` only, ``Gamma(2, 0.1)``;
* per grouping factor after the first (crossed or nested groups, dims ``<factor>``):
  partial pooling: ``tau_<factor>`` (``chol_<factor>`` with ``covariance="full"``),
  ``z_<factor>`` (sums to zero over the levels; ``u_<factor>`` when centred) and
  ``zbar_<factor>`` (their mean, moved into ``mu``'s prior location: see
  :func:`_factor_effects`); no pooling: ``effect_<factor>``, sum-to-zero over the factor's
  levels with the coefficients' fixed prior scales (the first factor carries the level);
* ``y``: the observed response, dims ``obs`` (``likelihood_mode="rows"``), or
  ``y_loglik``, a potential holding the same log-likelihood computed from per-group
  sufficient statistics (``likelihood_mode="sufficient"``, see :mod:`hierreg.model.sufficient`).

Group-by-term parameters (``beta``/``beta_varying`` without pooling, ``z`` or centred
``beta`` with partial pooling) are sampled as one flat vector, dims ``group_term``, term-major
(term ``j`` of group ``g`` at ``j * n_groups + g``): every term's group coefficients are then
a contiguous 1-D slice, which is what a hand-written model uses. A ``(group, term)`` matrix
sliced by column compiles to about 40% more LLVM code and samples about 15% slower with
nutpie (radon, measured). :func:`unflatten` gives the ``(<group>, term)`` array back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hierreg.design.build import Design
from hierreg.model.centring import centring_mask
from hierreg.model.collapsed import (
    collapsed_log_likelihood,
    columnwise_log_likelihood,
    integrate_population,
)
from hierreg.model.families import LIKELIHOODS, family
from hierreg.model.priors import DISTRIBUTIONS, ModelPriors, Prior
from hierreg.model.structure import (
    FLAT_DIM,
    ModelStructure,
    complete_priors,
    factor_dims,
    factor_term_dim,
    group_dim,
    term_dims,
)
from hierreg.model.sufficient import SufficientStatistics

__all__ = [
    "build_model",
    "graph_key",
    "model_data",
    "LIKELIHOODS",
]

COLUMNWISE_MAX_TERMS = 8


def build_model(
    design: Design,
    structure: ModelStructure,
    priors: ModelPriors,
    statistics: SufficientStatistics | None = None,
    n_slots: int | None = None,
    centring: np.ndarray | None = None,
) -> pm.Model:
    """Build the PyMC model for one design.

    Every number taken from the data (priors, rows or sufficient statistics) enters through
    a ``pm.Data`` container named as in :func:`model_data`, so a compiled model can be fed
    the data of another fit with the same :func:`graph_key` (see :mod:`hierreg.sampling.compiled`).

    Parameters
    ----------
    design : Design
        Training arrays (``y`` required; ``group_index`` required unless pooling is complete).
    structure : ModelStructure
        Pooling mode, which terms vary by group, parametrisation, per-group noise.
    priors : ModelPriors
        Location/scale of every coefficient prior, between-group sd scales, sigma rate.
    statistics : SufficientStatistics, optional
        With ``structure.likelihood_mode == "sufficient"``: the per-group statistics of
        the (standardised) data; computed from ``design`` when not given.
    n_slots : int, optional
        Group slots in the graph, at least the number of groups (default: equal). Slots
        beyond the groups hold no data; their parameters are independent of everything else
        (``z ~ N(0, 1)``; centred: ``Normal(0, 1)``; no pooling: the prior), so the
        posterior of the real groups is exactly that of the model without them. Padding
        lets one compiled model serve fits with different numbers of groups.
    centring : ndarray of shape (n_groups, n_varying), optional
        With ``structure.parametrization == "mixed"``: 1 where a group samples a varying
        term centred (:func:`hierreg.model.centring.centring_mask`, computed from ``design`` when
        not given).

    Returns
    -------
    pymc.Model
    """
    spec = design.spec
    terms = np.array(spec.terms, dtype=object)
    var_idx, com_idx = structure.varying_index, structure.common_index
    var_dim, com_dim = term_dims(structure)
    gdim = group_dim(design)
    sufficient = structure.likelihood_mode == "sufficient"
    collapsed = structure.pooling == "partial" and structure.parametrization == "collapsed"
    if sufficient and not family(structure.likelihood).sufficient_statistics:
        raise ValueError(
            f"likelihood={structure.likelihood!r} has no sufficient-statistics likelihood"
        )
    n_groups = 1 if structure.pooling == "complete" else len(spec.groups)
    slots = n_groups if n_slots is None or structure.pooling == "complete" else n_slots
    if slots < n_groups:
        raise ValueError(f"n_slots={n_slots} is less than the {n_groups} groups")
    coords: dict[str, object] = {"term": list(terms)}
    if structure.pooling != "complete":
        # labels as strings (nutpie's requirement); the posterior gets the real labels back
        coords[gdim] = [str(g) for g in spec.groups] + [
            f"(slot {j})" for j in range(n_groups, slots)
        ]
        coords[var_dim] = list(terms[var_idx])
        coords[com_dim] = list(terms[com_idx])
        coords[FLAT_DIM] = np.arange(slots * len(var_idx))
    fdims = factor_dims(design) if structure.pooling != "complete" else []
    if fdims and sufficient:
        raise ValueError("several grouping factors need likelihood_mode='rows'")
    for factor, fs, fdim in zip(spec.factors, structure.factors, fdims, strict=False):
        coords[fdim] = [str(level) for level in factor.levels]
        coords[factor_term_dim(fdim)] = list(terms[fs.varying_index])
    priors = complete_priors(priors, design, structure)
    values = model_data(design, structure, priors, statistics, slots, centring)

    with pm.Model(coords=coords) as model:
        data = {
            name: pm.Data(name, value, shape=value.shape)
            if name in STATIC_SHAPE_DATA
            else pm.Data(name, value)
            for name, value in values.items()
        }
        layout = PriorLayout(priors)
        prior_values = data["prior_values"]
        coef = _VectorPrior(prior_values, layout, "coef", len(terms))
        # further grouping factors first: their deviations' means move into the locations
        factor_effects = [
            _factor_effects(
                structure, fs, coef, _VectorPrior(prior_values, layout, f"tau_{fdim}", len(terms)),
                fdim, len(factor.levels), _eta(prior_values, layout, f"corr_{fdim}"),
            )
            for factor, fs, fdim in zip(spec.factors, structure.factors, fdims, strict=False)
        ]  # fmt: skip
        shift: list = [0.0] * len(terms)
        for fs, (_, means) in zip(structure.factors, factor_effects, strict=False):
            for k, mean in zip(fs.varying_index, means or (), strict=False):
                shift[k] = shift[k] + mean
        # coefficients: per term, a scalar (shared) or a (slots,) vector (varying)
        coefficients: list = [None] * len(terms)
        shared = None  # the vector of shared coefficients, for the row-wise predictor
        if structure.pooling == "complete":
            shared = _prior_rv("beta", coef, np.arange(len(terms)), "term")
            coefficients = [shared[k] for k in range(len(terms))]
        elif collapsed:  # the group effects integrated out (hierreg.model.collapsed)
            tau_rv = _prior_rv(
                "tau", _VectorPrior(prior_values, layout, "tau", len(terms)), var_idx, var_dim
            )
            if not integrate_population(priors):
                mu = _prior_rv("mu", coef, var_idx, var_dim, shift)
                for j, k in enumerate(var_idx):
                    coefficients[k] = mu[j]
                if len(com_idx):
                    shared = _prior_rv("beta_common", coef, com_idx, com_dim, shift)
                    for j, k in enumerate(com_idx):
                        coefficients[k] = shared[j]
        else:
            name = "beta" if len(com_idx) == 0 else "beta_varying"
            mask = data.get("centring" if structure.parametrization == "mixed" else "group_mask")
            tau = _VectorPrior(prior_values, layout, "tau", len(terms))
            columns = _varying_coefficients(
                structure, coef, tau, var_idx, name, var_dim, slots, mask, shift,
                _eta(prior_values, layout, "corr"),
            )  # fmt: skip
            for column, k in zip(columns, var_idx, strict=True):
                coefficients[k] = column
            if len(com_idx):
                shared = _prior_rv("beta_common", coef, com_idx, com_dim, shift)
                for j, k in enumerate(com_idx):
                    coefficients[k] = shared[j]
        sigma_dims = gdim if structure.group_noise else None
        sigma = _scalar_rv("sigma", prior_values, layout, dims=sigma_dims)
        if structure.prior_only:
            likelihood = family(structure.likelihood)
            for name in likelihood.priors:
                _scalar_rv(name, prior_values, layout)
        elif collapsed:
            pm.Potential(
                "y_loglik", _collapsed(data, priors, coef, coefficients, var_idx, tau_rv, sigma)
            )
        elif sufficient:
            pm.Potential("y_loglik", _sufficient_log_likelihood(data, coefficients, sigma))
        else:
            ones = _ones_columns(design.X)
            g = data.get("data_g")
            eta = _linear_predictor(data, ones, g, coefficients, shared, structure)
            for h, (fs, (effects, _)) in enumerate(
                zip(structure.factors, factor_effects, strict=False)
            ):
                g_h = data[f"data_f{h}"]
                for k, effect in zip(fs.varying_index, effects, strict=True):
                    column = 1.0 if ones[k] else _design_column(data, ones, k)
                    eta = eta + column * effect[g_h]
            sigma_obs = sigma[g] if structure.group_noise else sigma
            likelihood = family(structure.likelihood)
            params = {name: _scalar_rv(name, prior_values, layout) for name in likelihood.priors}
            likelihood.observe(eta, sigma_obs, data["data_y"], params)
    return model


def model_data(
    design: Design,
    structure: ModelStructure,
    priors: ModelPriors,
    statistics: SufficientStatistics | None = None,
    n_slots: int | None = None,
    centring: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The values of the model's ``pm.Data`` containers, by name.

    Few containers, each read by basic slicing: every container is an input of the compiled
    function, and each one costs numba compile time (on radon, separate containers per
    array doubled it).

    * ``prior_values``: every prior's parameters (:class:`PriorLayout`);
    * ``likelihood_mode="sufficient"``: ``stat_values``, one row per statistic and one
      column per group slot: ``n``, ``y'y``, ``(X'y)_k`` for each term ``k``, then
      ``(X'X)_kj`` for ``k <= j`` (beyond 8 terms: ``stat_n``, ``stat_yty``, ``stat_xty``
      (slots, terms) and ``stat_xtx`` (slots, terms, terms));
    * row-wise: ``data_y``, ``data_g`` (group slot of each row) and ``data_x``, one row per
      non-constant design column (beyond 8 terms: ``data_X``, the design matrix);
    * centred partial pooling: ``group_mask`` (1 for a group, 0 for an empty slot);
    * ``parametrization="mixed"``: ``centring``, term-major like ``z`` (position
      ``k * slots + g``): 1 where group ``g`` samples term ``k`` centred
      (:func:`hierreg.model.centring.centring_mask`), 0 elsewhere and in empty slots.
    """
    n_groups = 1 if structure.pooling == "complete" else len(design.spec.groups)
    slots = n_groups if n_slots is None or structure.pooling == "complete" else n_slots
    n_terms = len(design.spec.terms)
    priors = complete_priors(priors, design, structure)
    values: dict[str, np.ndarray] = {
        "prior_values": np.asarray(PriorLayout(priors).values, dtype=float)
    }
    if structure.pooling == "partial" and structure.parametrization == "centered":
        values["group_mask"] = (np.arange(slots) < n_groups).astype(float)
    if structure.pooling == "partial" and structure.parametrization == "mixed":
        if centring is None:
            if statistics is None:
                statistics = SufficientStatistics.from_arrays(
                    design.X, design.y, design.group_index, n_groups
                )
            centring = centring_mask(statistics, structure.varying_index)
        values["centring"] = np.pad(centring, [(0, slots - n_groups), (0, 0)]).T.ravel()
    if structure.likelihood_mode == "sufficient":
        if statistics is None:
            g = design.group_index if structure.pooling != "complete" else None
            statistics = SufficientStatistics.from_arrays(design.X, design.y, g, n_groups)
        pad = slots - statistics.n_groups

        def padded(a: np.ndarray) -> np.ndarray:
            return np.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))

        if n_terms <= COLUMNWISE_MAX_TERMS:
            rows = [statistics.n, statistics.yty, *statistics.xty.T]
            rows += [statistics.xtx[:, k, j] for k, j in _upper_pairs(n_terms)]
            values["stat_values"] = padded(np.stack(rows, axis=1)).T.copy()
        else:
            values["stat_n"] = padded(statistics.n)
            values["stat_yty"] = padded(statistics.yty)
            values["stat_xty"] = padded(statistics.xty)
            values["stat_xtx"] = padded(statistics.xtx)
        return values
    values["data_y"] = np.asarray(design.y, dtype=float)
    if structure.pooling != "complete":
        values["data_g"] = np.asarray(design.group_index, dtype=np.int32)
        for h, index in enumerate(design.factor_index[: len(structure.factors)]):
            values[f"data_f{h}"] = np.asarray(index, dtype=np.int32)
    if n_terms <= COLUMNWISE_MAX_TERMS:
        varying = [k for k, ones in enumerate(_ones_columns(design.X)) if not ones]
        if varying:
            values["data_x"] = np.ascontiguousarray(design.X[:, varying].T, dtype=float)
    else:
        values["data_X"] = np.ascontiguousarray(design.X, dtype=float)
    return values


# containers whose shape is fixed by the graph key and the slots (static shapes compile
# to simpler loops); the row-wise ones change length from fit to fit
STATIC_SHAPE_DATA = ("prior_values", "group_mask", "centring", "stat_values")


def _upper_pairs(n_terms: int) -> list[tuple[int, int]]:
    return [(k, j) for k in range(n_terms) for j in range(k, n_terms)]


def graph_key(design: Design, structure: ModelStructure, priors: ModelPriors) -> tuple:
    """Everything that shapes the graph, except the number of group slots.

    Two fits with equal keys (and a common slot count) can share one compiled model: the
    structure, the prior distributions (their values are data), the term names (they label
    dimensions), the group dimension's name, and which columns are constant ones (they need
    no multiplication in the row-wise graph).
    """
    ones = () if structure.likelihood_mode == "sufficient" else _ones_columns(design.X)
    factors = ()
    if structure.factors:  # their levels are not padded: the level counts shape the graph
        levels = [len(f.levels) for f in design.spec.factors]
        factors = tuple(zip(factor_dims(design), levels, strict=True))
    form = complete_priors(priors, design, structure).form()
    return (structure, form, tuple(design.spec.terms), group_dim(design), ones, factors)


def _ones_columns(X: np.ndarray) -> tuple[bool, ...]:
    """Which design columns are all ones (an intercept): no multiplication needed."""
    if X.shape[1] > COLUMNWISE_MAX_TERMS:
        return (False,) * X.shape[1]
    return tuple(bool(np.all(X[:, k] == 1.0)) for k in range(X.shape[1]))


class PriorLayout:
    """Every prior parameter's value in one vector (the ``prior_values`` container), and
    where each sits: a vector parameter (coefficients, between-group sds) whose terms share
    one distribution stores each of its parameters as a run of one value per term; one whose
    terms mix distributions stores a carrier's (Normal or HalfNormal) location and scale and
    then each distribution's parameters (1 where a term has another distribution).
    ``nu`` and the LKJ shapes are constants of the graph instead. The default priors give
    ``[loc (terms), scale (terms), tau scale (terms), sigma rate]``."""

    def __init__(self, priors: ModelPriors) -> None:
        self.values: list[float] = []
        self.vectors: dict[str, tuple[tuple[str, ...], dict[tuple[str, str], int]]] = {}
        self.scalars: dict[str, tuple[str, dict[str, int]]] = {}
        self._vector("coef", priors.coef)
        self._vector("tau", priors.tau)
        self._scalar("sigma", priors.sigma)
        for fdim, taus in priors.factor_tau.items():
            self._vector(f"tau_{fdim}", taus)
        # the family's parameters' and the correlations' priors are unit-free and rarely
        # changed: constants of the graph (part of its key), not data
        self.constants = dict(priors.extra)

    def _run(self, values: Sequence[float]) -> int:
        start = len(self.values)
        self.values.extend(float(v) for v in values)
        return start

    def _vector(self, key: str, priors: Sequence[Prior]) -> None:
        names = tuple(p.distribution for p in priors)
        where: dict[tuple[str, str], int] = {}
        if len(set(names)) > 1:
            if "Uniform" in names:
                raise ValueError(
                    f"priors: a Uniform prior must apply to every term of {key!r} (its bounds "
                    f"need one transform for the whole vector), got {sorted(set(names))}"
                )
            carriers = [DISTRIBUTIONS[p.distribution].carrier(p.params) for p in priors]
            where["carrier", "loc"] = self._run([c[0] for c in carriers])
            where["carrier", "scale"] = self._run([c[1] for c in carriers])
        for name in sorted(set(names)):
            for param in DISTRIBUTIONS[name].params:
                where[name, param] = self._run(
                    [p.params[param] if p.distribution == name else 1.0 for p in priors]
                )
        self.vectors[key] = (names, where)

    def _scalar(self, key: str, prior: Prior) -> None:
        where = {
            param: self._run([prior.params[param]])
            for param in DISTRIBUTIONS[prior.distribution].params
        }
        self.scalars[key] = (prior.distribution, where)


class _VectorPrior:
    """A vector parameter's priors as tensors (slices of ``prior_values``), one per term."""

    def __init__(self, values, layout: PriorLayout, key: str, n_terms: int) -> None:
        self.names, where = layout.vectors[key]
        self.params = {k: _Slicer(values[i : i + n_terms]) for k, i in where.items()}
        self.support = DISTRIBUTIONS[self.names[0]].support

    def family(self, index: np.ndarray) -> str | None:
        """The distribution terms ``index`` share (None: they mix)."""
        names = {self.names[k] for k in index}
        return names.pop() if len(names) == 1 else None

    def of(self, name: str, index: np.ndarray) -> dict:
        """Distribution ``name``'s parameters for terms ``index``."""
        return {p: self.params[name, p][index] for p in DISTRIBUTIONS[name].params}

    def scale(self, index: np.ndarray):
        """A scale per term (a Normal-like spread) for terms ``index``."""
        name = self.family(index)
        if name is None:
            return self.params["carrier", "scale"][index]
        d = DISTRIBUTIONS[name]
        if not d.scales:
            return pt.ones(len(index))
        return self.params[name, d.scales[-1]][index]


def _prior_rv(name, prior: _VectorPrior, index, dims, shift=None, repeat=None):
    """The random variable ``name`` with term ``index[j]``'s prior for element ``j``
    (``repeat``: element ``i`` has the prior of ``index[repeat[i]]``); ``shift`` (a list by
    term) is added to the location of coefficient priors.

    Terms sharing one distribution: that PyMC distribution with vector parameters. Terms
    mixing distributions: a Normal (HalfNormal for scales) with each term's location and
    scale, plus a potential that replaces its density by each term's own, exactly.
    """
    index = np.asarray(index)
    shift = shift if shift is not None else [0.0] * (int(index.max()) + 1 if len(index) else 0)

    def placed(values: dict, family_name: str, terms: np.ndarray, rows=None) -> dict:
        d = DISTRIBUTIONS[family_name]
        if d.location is not None:
            values[d.location] = _shifted(values[d.location], shift, terms)
        if rows is not None:
            values = {p: v[rows] for p, v in values.items()}
        return values

    family_name = prior.family(index)
    if family_name is not None:
        if family_name == "Flat":
            return pm.Flat(name, dims=dims)
        params = placed(prior.of(family_name, index), family_name, index, repeat)
        return getattr(pm, family_name)(name, **params, dims=dims)
    loc = _shifted(prior.params["carrier", "loc"][index], shift, index)
    scale = prior.params["carrier", "scale"][index]
    if repeat is not None:
        loc, scale = loc[repeat], scale[repeat]
    if prior.support == "real":
        carrier, carrier_params = pm.Normal, {"mu": loc, "sigma": scale}
        rv = pm.Normal(name, mu=loc, sigma=scale, dims=dims)
    else:
        carrier, carrier_params = pm.HalfNormal, {"sigma": scale}
        rv = pm.HalfNormal(name, sigma=scale, dims=dims)
    elements = np.arange(len(index)) if repeat is None else np.asarray(repeat)
    correction = 0.0
    for other in sorted({prior.names[k] for k in index}):
        positions = np.flatnonzero([prior.names[k] == other for k in index])
        chosen = np.flatnonzero(np.isin(elements, positions))  # elements of that prior
        rows = np.searchsorted(positions, elements[chosen])
        params = placed(prior.of(other, index[positions]), other, index[positions], rows)
        value = rv[chosen]
        own = pt.sum(pm.logp(getattr(pm, other).dist(**params), value)) if other != "Flat" else 0
        stand_in = pm.logp(carrier.dist(**{k: v[chosen] for k, v in carrier_params.items()}), value)
        correction = correction + own - pt.sum(stand_in)
    pm.Potential(f"{name}_prior", correction)
    return rv


def _scalar_rv(name, values, layout: PriorLayout, dims=None):
    """The scalar parameter ``name``: its prior's values from ``prior_values``, or, for the
    graph's constant priors (``nu``), the values themselves."""
    if name in layout.constants:
        prior = layout.constants[name]
        return getattr(pm, prior.distribution)(name, **prior.params, dims=dims)
    distribution, where = layout.scalars[name]
    params = {p: values[i] for p, i in where.items()}
    return getattr(pm, distribution)(name, **params, dims=dims)


def _eta(values, layout: PriorLayout, key: str):
    """The LKJ shape of correlation matrix ``key`` (None where the model has none)."""
    prior = layout.constants.get(key)
    return None if prior is None else prior.params["eta"]


def _unit_sd_dist(prior: _VectorPrior, index: np.ndarray, what: str):
    """For an LKJ Cholesky factor: (the sds' scales ``s``, the unit distribution ``t`` with
    ``tau = s * t``); every term must share one scale family."""
    name = prior.family(index)
    if name is None:
        raise ValueError(
            f"covariance='full' needs one distribution for every varying term's sd of {what} "
            f"(the LKJ Cholesky prior takes one), got {sorted({prior.names[k] for k in index})}"
        )
    s, unit = DISTRIBUTIONS[name].unit_form(prior.of(name, index), xp=pt)
    return s, getattr(pm, name).dist(**unit, shape=len(index))


class _Slicer:
    """A vector tensor indexed by an array of positions with basic slices where it can
    (advanced indexing compiles to more code)."""

    def __init__(self, tensor) -> None:
        self.tensor = tensor

    def __getitem__(self, index):
        index = np.asarray(index)
        if index.ndim == 1 and len(index) and np.all(np.diff(index) == 1):
            return self.tensor[int(index[0]) : int(index[-1]) + 1]
        if index.ndim == 1 and len(index) and np.all(index == index[0]):
            return pt.repeat(self.tensor[int(index[0]) : int(index[0]) + 1], len(index))
        return self.tensor[index]


def _linear_predictor(data, ones, g, coefficients, shared, structure):
    """Row-wise ``x_i @ beta[g[i]]``, written as one would by hand."""
    var_idx, com_idx = structure.varying_index, structure.common_index
    if "data_X" in data:  # many terms: matrix products
        X = data["data_X"]
        if structure.pooling == "complete":
            return pt.dot(X, shared)
        eta = 0.0
        for k in var_idx:
            eta = eta + X[:, k] * coefficients[k][g]
        if len(com_idx):
            eta = eta + pt.dot(X[:, com_idx], shared)
        return eta
    eta = 0.0
    row = 0  # row of data_x holding column k
    for k, coefficient in enumerate(coefficients):
        value = coefficient[g] if k in var_idx and structure.pooling != "complete" else coefficient
        if ones[k]:
            eta = eta + value
        else:
            eta = eta + data["data_x"][row] * value
            row += 1
    return eta


def _design_column(data, ones, k):
    """Design column ``k`` (not a column of ones) as a row vector of the data."""
    if "data_X" in data:
        return data["data_X"][:, k]
    return data["data_x"][sum(1 for j in range(k) if not ones[j])]


def _shifted(loc, shift: list, index: np.ndarray):
    """Prior locations ``loc`` of terms ``index`` plus their shifts (see _factor_effects)."""
    parts = [shift[k] for k in index]
    if all(isinstance(p, float) and p == 0.0 for p in parts):
        return loc
    return loc + pt.stack([pt.as_tensor_variable(p, dtype="float64") for p in parts])


def _factor_effects(structure, fs, coef, tau_prior, fdim, n_levels, eta=None):
    """Deviations of a further grouping factor: (one (levels,) tensor per varying term,
    one scalar per varying term or None).

    Partial pooling: the deviations ``u = D(z)`` of the levels, with ``z`` iid ``N(0, 1)`` and
    ``D`` the factor's scaling (``tau * z``, or ``diag(s) L z`` with a full covariance), are
    sampled as ``z = z0 + w / sqrt(L)``: ``z0`` sums to zero over the levels
    (``ZeroSumNormal(1)``, named ``z_<factor>``; ``parametrization="centered"`` samples
    ``u_<factor> = tau * z0`` as ``ZeroSumNormal(tau)`` instead) and ``w ~ N(0, 1)`` per term
    (``zbar_<factor>``); that is exactly iid ``N(0, 1)``. The likelihood sees only ``D(z0)``;
    the mean ``D(w) / sqrt(L)`` (the second value) is added to the prior location of the
    terms' population coefficients (``mu``, or the shared coefficient), whose free variable
    is then their sum: same model, unit Jacobian, and the data no longer pull the grand mean
    against the mean of each factor's deviations (a ridge NUTS mixes slowly along: crossed
    items x raters gave ESS 100 for ``mu`` the direct way).
    No pooling: fixed effects, sum-to-zero (``effect_<factor>``), no mean.
    """
    var_idx = fs.varying_index
    n_var = len(var_idx)
    term_dim = factor_term_dim(fdim)
    if structure.pooling == "none":  # fixed effects, identified by summing to zero
        sd = coef.scale(var_idx)[:, None]
        effect = pm.ZeroSumNormal(f"effect_{fdim}", sigma=sd, dims=(term_dim, fdim))
        return [effect[j] for j in range(n_var)], None
    w = pm.Normal(f"zbar_{fdim}", mu=0.0, sigma=1.0, dims=term_dim)
    root = float(np.sqrt(n_levels))
    if fs.covariance == "full" and n_var > 1:
        scale, sd_dist = _unit_sd_dist(tau_prior, var_idx, f"factor {fdim!r}")
        chol, _, _ = pm.LKJCholeskyCov(
            f"chol_{fdim}", n=n_var, eta=eta, sd_dist=sd_dist, compute_corr=True,
            store_in_trace=False,
        )  # fmt: skip
        z0 = pm.ZeroSumNormal(f"z_{fdim}", sigma=1.0, dims=(term_dim, fdim))
        effects = scale[:, None] * pt.dot(chol, z0)
        means = scale * pt.dot(chol, w) / root
        return [effects[j] for j in range(n_var)], [means[j] for j in range(n_var)]
    tau = _prior_rv(f"tau_{fdim}", tau_prior, var_idx, term_dim)
    if structure.parametrization == "centered":  # u0 = tau * z0, sampled as itself
        effects = pm.ZeroSumNormal(f"u_{fdim}", sigma=tau[:, None], dims=(term_dim, fdim))
    else:
        effects = tau[:, None] * pm.ZeroSumNormal(f"z_{fdim}", sigma=1.0, dims=(term_dim, fdim))
    means = tau * w / root
    return [effects[j] for j in range(n_var)], [means[j] for j in range(n_var)]


def _collapsed(data, priors, coef, coefficients, var_idx, tau, sigma):
    """The marginal log-likelihood of ``parametrization="collapsed"``: group effects
    integrated out, and the population coefficients too under normal priors
    (:mod:`hierreg.model.collapsed`); entry by entry for a few terms, batched beyond."""
    n_terms = len(coefficients)
    integrated = integrate_population(priors)
    normal = coef.of("Normal", np.arange(n_terms)) if integrated else {}
    prior = {"prior_mean": normal.get("mu"), "prior_sd": normal.get("sigma")}
    if "stat_values" in data and len(var_idx) <= 2:
        stat = data["stat_values"]
        xty = [stat[2 + k] for k in range(n_terms)]
        xtx = {pair: stat[2 + n_terms + i] for i, pair in enumerate(_upper_pairs(n_terms))}
        return columnwise_log_likelihood(
            stat[0], stat[1], xty, xtx, var_idx, tau, sigma,
            coefficients=None if integrated else coefficients, **prior,
        )  # fmt: skip
    n, yty, xty, xtx = _statistics_tensors(data, n_terms)
    population = None if integrated else pt.stack([pt.as_tensor_variable(c) for c in coefficients])
    return collapsed_log_likelihood(
        n, yty, xty, xtx, var_idx, tau, sigma, coefficients=population, **prior
    )


def _statistics_tensors(data, n_terms: int):
    """The per-slot statistics as ``n, y'y`` (slots,), ``X'y`` (slots, terms) and ``X'X``
    (slots, terms, terms), from either layout of :func:`model_data`."""
    if "stat_values" not in data:
        return data["stat_n"], data["stat_yty"], data["stat_xty"], data["stat_xtx"]
    stat = data["stat_values"]
    pair = {p: 2 + n_terms + i for i, p in enumerate(_upper_pairs(n_terms))}
    xty = pt.stack([stat[2 + k] for k in range(n_terms)], axis=1)
    xtx = pt.stack(
        [
            pt.stack([stat[pair[min(k, j), max(k, j)]] for j in range(n_terms)], axis=1)
            for k in range(n_terms)
        ],
        axis=1,
    )
    return stat[0], stat[1], xty, xtx


def _sufficient_log_likelihood(data, coefficients, sigma):
    """Sum over group slots of the exact normal log-likelihood from ``n, X'X, X'y, y'y``.

    ``coefficients[k]`` is term ``k``'s coefficient: a scalar (shared) or one value per
    slot. The residual sum of squares of group ``g`` is
    ``y'y - 2 sum_k b_k (X'y)_k + sum_k sum_l b_k b_l (X'X)_kl``, written term by term for
    a few terms (a small graph, as by hand) and with one (slots, terms, terms) product
    beyond.
    """
    n_terms = len(coefficients)
    if "stat_values" in data:
        stat = data["stat_values"]
        n, yty = stat[0], stat[1]
        xtx = {pair: stat[2 + n_terms + i] for i, pair in enumerate(_upper_pairs(n_terms))}
        ssr = yty
        for k, b_k in enumerate(coefficients):
            ssr = ssr - 2.0 * b_k * stat[2 + k] + b_k**2 * xtx[k, k]
            for j in range(k + 1, n_terms):
                ssr = ssr + 2.0 * b_k * coefficients[j] * xtx[k, j]
    else:
        n, yty = data["stat_n"], data["stat_yty"]
        xtx, xty = data["stat_xtx"], data["stat_xty"]
        B = pt.stack([pt.broadcast_to(c, n.shape) for c in coefficients], axis=1)
        quad = pt.sum(pt.sum(B[:, :, None] * xtx, axis=1) * B, axis=1)
        ssr = yty - 2.0 * pt.sum(B * xty, axis=1) + quad
    log_norm = 0.5 * np.log(2 * np.pi)
    if sigma.ndim == 0:
        return -pt.sum(n) * (pt.log(sigma) + log_norm) - pt.sum(ssr) / (2.0 * sigma**2)
    return pt.sum(-n * (pt.log(sigma) + log_norm) - ssr / (2.0 * sigma**2))


def _varying_coefficients(
    structure, coef, tau_prior, var_idx, name, var_dim, slots, mask=None, shift=None, eta=None
):
    """Per-group coefficients of the varying terms: one 1-D tensor (slots,) per term.

    ``shift``: added to the population means' prior locations, by term (see
    :func:`_factor_effects`)."""
    n_var = len(var_idx)
    term_of = np.repeat(np.arange(n_var), slots)  # term of each flat position

    def columns(flat):
        return [flat[j * slots : (j + 1) * slots] for j in range(n_var)]

    if structure.pooling == "none":
        return columns(_prior_rv(name, coef, var_idx, FLAT_DIM, shift, repeat=term_of))
    mu = _prior_rv("mu", coef, var_idx, var_dim, shift)
    if structure.covariance == "full":
        # correlated effects: beta_g = mu + diag(s) L z_g, where L L' = diag(t) R diag(t),
        # R ~ LKJ(eta), t_k ~ the sd prior's unit form (HalfNormal(1) by default), so
        # tau_k = s_k t_k has the sd prior (HalfNormal(s_k)). L is sampled as its packed
        # lower triangle ("chol"); the data-scaled s stays outside the LKJ distribution,
        # whose initial point is a random draw of its sds.
        scale, sd_dist = _unit_sd_dist(tau_prior, var_idx, "the first grouping factor")
        chol, _, _ = pm.LKJCholeskyCov(
            "chol", n=n_var, eta=eta, sd_dist=sd_dist, compute_corr=True,
            store_in_trace=False,
        )  # fmt: skip
        z = pm.Normal("z", mu=0.0, sigma=1.0, dims=FLAT_DIM).reshape((n_var, slots))
        effects = scale[:, None] * pt.dot(chol, z)
        return [mu[j] + effects[j] for j in range(n_var)]
    tau = _prior_rv("tau", tau_prior, var_idx, var_dim)
    if structure.parametrization == "centered":
        # an empty slot (mask 0) is Normal(0, 1), independent of mu and tau
        m = pt.tile(mask, n_var)
        centre, spread = mu[term_of] * m, tau[term_of] * m + (1.0 - m)
        return columns(pm.Normal(name, mu=centre, sigma=spread, dims=FLAT_DIM))
    if structure.parametrization == "mixed":
        # per coefficient, c = 1: u = beta ~ Normal(mu, tau); c = 0: beta = mu + tau u with
        # u ~ Normal(0, 1) (empty slots: c = 0). u is Normal(0, 1) plus a potential that turns
        # its density into Normal(mu, tau) where c = 1. Term by term, with mu and tau as
        # scalars, and tau only in per-term sums: gathering them per coefficient
        # (mu[term_of]) made radon's gradient 3.4x slower than the non-centred model's, a
        # division per coefficient 1.33x, Sum(c (u - mu)^2) 1.9x (PyTensor's fusion);
        # this costs about the same as the non-centred model (1.11 vs 1.04-1.1 us).
        # u is stored as "z" and turned into the offsets (beta - mu) / tau after sampling
        # (hierreg.sampling.run.offsets_from_mixed).
        u_columns = columns(pm.Normal("z", mu=0.0, sigma=1.0, dims=FLAT_DIM))
        coefficients, correction = [], 0.0
        for j, (c, u) in enumerate(zip(columns(mask), u_columns, strict=True)):
            # over the centred u: u^2 / 2 - (u - mu)^2 / (2 tau^2) - log(tau), from the sums
            # of c u and c u^2 (the square expanded; on the standardised scale |mu| / tau is
            # moderate, so the cancellation costs a few digits at most)
            cu = c * u
            s1, s2, n_c = pt.sum(cu), pt.sum(cu * u), pt.sum(c)
            centred_sq = (s2 - 2.0 * mu[j] * s1 + n_c * mu[j] ** 2) / tau[j] ** 2
            correction = correction + 0.5 * (s2 - centred_sq) - n_c * pt.log(tau[j])
            coefficients.append(mu[j] + tau[j] * u + (cu - c * (mu[j] + tau[j] * u)))
        pm.Potential("z_centring", correction)
        return coefficients
    z = columns(pm.Normal("z", mu=0.0, sigma=1.0, dims=FLAT_DIM))
    return [mu[j] + tau[j] * z[j] for j in range(n_var)]
