"""Fitted estimator <-> a directory of plain files: JSON metadata and a netCDF posterior.

``model.json`` holds the estimator's parameters, the design encoding (formula, response, term
names, group column and labels, categorical levels), the model structure, the priors, the
diagnostics, a format version and the SHA-256 of ``posterior.nc``. ``posterior.nc`` is
``idata_`` written by xarray (h5netcdf), including ``constant_data``: the training values of
the columns the formula reads, from which the formula encoding (categorical levels, fitted
``center``/``scale`` transforms) is re-created on load, in an environment where a formula can
call nothing but formulae's transforms and NumPy ufuncs. No pickle: loading executes no code
from the files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from hierreg.design import (
    FACTOR_SEPARATOR,
    Design,
    DesignSpec,
    GroupingFactor,
    as_2d_frame,
    formula_spec_from_columns,
)
from hierreg.model import FactorStructure, ModelStructure
from hierreg.priors import DefaultPriors, Prior

if TYPE_CHECKING:
    from hierreg.estimator import HierarchicalLinearRegression

__all__ = ["FORMAT", "FORMAT_VERSION", "load_estimator", "save_estimator", "training_columns"]

FORMAT = "hierreg-model"
FORMAT_VERSION = 1
META_FILE = "model.json"
POSTERIOR_FILE = "posterior.nc"
ENGINE = "h5netcdf"


def training_columns(X: Any, columns: list[str]) -> xr.Dataset:
    """The training values of the formula's columns, as ArviZ's ``constant_data`` group.

    Categorical columns are stored as their labels; ``model.json`` keeps the categories.
    """
    frame = as_2d_frame(X)
    data = {}
    for name in columns:
        values, attrs = frame[name], {}
        if isinstance(values.dtype, pd.CategoricalDtype):
            attrs = {
                "categories": json.dumps([_plain(c) for c in values.dtype.categories]),
                "ordered": int(values.dtype.ordered),
            }
            values = values.astype(object)
        data[name] = xr.Variable("obs", values.to_numpy(), attrs=attrs)
    return xr.Dataset(data, coords={"obs": np.arange(len(frame))})


def save_estimator(est: HierarchicalLinearRegression, path: str | os.PathLike) -> Path:
    """Write ``est`` to the directory ``path``; see the module docstring for the layout."""
    check_is_fitted(est)
    path = Path(path)
    spec = est.design_
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hierreg_version": _version(),
        "params": _json_params(est.get_params(deep=False)),
        "design": _design_to_json(spec, est.idata_),
        "structure": asdict(est.structure_),
        "priors": _priors_to_json(est),
        "default_priors": _priors_dict_to_json(est.default_priors_),
        "diagnostics": {k: _plain(v) for k, v in est.diagnostics_.items()},
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (
            [str(c) for c in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None
        ),
    }
    if spec.formula_columns:
        _check_recreated_encoding(spec, meta["design"], est.idata_)
    path.mkdir(parents=True, exist_ok=True)
    posterior = path / POSTERIOR_FILE
    est.idata_.to_netcdf(posterior, engine=ENGINE)
    meta["posterior_sha256"] = _sha256(posterior)
    (path / META_FILE).write_text(json.dumps(meta, indent=2))
    return path


def load_estimator(cls: type, path: str | os.PathLike) -> HierarchicalLinearRegression:
    """Read an estimator written by :func:`save_estimator`."""
    path = Path(path)
    meta = _read_meta(path)
    posterior = path / POSTERIOR_FILE
    if not posterior.is_file():
        raise FileNotFoundError(f"{posterior} is missing: the saved model is incomplete")
    if _sha256(posterior) != meta.get("posterior_sha256"):
        raise ValueError(
            f"{posterior} does not match {path / META_FILE} (truncated, modified or from "
            "another model)"
        )
    with xr.open_datatree(posterior, engine=ENGINE) as tree:
        idata = tree.load()
    try:
        params = dict(meta["params"])
        if params.get("priors") is not None:
            params["priors"] = _priors_dict_from_json(params["priors"])
        est = cls(**params)
        default_priors = _priors_dict_from_json(meta["default_priors"])
        spec = _design_from_json(meta["design"], idata)
        saved = meta["structure"]
        factors = tuple(
            FactorStructure(**{**f, "varying": tuple(f["varying"])})
            for f in saved.get("factors", [])
        )
        structure = ModelStructure(
            **{**saved, "varying": tuple(saved["varying"]), "factors": factors}
        )
        priors = _priors_from_json(meta["priors"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"the model saved at {path} cannot be re-created ({type(err).__name__}: {err})"
        ) from None
    design = Design(X=np.empty((0, len(spec.terms))), y=None, group_index=None, spec=spec)
    est._set_fitted(None, design, structure, priors, idata, meta["diagnostics"])
    est.default_priors_ = default_priors
    if meta.get("feature_names_in") is not None:
        est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
    return est


# --- metadata ------------------------------------------------------------------------------


def _read_meta(path: Path) -> dict:
    file = path / META_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no saved hierreg model at {path} ({META_FILE} not found)")
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON (truncated or corrupted?): {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{file} is not a hierreg model file (format {FORMAT!r} expected)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{file} has format version {version!r}; this hierreg ({_version()}) reads "
            f"versions up to {FORMAT_VERSION}: upgrade hierreg"
        )
    return meta


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in params.items():
        value = list(value) if isinstance(value, tuple) else value
        if name == "priors" and isinstance(value, dict):
            value = _priors_dict_to_json(value)
        value = _plain(value)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise TypeError(
                f"parameter {name}={value!r} cannot be saved as JSON; set it to a plain "
                "value (int, float, str, list, dict) or None before saving"
            ) from None
        out[name] = value
    return out


def _labels_to_json(name: Any, levels: pd.Index) -> list:
    labels = [_plain(g) for g in levels]
    if not all(isinstance(g, str | int | float | bool) for g in labels):
        kinds = sorted({type(g).__name__ for g in labels})
        raise TypeError(
            f"group column {name!r} has labels of type {kinds}, which cannot be "
            "saved as JSON; use str or int labels"
        )
    return labels


def _design_to_json(spec: DesignSpec, idata: xr.DataTree) -> dict[str, Any]:
    groups = None if spec.groups is None else _labels_to_json(spec.group, spec.groups)
    factors = [
        {"name": _plain(f.name), "levels": _labels_to_json(f.name, f.levels)} for f in spec.factors
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
        "group": _plain(spec.group),
        "groups": groups,
        "feature_columns": [_plain(c) for c in spec.feature_columns],
        "n_columns": int(spec.n_columns),
        "formula_columns": spec.formula_columns,
        "categories": categories,
        "factors": factors,
    }


def _design_from_json(design: dict[str, Any], idata: xr.DataTree) -> DesignSpec:
    factors = tuple(
        GroupingFactor(name=f["name"], levels=pd.Index(f["levels"]))
        for f in design.get("factors", [])
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
    frame = pd.DataFrame({name: data[name].values for name in design["formula_columns"]})
    for name, levels in design.get("categories", {}).items():
        frame[name] = pd.Categorical(
            frame[name], categories=levels["categories"], ordered=levels["ordered"]
        )
    return frame


def _check_recreated_encoding(spec: DesignSpec, design: dict, idata: xr.DataTree) -> None:
    """Refuse to save what :meth:`load` could not re-create exactly."""
    frame = _training_frame(idata, design)
    try:
        recreated = _design_from_json(design, idata)
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
    """Training columns plus every grouping column, so ``transform`` accepts them (their
    values do not matter: the check compares the predictors' encoding)."""
    names = [f.name for f in spec.factors]
    if spec.groups is not None:
        names.insert(0, spec.group)
    columns = {}
    for name in names:
        parts = str(name).split(FACTOR_SEPARATOR) if name not in frame.columns else [name]
        columns.update({str(p).strip(): "level" for p in parts if p not in frame.columns})
    return frame.assign(**columns) if columns else frame


def _priors_to_json(est: HierarchicalLinearRegression) -> dict[str, Any]:
    priors, terms = est.priors_, list(est.terms_)
    return {
        "terms": terms,
        "loc": [priors[t].params["mu"] for t in terms],
        "scale": [priors[t].params["sigma"] for t in terms],
        "group_sd_scale": [priors[f"tau[{t}]"].params["sigma"] for t in terms],
        "sigma_rate": priors["sigma"].params["lam"],
    }


def _priors_dict_to_json(priors: dict) -> dict[str, Any]:
    out = {}
    for name, prior in priors.items():
        if not isinstance(prior, Prior):
            raise TypeError(f"priors[{name!r}]={prior!r} is not a hierreg.Prior: cannot save")
        out[str(name)] = {"distribution": prior.distribution, "params": dict(prior.params)}
    return out


def _priors_dict_from_json(priors: dict[str, Any]) -> dict[str, Prior]:
    return {name: Prior(p["distribution"], **p["params"]) for name, p in priors.items()}


def _priors_from_json(priors: dict[str, Any]) -> DefaultPriors:
    return DefaultPriors(
        terms=tuple(priors["terms"]),
        loc=np.asarray(priors["loc"], dtype=float),
        scale=np.asarray(priors["scale"], dtype=float),
        group_sd_scale=np.asarray(priors["group_sd_scale"], dtype=float),
        sigma_rate=float(priors["sigma_rate"]),
    )


def _plain(value: Any) -> Any:
    """NumPy scalars -> Python scalars (JSON writes those)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version() -> str:
    from hierreg import __version__

    return __version__
