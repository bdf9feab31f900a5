"""Shared seeded data and small session-scoped fits, so the suite stays fast."""

import warnings

import numpy as np
import pandas as pd
import pytest

from hierreg import HierarchicalLinearRegression, SamplingWarning
from hierreg.datasets import load_radon

# Small but honest sampler settings for tests: 2 chains, a few hundred draws, fixed seed.
FAST = dict(draws=300, tune=300, chains=2, progressbar=False, random_state=1)


def fit_quietly(est, *args):
    """Fit, ignoring convergence warnings (tests assert diagnostics themselves)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return est.fit(*args)


def simulate_groups(n_groups=8, n_per_group=25, mu=(1.0, -0.5), tau=(0.6, 0.3), sigma=0.5, seed=0):
    """Varying-intercept-and-slope data of known truth.

    Returns the frame (columns y, x, g) and the true per-group coefficients (DataFrame).
    """
    rng = np.random.default_rng(seed)
    labels = [f"g{j:02d}" for j in range(n_groups)]
    coef = rng.normal(mu, tau, size=(n_groups, 2))
    g = np.repeat(np.arange(n_groups), n_per_group)
    x = rng.normal(size=g.size)
    y = coef[g, 0] + coef[g, 1] * x + rng.normal(0, sigma, size=g.size)
    frame = pd.DataFrame({"y": y, "x": x, "g": np.array(labels)[g]})
    truth = pd.DataFrame(coef, index=pd.Index(labels, name="g"), columns=["Intercept", "x"])
    return frame, truth


@pytest.fixture(scope="session")
def radon():
    return load_radon()


@pytest.fixture(scope="session")
def simulated():
    return simulate_groups()


@pytest.fixture(scope="session")
def radon_fits(radon):
    """One small fit per pooling mode on radon (shared by many tests; do not mutate)."""
    fits = {}
    for pooling in ("complete", "none", "partial"):
        est = HierarchicalLinearRegression(
            "log_radon ~ floor", group="county", pooling=pooling, **FAST
        )
        fits[pooling] = fit_quietly(est, radon)
    return fits


@pytest.fixture
def no_sampling(monkeypatch):
    """Fail the test if a PyMC model is built or sampled (errors must come first)."""
    import hierreg.sampling.run as run_module

    def fail(*args, **kwargs):
        raise AssertionError("a PyMC model was built or sampled")

    monkeypatch.setattr(run_module, "build_model", fail)
    monkeypatch.setattr(run_module, "sample_posterior", fail)


# Graph-level checks (log densities, gradients) evaluate a handful of points: PyTensor's
# FAST_COMPILE mode compiles in a fraction of the time the default numba backend takes to
# compile and JIT (radon-sized models: 1.8 s vs 13 s cold), and computes the same values.
CHECK_MODE = "FAST_COMPILE"


def logp_fn(model, **kwargs):
    """``model.compile_logp`` for checking values, not for sampling."""
    return model.compile_logp(mode=CHECK_MODE, **kwargs)


def dlogp_fn(model, **kwargs):
    """``model.compile_dlogp`` for checking values, not for sampling."""
    return model.compile_dlogp(mode=CHECK_MODE, **kwargs)
