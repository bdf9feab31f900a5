"""Model -> posterior: every sampler behind one call, with its settings and Ctrl-C handling."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from hierreg.sampling.compile_cache import healing

__all__ = [
    "SAMPLERS",
    "SamplerSettings",
    "APPROXIMATIONS",
    "check_sampler_available",
    "interrupts_propagate",
    "sample_posterior",
]

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax", "advi", "pathfinder")
# Optional dependencies per sampler, and the extra that installs them
OPTIONAL = {
    "numpyro": (("jax", "numpyro"), "jax", "NUTS on JAX: CPU or GPU"),
    "blackjax": (("jax", "blackjax"), "jax", "NUTS on JAX: CPU or GPU"),
    "pathfinder": (("pymc_extras",), "pathfinder", "pymc-extras' Pathfinder"),
}
# Variational approximations: independent draws from a fitted approximation, not MCMC
APPROXIMATIONS = ("advi", "pathfinder")
ADVI_ITERATIONS = 10_000


@dataclass(frozen=True)
class SamplerSettings:
    """Everything that controls one run of the sampler."""

    sampler: str = "nutpie"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float | None = None
    seed: int | None = None
    progressbar: bool = True
    sample_kwargs: Mapping[str, Any] | None = None
    # nutpie only: doublings of each trajectory beyond its U-turn (see HIERARCHICAL_DOUBLINGS)
    extra_doublings: int = 0


# nutpie's ``extra_doublings`` for models with between-group sds (partial pooling): each
# trajectory runs twice as long past its U-turn, about twice the gradients per draw. The sds
# mix slowly (long excursions of log tau towards 0 when the data allow no group variation):
# on radon (seeds 0-7, 4 x 1000 draws) the ESS of tau[floor] was 570-955 and max R-hat
# 1.005-1.013 without it; with it, min ESS 1063-1410 and max R-hat 1.005-1.008. As rstanarm
# raises adapt_delta for stan_glmer, hierreg spends the extra gradients by default.
HIERARCHICAL_DOUBLINGS = 1


def check_sampler_available(sampler: str) -> None:
    """Raise ImportError, naming the extra to install, when a sampler's optional packages
    are missing."""
    modules, extra, what = OPTIONAL.get(sampler, ((), "", ""))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"sampler={sampler!r} needs {', '.join(missing)} ({what}); "
            f"install them with: pip install 'hierreg[{extra}]'"
        )


# Set by the SIGINT handler of :func:`interrupts_propagate` (samplers that catch the
# KeyboardInterrupt and go on with the next chain are stopped through a callback reading it)
_INTERRUPTED = threading.Event()


def _stop_if_interrupted(*args: Any, **kwargs: Any) -> None:
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_propagate() -> Iterator[None]:
    """Ctrl-C during the block reaches the caller as ``KeyboardInterrupt``.

    PyMC's samplers, nutpie's blocking call and ``pymc.fit`` catch ``KeyboardInterrupt`` and
    return the draws made so far (or fail to shape them, during tuning). Inside this block a
    SIGINT is recorded as it arrives (and handled as before), and the block then ends in
    ``KeyboardInterrupt`` whatever the sampler returned or raised: a fit never uses a partial
    posterior. Outside the main thread (where Python delivers no signals) it does nothing.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous == signal.SIG_IGN:
        yield
        return
    interrupted = _INTERRUPTED
    interrupted.clear()

    def record(signum, frame):
        interrupted.set()
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, record)
    try:
        yield
    except BaseException as err:
        if interrupted.is_set() and not isinstance(err, KeyboardInterrupt):
            raise KeyboardInterrupt("sampling was interrupted") from err
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise KeyboardInterrupt("sampling was interrupted: the estimator is left as it was")


