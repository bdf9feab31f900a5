"""The result of a fit, apart from the estimator: what predictions, persistence and Dask read.

:class:`FittedModel` holds the fitted design encoding, the model structure, the posterior
and the priors, and answers every question asked after fitting: posterior summaries
(coefficients, population coefficients, sds, correlations), the posterior draws as arrays,
and predictions for new data (moments, draws, intervals). The estimator builds one at the
end of ``fit`` (``est.fitted_``) and reads its attributes from it; ``load`` re-creates one
from files; a Dask prediction ships it, not the estimator, to the workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hierreg.design.build import Design, DesignSpec
from hierreg.model.priors import ModelPriors, Prior
from hierreg.model.structure import (
    CORR_DIMS,
    ModelStructure,
    factor_dims,
    factor_term_dim,
    group_dim,
)
from hierreg.results.predict import (
    PosteriorArrays,
    moments,
    predict_moments,
    predict_moments_with_factors,
    predictive_draws,
)

__all__ = ["FittedModel"]


@dataclass(eq=False)
class FittedModel:
    """A fitted model: design encoding, structure, posterior, priors and diagnostics.

    Attributes
    ----------
    spec : DesignSpec
        The fitted encoding of predictors and groups.
    structure : ModelStructure
        What shaped the model (pooling, varying terms, likelihood, ...).
    idata : xarray.DataTree
        The posterior in data units, with labelled coordinates.
    priors : ModelPriors
        The priors used (data units).
    default_priors : dict of str to Prior
        The data-scaled defaults, before user priors replaced any.
    diagnostics : dict
        Convergence diagnostics and timings.
    """

    spec: DesignSpec
    structure: ModelStructure
    idata: xr.DataTree
    priors: ModelPriors
    default_priors: dict[str, Prior] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    # --- names ---------------------------------------------------------------------------

    @property
    def group_dim(self) -> str:
        return group_dim(self.spec)

    @property
    def factor_dims(self) -> list[str]:
        return factor_dims(self.spec) if self.structure.factors else []

    # --- summaries -------------------------------------------------------------------------

    def summaries(self) -> dict[str, Any]:
        """Posterior means as the estimator's fitted attributes name them: ``coef``,
        ``population_coef``, ``sigma``, ``group_correlation``, ``group_effects``, ``priors``."""
        spec, structure = self.spec, self.structure
        means = self.idata["posterior"].to_dataset().mean(("chain", "draw"))
        if structure.pooling == "complete":
            index = pd.Index(["pooled"], name=spec.group_name)
            coef = pd.DataFrame(means["beta"].values[None, :], index=index, columns=spec.terms)
        else:
            index = pd.Index(spec.groups, name=spec.group_name)
            coef = pd.DataFrame(means["beta"].values, index=index, columns=spec.terms)
        population = None
        if structure.pooling == "partial":
            values = np.empty(len(spec.terms))
            values[structure.varying_index] = means["mu"].values
            if len(structure.common_index):
                values[structure.common_index] = means["beta_common"].values
            population = pd.Series(values, index=spec.terms, name="population_coef")
        sigma = means["sigma"].values
        if sigma.ndim:
            sigma = pd.Series(sigma, index=coef.index, name="sigma")
        else:
            sigma = float(sigma)
        correlation = None
        if structure.covariance == "full":
            names = list(means["corr"][CORR_DIMS[0]].values)
            correlation = pd.DataFrame(means["corr"].values, index=names, columns=names)
        effects = {
            factor.name: pd.DataFrame(
                means[f"effect_{fdim}"].values,
                index=pd.Index(factor.levels, name=str(factor.name)),
                columns=list(means[f"effect_{fdim}"][factor_term_dim(fdim)].values),
            )
            for factor, fdim in zip(spec.factors, self.factor_dims, strict=True)
        }
        priors = self.priors.as_dict()
        return {
            "coef": coef,
            "population_coef": population,
            "sigma": sigma,
            "group_correlation": correlation,
            "group_effects": effects,
            "priors": priors,
        }

    def posterior_arrays(self) -> PosteriorArrays:
        """The posterior draws as arrays, flattened over chains and draws."""
        return PosteriorArrays.from_posterior(
            self.idata["posterior"].to_dataset(), self.structure, self.group_dim, self.factor_dims
        )

    # --- predictions -----------------------------------------------------------------------

    def encode(self, X: Any, new_groups: str) -> Design:
        """``X`` encoded with the fitted encoding; groups unseen at fit checked against
        ``new_groups`` and the pooling (``ValueError`` naming them where they cannot be
        predicted)."""
        spec = self.spec
        design = spec.transform(X)
        for h, index in enumerate(design.factor_index):
            if (index < 0).any():
                unseen = spec.unseen_groups(X, h)
                described = f"level(s) {unseen[:10]} of grouping factor {spec.factors[h].name!r}"
                self._refuse_unseen(described, new_groups)
        if design.group_index is not None and (design.group_index < 0).any():
            described = f"group(s) {spec.unseen_groups(X)[:10]} in column {spec.group!r}"
            self._refuse_unseen(described, new_groups)
            if self.structure.group_noise:
                raise ValueError(
                    f"{described} were not seen at fit, and group_noise=True gives them no "
                    "residual sd to predict with"
                )
        return design

    def _refuse_unseen(self, described: str, new_groups: str) -> None:
        """``ValueError`` for unseen groups that cannot be predicted: no population (no
        pooling), or ``new_groups="error"``."""
        if self.structure.pooling == "none":
            raise ValueError(
                f"{described} were not seen at fit; pooling='none' has no population to "
                "predict them from"
            )
        if new_groups == "error":
            raise ValueError(
                f"{described} were not seen at fit (new_groups='error'); use "
                "new_groups='population' or 'mean' to predict them"
            )

    def predict(self, X: Any, new_groups: str) -> tuple[np.ndarray, np.ndarray]:
        """Posterior-predictive mean and variance of each row (exact, from moments)."""
        design = self.encode(X, new_groups)
        group_index = _group_index(design)
        post = self.posterior_arrays()
        if design.factor_index:
            return predict_moments_with_factors(
                design.X, group_index, design.factor_index, post,
                moments(post, new_groups), new_groups,
            )  # fmt: skip
        return predict_moments(design.X, group_index, moments(post, new_groups))

    def draw_chunks(
        self,
        X: Any,
        new_groups: str,
        include_noise: bool,
        choose_draws: Callable[[int], np.ndarray],
        rng: np.random.Generator,
    ) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], int, int]:
        """(iterator of (rows, draws) chunks, number of rows, number of draws used), from the
        posterior draws ``choose_draws(n_draws)`` picks (after ``X`` is encoded)."""
        design = self.encode(X, new_groups)
        post = self.posterior_arrays()
        draw_index = choose_draws(post.n_draws)
        chunks = predictive_draws(
            design.X,
            _group_index(design),
            post,
            new_groups=new_groups,
            include_noise=include_noise,
            draw_index=draw_index,
            rng=rng,
            factor_index=design.factor_index,
        )
        return chunks, design.X.shape[0], len(draw_index)


def _group_index(design: Design) -> np.ndarray:
    if design.group_index is None:
        return np.zeros(design.X.shape[0], dtype=np.int64)
    return design.group_index
