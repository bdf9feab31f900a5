"""Draws -> answers: the fitted model and everything that reads it.

* :mod:`~hierreg.results.fitted`: ``FittedModel``, the fit apart from the estimator
  (encoding, structure, posterior, priors, diagnostics), read by predictions, saving and Dask.
* :mod:`~hierreg.results.posterior`: the sampler's draws -> data units and labels.
* :mod:`~hierreg.results.predict`: predictive moments, draws and the pointwise log-likelihood.
* :mod:`~hierreg.results.persistence`: save and load (JSON + netCDF, no pickle), written
  atomically by :mod:`~hierreg.results.atomic`.
"""
