"""Figures for any fitted estimator (matplotlib; each returns its Axes): the radon notebook's
shrinkage, group lines and forest plot, and prior predictive and prior-vs-posterior checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["forest", "group_lines", "prior_posterior", "prior_predictive", "shrinkage"]


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 5))[1]


def shrinkage(unpooled: Any, partial: Any, terms: Sequence[str] | None = None, ax=None):
    """Arrows from each group's unpooled to its partially pooled coefficients.

    Parameters
    ----------
    unpooled, partial : fitted HierarchicalLinearRegression
        ``pooling="none"`` and ``pooling="partial"`` fits on the same groups.
    terms : two term names, optional
        Axes of the plot; default the first two terms (intercept and slope for radon).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if unpooled.pooling_ == "complete" or partial.pooling_ == "complete":
        raise ValueError("shrinkage needs two grouped fits (pooling='none' and 'partial')")
    terms = list(terms or partial.terms_[:2])
    if len(terms) != 2 or any(t not in partial.terms_ for t in terms):
        raise ValueError(f"terms must name two of {partial.terms_}, got {terms}")
    start = unpooled.coef_.loc[partial.coef_.index, terms].to_numpy()
    end = partial.coef_[terms].to_numpy()
    ax = _axes(ax)
    ax.scatter(start[:, 0], start[:, 1], s=12, color="C0", label="no pooling")
    ax.scatter(end[:, 0], end[:, 1], s=12, color="C1", label="partial pooling")
    for (x0, y0), (x1, y1) in zip(start, end, strict=True):
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(arrowstyle="->", color="0.5", lw=0.6, alpha=0.7),
        )
    if partial.population_coef_ is not None:
        mu = partial.population_coef_[terms].to_numpy()
        ax.scatter([mu[0]], [mu[1]], marker="X", s=80, color="k", label="population mean")
    ax.set_xlabel(terms[0])
    ax.set_ylabel(terms[1])
    ax.set_title("Shrinkage of group coefficients")
    ax.legend(loc="best", fontsize="small")
    return ax


def group_lines(
    *estimators: Any,
    groups: Sequence[Any],
    x: str,
    data: pd.DataFrame | None = None,
    n_lines: int = 30,
    random_state: int = 0,
    axes=None,
):
    """Per-group panels: data, posterior mean line and posterior lines of each estimator.

    The formula may use only ``x`` (and the group column); each estimator's line is
    ``E[y | x, group]``, evaluated with :meth:`predict` and :meth:`predict_draws`.

    Returns
    -------
    ndarray of matplotlib Axes, one per group
    """
    if not estimators:
        raise ValueError("group_lines needs at least one fitted estimator")
    group_col = next((e.design_.group for e in estimators if e.design_.group is not None), None)
    if axes is None:
        import matplotlib.pyplot as plt

        axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.5), sharey=True)[1]
    axes = np.atleast_1d(axes)
    if data is not None:
        lo, hi = data[x].min(), data[x].max()
    else:
        lo, hi = 0.0, 1.0
    grid = np.linspace(lo, hi, 20)
    for ax, group in zip(axes, groups, strict=True):
        if data is not None and group_col is not None:
            rows = data[data[group_col] == group]
            ax.scatter(rows[x], rows[estimators[0].design_.response], s=10, color="k", alpha=0.5)
        frame = pd.DataFrame({x: grid})
        if group_col is not None:
            frame[group_col] = group
        for k, est in enumerate(estimators):
            color = f"C{k}"
            draws = est.predict_draws(
                frame, include_noise=False, n_draws=n_lines, random_state=random_state
            )
            ax.plot(grid, draws.T, color=color, alpha=0.08, lw=0.8)
            ax.plot(grid, est.predict(frame), color=color, lw=2, label=est.pooling_)
        ax.set_title(str(group))
        ax.set_xlabel(x)
        if data is not None:  # keep the data in view; prior-driven lines may run far off
            y = data[estimators[0].design_.response]
            margin = 0.5 * (y.max() - y.min())
            ax.set_ylim(y.min() - margin, y.max() + margin)
    axes[0].legend(fontsize="small")
    return axes


