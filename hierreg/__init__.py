"""hierreg: Bayesian hierarchical linear regression with a scikit-learn interface.

>>> from hierreg import HierarchicalLinearRegression
>>> from hierreg.datasets import load_radon
"""

from hierreg.estimator import HierarchicalLinearRegression
from hierreg.evaluation import compare, posterior_predictive_rmsd
from hierreg.inference import SamplingWarning
from hierreg.many import fit_many
from hierreg.priors import Prior

__all__ = [
    "HierarchicalLinearRegression",
    "Prior",
    "SamplingWarning",
    "__version__",
    "compare",
    "fit_many",
    "posterior_predictive_rmsd",
]
__version__ = "0.1.0"
