"""The radon notebook's figures, for any fitted estimator (matplotlib; each returns its Axes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["forest", "group_lines", "shrinkage"]


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
