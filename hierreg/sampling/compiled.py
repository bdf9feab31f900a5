"""Compile once, refit many: a per-process cache of nutpie-compiled models.

A fit's graph is fixed by :func:`hierreg.model.graph.graph_key` (structure, terms, group
dimension) and by its number of group slots; everything else (priors, rows, sufficient
statistics) enters through ``pm.Data`` containers. A refit with an equal key, whose groups
fit in a cached model's slots, therefore reuses that compiled model and only swaps the data
in (nutpie's ``with_data``): no PyMC graph rewrites, no numba compilation.

Slots: a model is compiled with room for more groups than the fit needs, and the number of
slots depends on the number of groups alone (never on what the cache holds), so the same
data and seed give the same posterior, bit for bit, whatever other fits ran before in the
process (across processes, see ``random_state`` in the estimator's docstring: the process
that first compiles a model rounds differently from those that load it from disk). The slot
counts form a grid, ``8 * round(1.5 ** k)`` (8, 16, 24, 40, 64, 88, 136, 208, ...): a fit
with ``n`` groups gets the smallest count ``>= n``, and the folds of a cross-validation,
which see different subsets of the groups, mostly share one (radon's 85 counties and folds
of 65 to 88 counties: 88 slots). Empty slots carry no data and parameters independent of the
rest (see :func:`hierreg.model.graph.build_model`), so the posterior is exactly that of the
unpadded model; they cost a little sampling time and are dropped from the posterior.

The cache is bounded (least recently used first out), per process and never pickled: an
estimator holds no reference to it, so ``clone``, ``pickle`` and ``joblib`` are unaffected.
"""

from __future__ import annotations

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

from hierreg.sampling.compile_cache import healing
from hierreg.sampling.nutpie_compile import compile_numba
from hierreg.sampling.samplers import SamplerSettings

__all__ = [
    "MAX_ENTRIES",
    "cached_model",
    "clear_cache",
    "compilations",
    "sample_compiled",
    "slots_for",
]

MAX_ENTRIES = 16
SLOT_MULTIPLE = 8
SLOT_GROWTH = 1.5

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
    """Group slots for a fit with ``n_groups`` groups: the smallest ``8 * round(1.5 ** k)``
    that holds them (a function of ``n_groups`` alone)."""
    if n_groups <= 1:
        return n_groups
    k = 0
    while (slots := SLOT_MULTIPLE * max(1, round(SLOT_GROWTH**k))) < n_groups:
        k += 1
    return slots


def cached_model(
    key: tuple, n_groups: int, build: Callable[[int], pm.Model]
) -> tuple[_Entry, bool]:
    """The cached compiled model for ``key`` with ``slots_for(n_groups)`` slots, or a new one.

    ``build(slots)`` makes the PyMC model with that many group slots. Returns the entry
    and whether it was compiled now.
    """
    global _compilations
    slots = slots_for(n_groups)
    with _lock:
        entry = _cache.get((key, slots))
        if entry is not None:
            _cache.move_to_end((key, slots))
            return entry, False
    model = build(slots)
    compiled = healing(lambda: compile_numba(model))
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
        # not blocking: nutpie's blocking call turns Ctrl-C into a partial trace; here an
        # interrupt (or any error) cancels the sampler and propagates
        sampler = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=min(4, os.cpu_count() or 1),
            seed=seed,
            progress_bar=settings.progressbar,
            save_warmup=False,  # as pymc.sample (discard_tuned_samples): same layout
            blocking=False,
            **kwargs,
        )
        try:
            idata = sampler.wait()
        except BaseException:
            sampler.cancel()
            raise
        sampling = time.perf_counter() - sampler_start
    idata["posterior"].attrs["sampling_time"] = sampling
    return idata, time.perf_counter() - start