def forest(estimator: Any, term: str = "Intercept", prob: float = 0.9, ax=None):
    """Posterior mean and central interval of one term's coefficient for every group.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if estimator.pooling_ == "complete":
        raise ValueError("forest needs a grouped fit (pooling='none' or 'partial')")
    if term not in estimator.terms_:
        raise ValueError(f"term {term!r} is not one of {estimator.terms_}")
    beta = estimator.idata_["posterior"]["beta"].sel(term=term)
    flat = beta.stack(sample=("chain", "draw"))
    lower = flat.quantile((1 - prob) / 2, dim="sample").values
    upper = flat.quantile((1 + prob) / 2, dim="sample").values
    mean = flat.mean("sample").values
    order = np.argsort(mean)
    labels = np.asarray(estimator.groups_)[order]
    ax = _axes(ax)
    position = np.arange(len(order))
    ax.hlines(position, lower[order], upper[order], color="C0", lw=1)
    ax.plot(mean[order], position, "o", color="C0", ms=3)
    if estimator.population_coef_ is not None:
        ax.axvline(estimator.population_coef_[term], color="k", lw=0.8, ls="--")
    ax.set_yticks(position)
    ax.set_yticklabels(labels, fontsize=5)
    ax.set_xlabel(f"{term} ({prob:.0%} interval)")
    ax.set_title(f"{term} by {estimator.design_.group_name} ({estimator.pooling_} pooling)")
    return ax


def prior_predictive(tree: Any, n_draws: int = 50, ax=None, random_state: Any = 0):
    """Densities of the response drawn from the prior (``n_draws`` thin lines) against the
    observed response (thick line): the output of
    :meth:`~hierreg.HierarchicalLinearRegression.sample_prior_predictive`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    observed = np.asarray(tree["observed_data"]["y"].values, dtype=float)
    draws = tree["prior_predictive"]["y"].values.reshape(-1, observed.size)
    rng = np.random.default_rng(random_state)
    chosen = rng.choice(len(draws), size=min(n_draws, len(draws)), replace=False)
    low, high = np.quantile(draws[chosen], [0.01, 0.99])
    low, high = min(low, observed.min()), max(high, observed.max())
    bins = np.linspace(low, high, 60)
    centres = (bins[1:] + bins[:-1]) / 2
    ax = _axes(ax)
    for i, row in enumerate(draws[chosen]):
        density, _ = np.histogram(row, bins=bins, density=True)
        ax.plot(
            centres,
            density,
            color="C1",
            alpha=0.2,
            lw=0.8,
            label="prior predictive" if i == 0 else None,
        )
    density, _ = np.histogram(observed, bins=bins, density=True)
    ax.plot(centres, density, color="k", lw=2, label="observed")
    ax.set_xlabel("response")
    ax.set_ylabel("density")
    ax.set_title("prior predictive check")
    ax.legend()
    return ax


def prior_posterior(estimator: Any, prior: Any, var_names: Sequence[str] | None = None, axes=None):
    """The prior (from :meth:`~hierreg.HierarchicalLinearRegression.sample_prior_predictive`)
    and the posterior of each hyperparameter, one panel per scalar: population means
    ``mu``, between-group sds ``tau`` (and ``tau_<factor>``), the noise ``sigma``, ``nu``.

    Parameters
    ----------
    estimator : fitted HierarchicalLinearRegression
    prior : xarray.DataTree
        The prior draws of the same model (its ``prior`` group).
    var_names : list of str, optional
        Default: every one of ``mu``, ``tau``, ``tau_*``, ``sigma``, ``nu`` (``beta`` under
        complete pooling) in the posterior.
    axes : array of matplotlib Axes, optional

    Returns
    -------
    ndarray of matplotlib.axes.Axes
    """
    posterior = estimator.idata_["posterior"]
    prior_draws = prior["prior"]
    if var_names is None:
        wanted = ["mu", "tau", "sigma", "nu"] + sorted(
            v for v in posterior.data_vars if v.startswith("tau_")
        )
        if estimator.pooling_ == "complete":
            wanted.insert(0, "beta")
        var_names = [v for v in wanted if v in posterior.data_vars]
    panels = []
    for name in var_names:
        if name not in posterior.data_vars or name not in prior_draws.data_vars:
            raise ValueError(f"{name!r} is not in both the posterior and the prior")
        var = posterior[name]
        extra = [d for d in var.dims if d not in ("chain", "draw")]
        if not extra:
            panels.append((name, {}))
            continue
        if len(extra) > 1:
            raise ValueError(f"{name!r} has several dimensions {extra}: one panel per scalar")
        for label in var[extra[0]].values:
            panels.append((f"{name}[{label}]", {extra[0]: label}))
    if axes is None:
        import matplotlib.pyplot as plt

        cols = min(3, len(panels))
        rows = -(-len(panels) // cols)
        axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.6 * rows), squeeze=False)[1]
    axes = np.atleast_1d(axes).ravel()
    for ax, (title, where) in zip(axes, panels, strict=False):
        name = title.split("[")[0]
        post = np.ravel(posterior[name].sel(where).values)
        pri = np.ravel(prior_draws[name].sel(where).values)
        low, high = np.quantile(np.concatenate([pri, post]), [0.005, 0.995])
        low, high = min(low, post.min()), max(high, post.max())
        bins = np.linspace(low, high, 60)
        ax.hist(pri, bins=bins, density=True, alpha=0.5, color="C1", label="prior")
        ax.hist(post, bins=bins, density=True, alpha=0.6, color="C0", label="posterior")
        ax.set_title(title, fontsize=9)
        ax.set_yticks([])
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    axes[0].figure.tight_layout()
    return axes
