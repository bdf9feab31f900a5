"""Compile once, refit many: a per-process cache of nutpie-compiled models.

A fit's graph is fixed by :func:`hierreg.model.graph_key` (structure, terms, group
dimension) and by its number of group slots; everything else (priors, rows, sufficient
statistics) enters through ``pm.Data`` containers. A refit with an equal key, whose groups
fit in a cached model's slots, therefore reuses that compiled model and only swaps the data
in (nutpie's ``with_data``): no PyMC graph rewrites, no numba compilation.

Slots: a model is compiled with 25% more group slots than the fit needs (rounded up to a
multiple of 8), and serves later fits with between ``slots / 1.5 - 8`` and ``slots``
groups, e.g. the folds of a cross-validation, which see different subsets of the groups.
Empty slots carry no data and parameters independent of the rest (see
:func:`hierreg.model.build_model`), so the posterior is exactly that of the unpadded model;
they cost a little sampling time and are dropped from the posterior.

The cache is bounded (least recently used first out), per process and never pickled: an
estimator holds no reference to it, so ``clone``, ``pickle`` and ``joblib`` are unaffected.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from hierreg.inference import SamplerSettings
from hierreg.nutpie_compile import compile_numba

__all__ = [
    "MAX_ENTRIES",
    "cached_model",
    "clear_cache",
    "compilations",
    "sample_compiled",
    "slots_for",
]

MAX_ENTRIES = 16
HEADROOM = 1.25
SLOT_MULTIPLE = 8

_lock = threading.RLock()
_cache: OrderedDict[tuple, _Entry] = OrderedDict()
_compilations = 0


@dataclass
class _Entry:
    model: pm.Model
    compiled: Any  # nutpie's CompiledPyMCModel
    slots: int
    lock: threading.Lock


def compilations() -> int:
    """How many models this process has compiled through the cache (for tests and
    benchmarks: a refit that reuses a model does not add one)."""
    return _compilations


def clear_cache() -> None:
    """Forget every compiled model."""
    with _lock:
        _cache.clear()


def slots_for(n_groups: int) -> int:
    """Group slots for a new compiled model: 25% headroom, a multiple of 8."""
    if n_groups <= 1:
        return n_groups
    return int(math.ceil(n_groups * HEADROOM / SLOT_MULTIPLE) * SLOT_MULTIPLE)


def _fits(slots: int, n_groups: int) -> bool:
    return n_groups <= slots and slots <= 1.5 * n_groups + SLOT_MULTIPLE


def cached_model(
    key: tuple, n_groups: int, build: Callable[[int], pm.Model]
) -> tuple[_Entry, bool]:
    """The cached compiled model for ``key`` with room for ``n_groups``, or a new one.

    ``build(slots)`` makes the PyMC model with that many group slots. Returns the entry
    and whether it was compiled now.
    """
    global _compilations
    with _lock:
        for (cached_key, slots), entry in reversed(_cache.items()):
            if cached_key == key and _fits(slots, n_groups):
                _cache.move_to_end((cached_key, slots))
                return entry, False
    slots = slots_for(n_groups)
    model = build(slots)
    compiled = compile_numba(model)
    entry = _Entry(model=model, compiled=compiled, slots=slots, lock=threading.Lock())
    with _lock:
        _compilations += 1
        _cache[(key, slots)] = entry
        while len(_cache) > MAX_ENTRIES:
            _cache.popitem(last=False)
    return entry, True


def sample_compiled(
    entry: _Entry, data: Mapping[str, np.ndarray], settings: SamplerSettings
) -> tuple[xr.DataTree, float]:
    """Sample ``entry``'s compiled model with the data ``data`` swapped in.

    The model's own containers are updated too (nutpie draws the initial point from
    them), under a per-model lock, so concurrent fits of one model take turns.

    Returns
    -------
    idata : xarray.DataTree
        ``posterior`` and ``sample_stats`` as nutpie writes them (all slots); the
        posterior's ``sampling_time`` attribute holds the sampler's seconds.
    seconds : float
        Wall time of the call.
    """
    import nutpie

    start = time.perf_counter()
    seed = settings.seed
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    ta = settings.target_accept
    kwargs: dict[str, Any] = {} if ta is None else {"target_accept": ta}
    if settings.extra_doublings:
        kwargs["extra_doublings"] = settings.extra_doublings
    with entry.lock:
        for name, value in data.items():
            entry.model[name].set_value(value)
        known = {var.name for var in entry.compiled.shared_var_keys}
        compiled = entry.compiled.with_data(**{k: v for k, v in data.items() if k in known})
        sampler_start = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=min(4, os.cpu_count() or 1),
            seed=seed,
            progress_bar=settings.progressbar,
            save_warmup=False,  # as pymc.sample (discard_tuned_samples): same layout
            **kwargs,
        )
        sampling = time.perf_counter() - sampler_start
    idata["posterior"].attrs["sampling_time"] = sampling
    return idata, time.perf_counter() - start
