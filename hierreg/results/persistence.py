"""Fitted estimator <-> a folder of plain files: JSON metadata and a netCDF posterior.

``model.json`` holds the estimator's parameters, the design encoding (formula, response, term
names, group column and labels, categorical levels), the model structure, the priors, the
diagnostics, a format version and an integrity record: the SHA-256 of ``posterior.nc`` and of
the rest of ``model.json`` itself. ``posterior.nc`` is ``idata_`` written by xarray
(h5netcdf), including ``constant_data``: the training values of the columns the formula
reads, from which the formula encoding (categorical levels, fitted ``center``/``scale``
transforms) is re-created on load.

Loading treats both files as untrusted data (the threat model is in docs/saving.md):

1. ``model.json`` is parsed as JSON and checked against a strict schema (every missing, extra
   or mistyped field is a ``ValueError`` naming it), then against its own checksum;
2. ``posterior.nc`` is read into memory once, checked against its checksum, and parsed from
   that copy (what is checked is what is parsed);
3. the saved formulas are checked token by token against an allow-list
   (:mod:`hierreg.design.formula_check`) before formulae evaluates anything, and evaluated in an
   environment of formulae's transforms and NumPy ufuncs only;
4. labels, terms and shapes must agree between the two files.

Saving writes both files into a fresh folder beside the target and swaps it into place
(:mod:`hierreg.results.atomic`): a failure at any point leaves the earlier model loadable.
No pickle: loading executes no code from the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from hierreg.design.build import DesignSpec, GroupingFactor, formula_spec_from_columns
from hierreg.design.formula_check import UnsafeFormulaError, check_formula_is_data
from hierreg.design.labels import FACTOR_SEPARATOR
from hierreg.model.graph import LIKELIHOODS
from hierreg.model.priors import DefaultPriors, Prior
from hierreg.model.structure import (
    COVARIANCES,
    POOLING_MODES,
    FactorStructure,
    ModelStructure,
    factor_dims,
    group_dim,
)
from hierreg.parameters import LABEL, PARAMETER_SCHEMA, PRIOR_SCHEMA
from hierreg.results.atomic import check_replaceable, replace_folder, write_file
from hierreg.results.fitted import FittedModel
from hierreg.schema import AnyOf, Check, Choice, Fields, ListOf, MapOf, Optional, plain, validate

if TYPE_CHECKING:
    from hierreg.estimator import HierarchicalLinearRegression

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "check_save_target",
    "load_estimator",
    "save_estimator",
]

FORMAT = "hierreg-model"
# 2: an integrity record covering model.json too (1: the posterior's checksum only)
FORMAT_VERSION = 2
META_FILE = "model.json"
POSTERIOR_FILE = "posterior.nc"
ENGINE = "h5netcdf"
# Larger files are refused before they are read (a saved model of 10^6 groups is ~40 MB of
# JSON; the posterior of 10^4 groups x 10 terms x 4,000 draws is 3.2 GB)
MAX_META_BYTES = 512 * 2**20
MAX_POSTERIOR_BYTES = 64 * 2**30

_HEX64 = Check(str, lambda v: len(v) == 64 and all(c in "0123456789abcdef" for c in v),
               "must be 64 lowercase hex digits")  # fmt: skip
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
        "parametrization": Choice(("noncentered", "centered", "mixed")),
        "group_noise": bool,
        "likelihood_mode": Choice(("rows", "sufficient")),
        "likelihood": Choice(LIKELIHOODS),
        "covariance": Choice(COVARIANCES),
        "factors": ListOf(Fields({"varying": ListOf(bool, 1), "covariance": Choice(COVARIANCES)})),
    }
)
_PRIORS_SCHEMA = Fields(
    {
        "terms": ListOf(str, 1),
        "loc": ListOf(_FINITE, 1),
        "scale": ListOf(_POSITIVE, 1),
        "group_sd_scale": ListOf(_POSITIVE, 1),
        "sigma_rate": _POSITIVE,
    }
)
_COMMON_FIELDS = {
    "format": Choice((FORMAT,)),
    "format_version": int,
    "hierreg_version": str,
    "params": Fields(PARAMETER_SCHEMA),
    "design": _DESIGN_SCHEMA,
    "structure": _STRUCTURE_SCHEMA,
    "priors": _PRIORS_SCHEMA,
    "default_priors": MapOf(PRIOR_SCHEMA),
    "diagnostics": MapOf(AnyOf((float, str, bool, type(None)), "a number, string or null")),
    "n_features_in": Check(int, lambda v: v >= 1, "must be a positive integer"),
    "feature_names_in": Optional(ListOf(str)),
}
META_SCHEMAS = {
    1: Fields({**_COMMON_FIELDS, "posterior_sha256": _HEX64}),
    2: Fields(
        {
            **_COMMON_FIELDS,
            "integrity": Fields(
                {"algorithm": Choice(("sha256",)), "posterior": _HEX64, "metadata": _HEX64}
            ),
        }
    ),
}


def check_save_target(path: str | os.PathLike) -> None:
    """Raise ``FileExistsError`` if :func:`save_estimator` would refuse ``path`` (a file, or a
    folder holding anything but a saved model); for callers that check before fitting."""
    check_replaceable(Path(path), {META_FILE, POSTERIOR_FILE})


def save_estimator(est: HierarchicalLinearRegression, path: str | os.PathLike) -> Path:
    """Write ``est`` to the folder ``path``; see the module docstring for the layout.

    The folder is replaced as a whole or not at all: a failure (full disk, interrupt, a
    read-only location) leaves an earlier model at ``path`` as it was. ``path`` must be new,
    empty, or hold an earlier saved model.
    """
    check_is_fitted(est)
    fitted = est.fitted_
    spec = fitted.spec
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hierreg_version": _version(),
        "params": _json_params(est.get_params(deep=False)),
        "design": _design_to_json(spec, fitted.idata),
        "structure": asdict(fitted.structure),
        "priors": _priors_to_json(fitted.priors),
        "default_priors": _priors_dict_to_json(fitted.default_priors),
        "diagnostics": {k: plain(v) for k, v in fitted.diagnostics.items()},
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (
            [str(c) for c in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None
        ),
    }
    if spec.formula_columns:
        try:
            _check_saved_formulas(meta, where="the formula")
        except UnsafeFormulaError as err:
            raise ValueError(
                f"formula {spec.formula!r} cannot be saved: {err}; pickle the estimator instead"
            ) from None
        _check_recreated_encoding(spec, meta["design"], fitted.idata)
    # serialised in memory: the netCDF library never writes to the target's disk, so a full
    # disk is an ordinary OSError from the plain write below
    posterior = _netcdf_bytes(fitted.idata)
    meta["integrity"] = {
        "algorithm": "sha256",
        "posterior": hashlib.sha256(posterior).hexdigest(),
        "metadata": _metadata_digest(meta),
    }
    text = json.dumps(meta, indent=2).encode()

    def write(folder: Path) -> None:
        write_file(folder / POSTERIOR_FILE, posterior)
        write_file(folder / META_FILE, text)

    return replace_folder(path, write, owned={META_FILE, POSTERIOR_FILE})


def load_estimator(cls: type, path: str | os.PathLike) -> HierarchicalLinearRegression:
    """Read an estimator written by :func:`save_estimator`; see the module docstring for the
    checks, all made before an estimator is returned."""
    path = Path(path)
    meta = _read_meta(path)
    idata = _read_posterior(path, meta)
    _check_saved_formulas(meta, where=f"{path / META_FILE}: the saved formula")
    _check_consistent(meta, where=str(path / META_FILE))
    try:
        params = dict(meta["params"])
        if params.get("priors") is not None:
            params["priors"] = _priors_dict_from_json(params["priors"])
        cls(**params)  # the parameters are the estimator's
        default_priors = _priors_dict_from_json(meta["default_priors"])
        spec = _design_from_json(meta["design"], idata)
        saved = meta["structure"]
        factors = tuple(
            FactorStructure(**{**f, "varying": tuple(f["varying"])}) for f in saved["factors"]
        )
        structure = ModelStructure(
            **{**saved, "varying": tuple(saved["varying"]), "factors": factors}
        )
        priors = _priors_from_json(meta["priors"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"the model saved at {path} cannot be re-created ({type(err).__name__}: {err})"
        ) from None
    fitted = FittedModel(spec, structure, idata, priors, default_priors, meta["diagnostics"])
    _check_posterior_matches(idata, meta, spec, structure, where=str(path))
    try:
        draws = fitted.posterior_arrays()
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(
            f"{path / POSTERIOR_FILE} does not hold the posterior {path / META_FILE} describes "
            f"({type(err).__name__}: {err})"
        ) from None
    _check_draws(draws, where=str(path / POSTERIOR_FILE))
    try:
        return cls.from_fitted(params, fitted, feature_names=meta["feature_names_in"])
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(
            f"{path / POSTERIOR_FILE} does not hold the posterior {path / META_FILE} describes "
            f"({type(err).__name__}: {err})"
        ) from None


# --- metadata ------------------------------------------------------------------------------


def _read_meta(path: Path) -> dict:
    file = path / META_FILE
    missing = f"no saved hierreg model at {path} ({META_FILE} not found)"
    data = _read_bytes(file, MAX_META_BYTES, missing)
    try:
        meta = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{file} is not valid JSON (truncated or corrupted?): {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{file} is not a hierreg model file (format {FORMAT!r} expected)")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(
            f"{file}: field 'format_version' must be a positive integer, got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{file} has format version {version!r}; this hierreg ({_version()}) reads "
            f"versions up to {FORMAT_VERSION}: upgrade hierreg"
        )
    validate(meta, META_SCHEMAS[version], where=str(file))
    if version >= 2 and _metadata_digest(meta) != meta["integrity"]["metadata"]:
        raise ValueError(
            f"{file} does not match its own checksum (edited, truncated or corrupted); "
            "re-save the model from the fitted estimator"
        )
    return meta


def _read_bytes(file: Path, limit: int, missing: str) -> bytes:
    """The content of ``file``, refused unread past ``limit`` bytes."""
    if not file.is_file():
        raise FileNotFoundError(missing)
    with file.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(min(size, limit) + 1)  # +1: a file that grew since is seen
    if len(data) > limit:
        raise ValueError(f"{file} is larger than hierreg reads from a saved model ({limit} bytes)")
    return data


def _netcdf_bytes(idata: xr.DataTree) -> bytes:
    """``idata`` as netCDF bytes. Under a Dask client xarray would guard the write with a
    distributed lock, which fails for an in-memory file: the local scheduler is used (the
    posterior is in memory; nothing is computed on the cluster)."""
    scheduler = contextlib.nullcontext()
    if "dask" in sys.modules:
        import dask

        scheduler = dask.config.set(scheduler="synchronous")
    with scheduler:
        return bytes(idata.to_netcdf(None, engine=ENGINE))


def _metadata_digest(meta: dict) -> str:
    """SHA-256 of ``meta`` without its integrity record, in a canonical JSON form."""
    body = {k: v for k, v in meta.items() if k != "integrity"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_posterior(path: Path, meta: dict) -> xr.DataTree:
    file = path / POSTERIOR_FILE
    missing = f"{file} is missing: the saved model is incomplete"
    data = _read_bytes(file, MAX_POSTERIOR_BYTES, missing)  # checked and parsed from this copy
    expected = (
        meta["posterior_sha256"] if "posterior_sha256" in meta else meta["integrity"]["posterior"]
    )
    if hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(
            f"{file} does not match {path / META_FILE} (truncated, modified or from another model)"
        )
    try:
        with xr.open_datatree(io.BytesIO(data), engine=ENGINE) as tree:
            idata = tree.load()
    except Exception as err:  # h5py/h5netcdf/xarray raise many kinds on a damaged file
        raise ValueError(
            f"{file} cannot be read as the netCDF posterior of a saved model "
            f"({type(err).__name__}: {err})"
        ) from None
    if "posterior" not in idata.children:
        raise ValueError(f"{file} has no 'posterior' group")
    return idata


def _check_saved_formulas(meta: dict, where: str) -> None:
    """The allow-list (:mod:`hierreg.design.formula_check`) on both saved formulas: the design's,
    evaluated on load, and the parameter, evaluated by a refit."""
    design = meta["design"]
    if design["formula"] is not None:
        check_formula_is_data(
            design["formula"], set(design["formula_columns"]), where=f"{where} (design.formula)"
        )
    formula = meta["params"]["formula"]
    if formula is not None:
        check_formula_is_data(
            formula,
            set(design["formula_columns"]),
            where=f"{where} (params.formula)",
            any_plain_name=True,
        )


def _check_consistent(meta: dict, where: str) -> None:
    """Cross-field checks the schema cannot express: lengths and labels agree."""
    design, structure, priors = meta["design"], meta["structure"], meta["priors"]
    terms = design["terms"]
    problems = []
    if len(set(terms)) != len(terms):
        problems.append(f"design.terms repeats a name: {terms}")
    if len(structure["varying"]) != len(terms):
        problems.append(
            f"structure.varying has {len(structure['varying'])} entries for {len(terms)} terms"
        )
    for name in ("loc", "scale", "group_sd_scale"):
        if len(priors[name]) != len(terms):
            problems.append(f"priors.{name} has {len(priors[name])} entries for {len(terms)} terms")
    if priors["terms"] != terms:
        problems.append(f"priors.terms {priors['terms']} differ from design.terms {terms}")
    if len(structure["factors"]) != len(design["factors"]):
        problems.append("structure.factors and design.factors differ in length")
    for i, factor in enumerate(structure["factors"]):
        if len(factor["varying"]) != len(terms):
            problems.append(f"structure.factors[{i}].varying has a wrong length")
    complete = structure["pooling"] == "complete"
    if complete != (design["groups"] is None):
        problems.append("design.groups must be null exactly under complete pooling")
    for name, labels in [("design.groups", design["groups"] or [])] + [
        (f"design.factors[{i}].levels", f["levels"]) for i, f in enumerate(design["factors"])
    ]:
        if len(set(map(_label_key, labels))) != len(labels):
            problems.append(f"{name} repeats a label")
    if (design["formula"] is None) != (not design["formula_columns"]):
        problems.append("design.formula and design.formula_columns disagree")
    unknown = sorted(set(design["categories"]) - set(design["formula_columns"]))
    if unknown:
        problems.append(f"design.categories names columns the formula does not read: {unknown}")
    names = meta["feature_names_in"]
    if names is not None and len(names) != meta["n_features_in"]:
        problems.append("feature_names_in and n_features_in disagree")
    if problems:
        raise ValueError(f"{where} is inconsistent: {problems[0]}")


def _label_key(label: Any) -> tuple:
    return (type(label).__name__, label)


def _check_posterior_matches(
    idata: xr.DataTree, meta: dict, spec: DesignSpec, structure: ModelStructure, where: str
) -> None:
    """Coordinates of ``posterior.nc`` equal the labels of ``model.json``, in order."""
    posterior = idata["posterior"].to_dataset()
    expected = {"term": list(spec.terms)}
    if structure.pooling != "complete":
        expected[group_dim(spec)] = meta["design"]["groups"]
    for fdim, factor in zip(factor_dims(spec), meta["design"]["factors"], strict=True):
        expected[fdim] = factor["levels"]
    for dim, labels in expected.items():
        if dim not in posterior.coords:
            raise ValueError(
                f"{where}: {POSTERIOR_FILE} has no coordinate {dim!r}, which {META_FILE} "
                "describes (files from different models?)"
            )
        saved = [plain(v) for v in posterior.coords[dim].values]
        if [_label_key(v) for v in saved] != [_label_key(v) for v in labels]:
            raise ValueError(
                f"{where}: the labels of {dim!r} in {POSTERIOR_FILE} differ from those in "
                f"{META_FILE} (e.g. {_first_difference(saved, labels)}); the files do not "
                "belong together"
            )


def _first_difference(a: list, b: list) -> str:
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} labels"
    i = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if _label_key(x) != _label_key(y))
    return f"position {i}: {a[i]!r} vs {b[i]!r}"


def _check_draws(draws: Any, where: str) -> None:
    """Every array predictions read is finite, and the scales positive."""
    arrays = {name: getattr(draws, name) for name in ("beta", "population", "tau", "sigma")}
    arrays.update(corr=draws.corr, **draws.noise_params)
    for name, values in arrays.items():
        if values is None:
            continue
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: the posterior draws of {name!r} are not all finite")
        if name not in ("beta", "population", "corr") and (values < 0).any():
            raise ValueError(f"{where}: the posterior draws of {name!r} are not all >= 0")
    for factor in getattr(draws, "factors", ()) or ():
        for name in ("effect", "tau"):
            values = getattr(factor, name, None)
            if values is not None and not np.isfinite(values).all():
                raise ValueError(
                    f"{where}: the posterior draws of a factor's {name!r} are not finite"
                )


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in params.items():
        value = list(value) if isinstance(value, tuple) else value
        if name == "priors" and isinstance(value, dict):
            value = _priors_dict_to_json(value)
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


def _labels_to_json(name: Any, levels: pd.Index) -> list:
    labels = [plain(g) for g in levels]
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
        {"name": plain(f.name), "levels": _labels_to_json(f.name, f.levels)} for f in spec.factors
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


def _design_from_json(design: dict[str, Any], idata: xr.DataTree) -> DesignSpec:
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


def _priors_to_json(priors: DefaultPriors) -> dict[str, Any]:
    return {
        "terms": list(priors.terms),
        "loc": [float(v) for v in priors.loc],
        "scale": [float(v) for v in priors.scale],
        "group_sd_scale": [float(v) for v in priors.group_sd_scale],
        "sigma_rate": float(priors.sigma_rate),
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


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version() -> str:
    from hierreg import __version__

    return __version__
