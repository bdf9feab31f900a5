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
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr
from sklearn.utils.validation import check_is_fitted

from hierreg.design.formula_check import UnsafeFormulaError
from hierreg.model.structure import (
    FactorStructure,
    ModelStructure,
    complete_priors,
)
from hierreg.results.atomic import check_replaceable, replace_folder, write_file
from hierreg.results.fitted import FittedModel
from hierreg.results.model_json import (
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    META_SCHEMAS,
    POSTERIOR_FILE,
    check_recreated_encoding,
    design_from_json,
    design_to_json,
    json_params,
    priors_dict_from_json,
    priors_dict_to_json,
    priors_from_json,
    priors_to_json,
)
from hierreg.results.saved_checks import (
    check_consistent,
    check_draws,
    check_posterior_matches,
    check_saved_formulas,
)
from hierreg.schema import plain, validate

if TYPE_CHECKING:
    from hierreg.estimator import HierarchicalLinearRegression

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "check_save_target",
    "load_estimator",
    "save_estimator",
]

ENGINE = "h5netcdf"
# Larger files are refused before they are read (a saved model of 10^6 groups is ~40 MB of
# JSON; the posterior of 10^4 groups x 10 terms x 4,000 draws is 3.2 GB)
MAX_META_BYTES = 512 * 2**20
MAX_POSTERIOR_BYTES = 64 * 2**30


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
        "params": json_params(est.get_params(deep=False)),
        "design": design_to_json(spec, fitted.idata),
        "structure": {k: v for k, v in asdict(fitted.structure).items() if k != "prior_only"},
        "priors": priors_to_json(fitted.priors),
        "default_priors": priors_dict_to_json(fitted.default_priors),
        "diagnostics": {k: plain(v) for k, v in fitted.diagnostics.items()},
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (
            [str(c) for c in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None
        ),
    }
    if spec.formula_columns:
        try:
            check_saved_formulas(meta, where="the formula")
        except UnsafeFormulaError as err:
            raise ValueError(
                f"formula {spec.formula!r} cannot be saved: {err}; pickle the estimator instead"
            ) from None
        check_recreated_encoding(spec, meta["design"], fitted.idata)
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
    check_saved_formulas(meta, where=f"{path / META_FILE}: the saved formula")
    check_consistent(meta, where=str(path / META_FILE))
    try:
        params = dict(meta["params"])
        if params.get("priors") is not None:
            params["priors"] = priors_dict_from_json(params["priors"])
        cls(**params)  # the parameters are the estimator's
        default_priors = priors_dict_from_json(meta["default_priors"])
        spec = design_from_json(meta["design"], idata)
        saved = meta["structure"]
        factors = tuple(
            FactorStructure(**{**f, "varying": tuple(f["varying"])}) for f in saved["factors"]
        )
        structure = ModelStructure(
            **{**saved, "varying": tuple(saved["varying"]), "factors": factors}
        )
        priors = complete_priors(priors_from_json(meta["priors"]), spec, structure)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"the model saved at {path} cannot be re-created ({type(err).__name__}: {err})"
        ) from None
    fitted = FittedModel(spec, structure, idata, priors, default_priors, meta["diagnostics"])
    check_posterior_matches(idata, meta, spec, structure, where=str(path))
    try:
        draws = fitted.posterior_arrays()
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(
            f"{path / POSTERIOR_FILE} does not hold the posterior {path / META_FILE} describes "
            f"({type(err).__name__}: {err})"
        ) from None
    check_draws(draws, where=str(path / POSTERIOR_FILE))
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


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version() -> str:
    from hierreg import __version__

    return __version__
