"""hierreg: Bayesian hierarchical linear regression with a scikit-learn interface.

>>> from hierreg import HierarchicalLinearRegression
>>> from hierreg.datasets import load_radon
"""

from hierreg.sampling.compile_cache import CompileCacheWarning, ensure_usable_location

ensure_usable_location()  # before PyTensor is imported: it fixes its cache folder then

from hierreg.estimator import HierarchicalLinearRegression  # noqa: E402
from hierreg.evaluation import compare, posterior_predictive_rmsd  # noqa: E402
from hierreg.many import fit_many  # noqa: E402
from hierreg.model.priors import Prior  # noqa: E402
from hierreg.sampling.diagnostics import SamplingWarning  # noqa: E402

__all__ = [
    "CompileCacheWarning",
    "HierarchicalLinearRegression",
    "Prior",
    "SamplingWarning",
    "__version__",
    "compare",
    "fit_many",
    "posterior_predictive_rmsd",
]
__version__ = "0.1.0"
