"""Datasets shipped inside the package, loaded offline."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

__all__ = ["list_datasets", "load_dataset", "load_radon"]


@dataclass(frozen=True)
class _Dataset:
    filename: str
    description: str
    dtypes: dict[str, str]


_REGISTRY: dict[str, _Dataset] = {
    "radon": _Dataset(
        filename="radon_mn.csv",
        description=(
            "Minnesota household radon survey (Gelman & Hill 2007, ch. 12): 919 houses in "
            "85 counties; log_radon, floor (0 basement, 1 first floor), county, log_uranium."
        ),
        dtypes={"county": "str", "floor": "int64"},
    ),
}


def list_datasets() -> dict[str, str]:
    """Name and one-line description of every dataset shipped with hierreg.

    Returns
    -------
    dict of str to str
        Dataset name to description, in alphabetical order.
    """
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped dataset by name, without network access.

    Parameters
    ----------
    name : str
        One of the names returned by :func:`list_datasets`.

    Returns
    -------
    pandas.DataFrame
        A fresh copy; modifying it does not affect later loads.

    Raises
    ------
    ValueError
        If ``name`` is not a shipped dataset; the message lists the available ones.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        available = ", ".join(repr(n) for n in sorted(_REGISTRY))
        raise ValueError(f"unknown dataset {name!r}; available datasets: {available}")
    entry = _REGISTRY[name]
    with resources.files("hierreg").joinpath("data", entry.filename).open("rb") as fh:
        return pd.read_csv(fh, dtype=entry.dtypes)


def load_radon() -> pd.DataFrame:
    """Load Gelman's Minnesota radon data (919 rows, 85 counties).

    Columns: ``idnum``, ``county`` (upper-case name), ``fips``, ``floor`` (0 = basement,
    1 = first floor), ``radon_pCiL``, ``log_radon`` (``log(radon_pCiL + 0.1)``),
    ``uranium_ppm``, ``log_uranium``, and the survey fields ``basement``, ``typebldg``,
    ``room``, ``adjwt``.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> from hierreg.datasets import load_radon
    >>> df = load_radon()
    >>> df.shape, df["county"].nunique()
    ((919, 12), 85)
    """
    return load_dataset("radon")
