"""``model.json``: the saved model's schema, and the JSON form of what it holds (parameters,
design encoding, structure, priors), written by :func:`~hierreg.results.persistence.save_estimator`
and read back, after every check, by :func:`~hierreg.results.persistence.load_estimator`."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hierreg.design.build import DesignSpec, GroupingFactor, formula_spec_from_columns
from hierreg.design.labels import FACTOR_SEPARATOR
from hierreg.model.families import LIKELIHOODS
from hierreg.model.priors import ModelPriors, Prior, check_model_priors
from hierreg.model.structure import COVARIANCES, POOLING_MODES
from hierreg.parameters import LABEL, PARAMETER_SCHEMA, PRIOR_SCHEMA
from hierreg.schema import AnyOf, Check, Choice, Fields, ListOf, MapOf, Optional, plain

__all__ = [
    "META_FILE",
    "POSTERIOR_FILE",
    "check_recreated_encoding",
    "FORMAT",
    "FORMAT_VERSION",
    "META_SCHEMAS",
    "design_from_json",
    "design_to_json",
    "json_params",
    "priors_dict_from_json",
    "priors_dict_to_json",
    "priors_from_json",
    "priors_to_json",
]


META_FILE = "model.json"
POSTERIOR_FILE = "posterior.nc"
_HEX64 = Check(str, lambda v: len(v) == 64 and all(c in "0123456789abcdef" for c in v),
               "must be 64 lowercase hex digits")  # fmt: skip


FORMAT = "hierreg-model"


# 3: any prior distribution for every parameter; 2: an integrity record covering model.json
# too; 1: the posterior's checksum only
FORMAT_VERSION = 3


_FINITE = Check(float, lambda v: np.isfinite(v), "must be a finite number")


_POSITIVE = Check(float, lambda v: np.isfinite(v) and v > 0, "must be a positive number")


_DESIGN_SCHEMA = Fields(
    {
        "formula": Optional(str),
        "response": str,
        "terms": ListOf(str, 1),
        "group": Optional((str, int)),
        "groups": Optional(ListOf(LABEL, 1)),
        "feature_columns": ListOf((str, int)),
        "n_columns": Check(int, lambda v: v >= 1, "must be a positive integer"),
        "formula_columns": ListOf(str),
        "categories": MapOf(Fields({"categories": ListOf(LABEL), "ordered": bool})),
        "factors": ListOf(Fields({"name": (str, int), "levels": ListOf(LABEL, 1)})),
    }
)


_STRUCTURE_SCHEMA = Fields(
    {
        "pooling": Choice(POOLING_MODES),
        "varying": ListOf(bool, 1),
        "parametrization": Choice(("noncentered", "centered", "mixed", "collapsed")),
        "group_noise": bool,
        "likelihood_mode": Choice(("rows", "sufficient")),
        "likelihood": Choice(LIKELIHOODS),
        "covariance": Choice(COVARIANCES),
        "factors": ListOf(Fields({"varying": ListOf(bool, 1), "covariance": Choice(COVARIANCES)})),
    }
)


# versions 1 and 2: the default distributions' numbers
_PRIORS_SCHEMA_V2 = Fields(
    {
        "terms": ListOf(str, 1),
        "loc": ListOf(_FINITE, 1),
        "scale": ListOf(_POSITIVE, 1),
        "group_sd_scale": ListOf(_POSITIVE, 1),
        "sigma_rate": _POSITIVE,
    }
)
# version 3: any distribution for every parameter
_PRIORS_SCHEMA = Fields(
    {
        "terms": ListOf(str, 1),
        "coef": ListOf(PRIOR_SCHEMA, 1),
        "tau": ListOf(PRIOR_SCHEMA, 1),
        "sigma": PRIOR_SCHEMA,
        "factor_tau": MapOf(ListOf(PRIOR_SCHEMA, 1)),
        "extra": MapOf(PRIOR_SCHEMA),
    }
)


_COMMON_FIELDS = {
    "format": Choice((FORMAT,)),
    "format_version": int,
    "hierreg_version": str,
    "params": Fields(PARAMETER_SCHEMA),
    "design": _DESIGN_SCHEMA,
    "structure": _STRUCTURE_SCHEMA,
    "default_priors": MapOf(PRIOR_SCHEMA),
    "diagnostics": MapOf(AnyOf((float, str, bool, type(None)), "a number, string or null")),
    "n_features_in": Check(int, lambda v: v >= 1, "must be a positive integer"),
    "feature_names_in": Optional(ListOf(str)),
}


_INTEGRITY = Fields({"algorithm": Choice(("sha256",)), "posterior": _HEX64, "metadata": _HEX64})
META_SCHEMAS = {
    1: Fields({**_COMMON_FIELDS, "priors": _PRIORS_SCHEMA_V2, "posterior_sha256": _HEX64}),
    2: Fields({**_COMMON_FIELDS, "priors": _PRIORS_SCHEMA_V2, "integrity": _INTEGRITY}),
    3: Fields({**_COMMON_FIELDS, "priors": _PRIORS_SCHEMA, "integrity": _INTEGRITY}),
}


def json_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in params.items():
        value = list(value) if isinstance(value, tuple) else value
        if name == "priors" and isinstance(value, dict):
            value = priors_dict_to_json(value)
        value = plain(value)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise TypeError(
                f"parameter {name}={value!r} cannot be saved as JSON; set it to a plain "
                "value (int, float, str, list, dict) or None before saving"
            ) from None
        out[name] = value
    return out


def labels_to_json(name: Any, levels: pd.Index) -> list:
    labels = [plain(g) for g in levels]
    if not all(isinstance(g, str | int | float | bool) for g in labels):
        kinds = sorted({type(g).__name__ for g in labels})
        raise TypeError(
            f"group column {name!r} has labels of type {kinds}, which cannot be "
            "saved as JSON; use str or int labels"
        )
    return labels


def design_to_json(spec: DesignSpec, idata: xr.DataTree) -> dict[str, Any]:
    groups = None if spec.groups is None else labels_to_json(spec.group, spec.groups)
    factors = [
        {"name": plain(f.name), "levels": labels_to_json(f.name, f.levels)} for f in spec.factors
    ]
    categories = {}
    if spec.formula_columns:
        if "constant_data" not in idata:
            raise ValueError("idata_ has no constant_data group: refit to save this model")
        data = idata["constant_data"]
        for name in spec.formula_columns:
            values = data[name]
            if values.dtype == object and not all(isinstance(v, str) for v in values.values):
                kinds = sorted({type(v).__name__ for v in values.values})
                raise TypeError(
                    f"column {name!r} mixes value types {kinds}; netCDF stores text columns "
                    "only as str: convert it (e.g. .astype(str)) before fitting"
                )
            if "categories" in values.attrs:
                categories[name] = {
                    "categories": json.loads(values.attrs["categories"]),
                    "ordered": bool(values.attrs["ordered"]),
                }
    return {
        "formula": spec.formula,
        "response": spec.response,
        "terms": list(spec.terms),
        "group": plain(spec.group),
        "groups": groups,
        "feature_columns": [plain(c) for c in spec.feature_columns],
        "n_columns": int(spec.n_columns),
        "formula_columns": spec.formula_columns,
        "categories": categories,
        "factors": factors,
    }


def design_from_json(design: dict[str, Any], idata: xr.DataTree) -> DesignSpec:
    factors = tuple(
        GroupingFactor(name=f["name"], levels=pd.Index(f["levels"])) for f in design["factors"]
    )
    return replace(_design_without_factors(design, idata), factors=factors)


def _design_without_factors(design: dict[str, Any], idata: xr.DataTree) -> DesignSpec:
    groups = None if design["groups"] is None else pd.Index(design["groups"])
    if not design["formula_columns"]:
        return DesignSpec(
            formula=design["formula"],
            response=design["response"],
            terms=list(design["terms"]),
            group=design["group"],
            groups=groups,
            feature_columns=list(design["feature_columns"]),
            n_columns=int(design["n_columns"]),
        )
    frame = _training_frame(idata, design)
    spec = formula_spec_from_columns(
        frame,
        formula=design["formula"],
        response=design["response"],
        group=design["group"],
        groups=groups,
        n_columns=int(design["n_columns"]),
    )
    if list(spec.terms) != list(design["terms"]):
        raise ValueError(
            f"the saved formula re-creates terms {spec.terms}, not the saved {design['terms']}"
        )
    return spec


def _training_frame(idata: xr.DataTree, design: dict[str, Any]) -> pd.DataFrame:
    if "constant_data" not in idata:
        raise ValueError("the saved posterior has no constant_data group (the formula's columns)")
    data = idata["constant_data"]
    missing = [name for name in design["formula_columns"] if name not in data]
    if missing:
        raise ValueError(f"the saved posterior's constant_data lacks the formula's {missing}")
    frame = pd.DataFrame({name: data[name].values for name in design["formula_columns"]})
    for name, levels in design["categories"].items():
        frame[name] = pd.Categorical(
            frame[name], categories=levels["categories"], ordered=levels["ordered"]
        )
    return frame


def check_recreated_encoding(spec: DesignSpec, design: dict, idata: xr.DataTree) -> None:
    """Refuse to save what :meth:`load` could not re-create exactly."""
    frame = _training_frame(idata, design)
    try:
        recreated = design_from_json(design, idata)
        full = _with_groups(frame, spec)
        same = np.array_equal(recreated.transform(full).X, spec.transform(full).X)
    except ValueError as err:
        raise ValueError(
            f"formula {spec.formula!r} cannot be saved: on load a formula may call only "
            f"formulae's transforms and NumPy ufuncs ({err}); pickle the estimator instead"
        ) from None
    if not same:
        raise ValueError(
            f"formula {spec.formula!r} does not re-create the same design from its saved "
            "columns; pickle the estimator instead"
        )


def _with_groups(frame: pd.DataFrame, spec: DesignSpec) -> pd.DataFrame:
    """Training columns plus every grouping column holding a label seen at fit, so
    ``transform`` accepts them (the check compares the predictors' encoding only)."""
    factors = [(f.name, f.levels) for f in spec.factors]
    if spec.groups is not None:
        factors.insert(0, (spec.group, spec.groups))
    columns = {}
    for name, levels in factors:
        if name in frame.columns:
            continue
        label = levels[0]
        if isinstance(name, str) and FACTOR_SEPARATOR in name and name not in spec.feature_columns:
            parts = [p.strip() for p in name.split(FACTOR_SEPARATOR)]
            values = str(label).split(FACTOR_SEPARATOR)
            if len(values) == len(parts):
                columns.update({p: v for p, v in zip(parts, values, strict=True) if p not in frame})
                continue
        columns[name] = label
    return frame.assign(**{str(k): v for k, v in columns.items()}) if columns else frame


def priors_to_json(priors: ModelPriors) -> dict[str, Any]:
    def one(prior: Prior) -> dict[str, Any]:
        return {"distribution": prior.distribution, "params": dict(prior.params)}

    return {
        "terms": list(priors.terms),
        "coef": [one(p) for p in priors.coef],
        "tau": [one(p) for p in priors.tau],
        "sigma": one(priors.sigma),
        "factor_tau": {k: [one(p) for p in v] for k, v in priors.factor_tau.items()},
        "extra": {k: one(p) for k, p in priors.extra.items()},
    }


def priors_dict_to_json(priors: dict) -> dict[str, Any]:
    out = {}
    for name, prior in priors.items():
        if not isinstance(prior, Prior):
            raise TypeError(f"priors[{name!r}]={prior!r} is not a hierreg.Prior: cannot save")
        out[str(name)] = {"distribution": prior.distribution, "params": dict(prior.params)}
    return out


def priors_dict_from_json(priors: dict[str, Any]) -> dict[str, Prior]:
    return {name: Prior(p["distribution"], **p["params"]) for name, p in priors.items()}


def priors_from_json(priors: dict[str, Any]) -> ModelPriors:
    """The saved priors (any format version), checked as a user's would be."""

    def one(p: dict[str, Any]) -> Prior:
        return Prior(p["distribution"], **p["params"])

    if "loc" in priors:  # versions 1 and 2: the default distributions
        out = ModelPriors(
            terms=tuple(priors["terms"]),
            coef=tuple(
                Prior("Normal", mu=m, sigma=s)
                for m, s in zip(priors["loc"], priors["scale"], strict=True)
            ),
            tau=tuple(Prior("HalfNormal", sigma=s) for s in priors["group_sd_scale"]),
            sigma=Prior("Exponential", lam=priors["sigma_rate"]),
        )
    else:
        out = ModelPriors(
            terms=tuple(priors["terms"]),
            coef=tuple(one(p) for p in priors["coef"]),
            tau=tuple(one(p) for p in priors["tau"]),
            sigma=one(priors["sigma"]),
            factor_tau={k: tuple(one(p) for p in v) for k, v in priors["factor_tau"].items()},
            extra={k: one(p) for k, p in priors["extra"].items()},
        )
    check_model_priors(out)
    return out
