"""What a loaded model must satisfy before anything is built from it: formulas that are data
(:mod:`hierreg.design.formula_check`), a ``model.json`` consistent with itself, and a
posterior whose labels, shapes and values agree with it."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from hierreg.design.build import DesignSpec
from hierreg.design.formula_check import check_formula_is_data
from hierreg.model.structure import ModelStructure, factor_dims, group_dim
from hierreg.results.model_json import META_FILE, POSTERIOR_FILE
from hierreg.schema import plain

__all__ = [
    "check_consistent",
    "check_draws",
    "check_posterior_matches",
    "check_saved_formulas",
]


def check_saved_formulas(meta: dict, where: str) -> None:
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


def check_consistent(meta: dict, where: str) -> None:
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
    for name in ("loc", "scale", "group_sd_scale") if "loc" in priors else ("coef", "tau"):
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


def check_posterior_matches(
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


def check_draws(draws: Any, where: str) -> None:
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
