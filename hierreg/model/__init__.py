"""Design -> PyMC model: what is sampled, on which scale, with which priors.

* :mod:`~hierreg.model.graph`: ``ModelStructure`` and the PyMC graph (``build_model``) with
  the arrays that fill it (``model_data``).
* :mod:`~hierreg.model.families`: likelihood families (normal, Student-t).
* :mod:`~hierreg.model.priors`: ``Prior`` and the data-scaled defaults.
* :mod:`~hierreg.model.standardize`: the standardised scale the sampler works on.
* :mod:`~hierreg.model.sufficient`: per-group sufficient statistics of the normal likelihood.
* :mod:`~hierreg.model.centring`: which group coefficients to sample centred.
"""
