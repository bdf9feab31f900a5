"""Model -> draws: samplers, compiled-model reuse and convergence diagnostics.

* :mod:`~hierreg.sampling.samplers`: ``SamplerSettings`` and every sampler behind one call.
* :mod:`~hierreg.sampling.compiled`: compile a model structure once per process, refit by
  swapping the data in.
* :mod:`~hierreg.sampling.nutpie_compile`: the lean nutpie callbacks (the only module that
  uses nutpie's private API; self-checked, with a fallback).
* :mod:`~hierreg.sampling.compile_cache`: a usable, self-healing compile cache.
* :mod:`~hierreg.sampling.mcmc_stats`: R-hat and ESS as ArviZ computes them, faster.

This package imports nothing from PyTensor at import time (``hierreg`` imports
:mod:`~hierreg.sampling.compile_cache` before PyTensor reads its settings).
"""
