"""Data -> design: the formula, the grouping factors and the encoding of rows.

* :mod:`~hierreg.design.build`: ``build_design`` (validated numeric design matrix,
  response, group indices) and ``DesignSpec``, the encoding a fit keeps to encode new rows.
* :mod:`~hierreg.design.grouping`: grouping factors from ``group=`` or ``(1 + x | g)`` terms.
* :mod:`~hierreg.design.formula_check`: what a formula read from a file may contain.

Nothing here knows about PyMC or sampling.
"""