def sample_posterior(model: pm.Model, settings: SamplerSettings) -> tuple[xr.DataTree, float]:
    """Draw from the posterior of ``model`` (or from its ADVI approximation).

    NUTS samplers go through :func:`pymc.sample` (``nuts_sampler=settings.sampler``).
    ``"advi"`` fits mean-field ADVI (:func:`pymc.fit`, ``sample_kwargs["n"]`` iterations,
    default 10,000 as in PyMC) and draws ``chains x draws`` independent values from it, laid out as
    ``chains`` pseudo-chains so that everything downstream works unchanged; the posterior
    gets the attribute ``approximation="advi"``.

    Returns
    -------
    idata : xarray.DataTree
        ``posterior`` and, for NUTS, ``sample_stats``.
    seconds : float
        Wall time of the call (compilation included).
    """
    check_sampler_available(settings.sampler)
    kwargs: dict[str, Any] = dict(settings.sample_kwargs or {})
    start = time.perf_counter()
    pymc_logger = logging.getLogger("pymc")
    level = pymc_logger.level
    if not settings.progressbar:
        pymc_logger.setLevel(logging.ERROR)
    try:
        with model, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*number of samples is too small.*")
            if settings.sampler == "advi":
                idata = _sample_advi(settings, kwargs)
            elif settings.sampler == "pathfinder":
                idata = _sample_pathfinder(settings, kwargs)
            else:
                # PyMC 6 takes the sampler's keywords as ``nuts=`` (``nuts_sampler_kwargs``
                # is its deprecated alias, and passing both is an error): merge them
                nuts = dict(kwargs.pop("nuts", {}) or {})
                nuts.update(kwargs.pop("nuts_sampler_kwargs", {}) or {})
                if settings.target_accept is not None:
                    nuts.setdefault("target_accept", settings.target_accept)
                if settings.sampler == "nutpie" and settings.extra_doublings:
                    nuts.setdefault("extra_doublings", settings.extra_doublings)
                if nuts:
                    kwargs["nuts"] = nuts
                if settings.sampler == "pymc":  # its chains catch Ctrl-C one by one
                    kwargs["callback"] = _chained(kwargs.get("callback"), _stop_if_interrupted)
                idata = healing(
                    lambda: pm.sample(
                        draws=settings.draws,
                        tune=settings.tune,
                        chains=settings.chains,
                        random_seed=settings.seed,
                        progressbar=settings.progressbar,
                        nuts_sampler=settings.sampler,
                        compute_convergence_checks=False,
                        **kwargs,
                    )
                )
    finally:
        pymc_logger.setLevel(level)
    return idata, time.perf_counter() - start


def _chained(first: Any, second: Any) -> Any:
    if first is None:
        return second

    def both(*args: Any, **kwargs: Any) -> None:
        first(*args, **kwargs)
        second(*args, **kwargs)

    return both


def _sample_advi(settings: SamplerSettings, kwargs: dict[str, Any]) -> xr.DataTree:
    n = int(kwargs.pop("n", ADVI_ITERATIONS))
    fit_start = time.perf_counter()
    approx = pm.fit(
        n=n,
        method="advi",
        random_seed=settings.seed,
        progressbar=settings.progressbar,
        **kwargs,
    )
    total = settings.chains * settings.draws
    draws = approx.sample(total, random_seed=settings.seed)
    attrs = {
        "approximation": "advi",
        "advi_iterations": n,
        "final_loss": float(np.mean(approx.hist[-max(1, n // 100) :])),
        "sampling_time": time.perf_counter() - fit_start,
    }
    return _pseudo_chains(draws["posterior"].to_dataset(), settings, attrs)


def _sample_pathfinder(settings: SamplerSettings, kwargs: dict[str, Any]) -> xr.DataTree:
    """Multi-path Pathfinder (Zhang et al. 2022) from pymc-extras: ``chains`` paths,
    ``chains x draws`` importance-resampled draws; serial paths unless ``sample_kwargs``
    say otherwise (worker processes cost more than they save on models of this size)."""
    import pymc_extras

    kwargs.setdefault("num_paths", settings.chains)
    kwargs.setdefault("parallel", False)
    fit_start = time.perf_counter()
    result = pymc_extras.fit_pathfinder(
        num_draws=settings.chains * settings.draws,
        random_seed=settings.seed,
        progressbar=settings.progressbar,
        **kwargs,
    )
    attrs = {"approximation": "pathfinder", "sampling_time": time.perf_counter() - fit_start}
    info = result["pathfinder"].to_dataset() if "pathfinder" in result.children else {}
    for name in ("pareto_k", "num_successful_paths", "compile_time", "compute_time"):
        if name in info and info[name].size == 1:  # diagnostics worth keeping
            attrs[name] = info[name].values.item()
    return _pseudo_chains(result["posterior"].to_dataset(), settings, attrs)


def _pseudo_chains(posterior: xr.Dataset, settings: SamplerSettings, attrs: dict) -> xr.DataTree:
    """Independent draws of an approximation, laid out as ``chains`` x ``draws``."""
    flat = posterior.stack(sample=("chain", "draw")).drop_vars(["sample", "chain", "draw"])
    flat = flat.isel(sample=slice(0, settings.chains * settings.draws))
    out = flat.coarsen(sample=settings.draws).construct(sample=("chain", "draw"))
    out = out.transpose("chain", "draw", ...).assign_coords(
        chain=np.arange(settings.chains), draw=np.arange(settings.draws)
    )
    out.attrs = attrs
    return xr.DataTree.from_dict({"posterior": out})
