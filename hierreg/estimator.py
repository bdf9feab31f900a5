"""The scikit-learn facade. ``fit`` is the data path, one call per step:

parameters -> options (:mod:`hierreg.options`) -> design (:mod:`hierreg.design`) -> structure
and priors (:mod:`hierreg.model`) -> draws (:mod:`hierreg.sampling`) -> a
:class:`~hierreg.results.fitted.FittedModel` (:mod:`hierreg.results`), which every fitted
attribute, prediction and saved file reads.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted, validate_data

from hierreg.design.build import Design, DesignSpec, build_design, check_constant_within_groups
from hierreg.design.frames import as_2d_frame
from hierreg.design.labels import factor_columns
from hierreg.distributed import (
    check_dask_fit,
    is_dask_collection,
    predict_dask,
    statistics_from_dask,
)
from hierreg.model.priors import check_proper
from hierreg.model.standardize import data_scale
from hierreg.model.structure import resolve_priors, resolve_structure
from hierreg.options import FitOptions, fit_options
from hierreg.parameters import check_choice
from hierreg.results.fitted import FittedModel
from hierreg.results.persistence import load_estimator, save_estimator
from hierreg.results.posterior import posterior_in_data_units
from hierreg.results.predict import PosteriorArrays
from hierreg.sampling.diagnostics import fit_diagnostics
from hierreg.sampling.run import sample_model
from hierreg.sampling.samplers import interrupts_propagate

__all__ = ["HierarchicalLinearRegression"]


class HierarchicalLinearRegression(RegressorMixin, BaseEstimator):
    """Bayesian hierarchical linear regression with complete, no or partial pooling.

    One PyMC model, sampled with NUTS (nutpie by default), for every pooling mode: the
    no-pooling model fits all groups at once with a group-by-term coefficient array.

    Model, for row ``i`` in group ``g[i]`` with design row ``x_i``::

        y_i ~ Normal(x_i @ beta[g[i]], sigma)      (or StudentT(nu, ...), likelihood=)

    * ``pooling="complete"``: ``beta[g] = beta`` for all groups (the group is ignored).
    * ``pooling="none"``: ``beta[g, k] ~ Normal(m_k, s_k)`` independently per group.
    * ``pooling="partial"``: ``beta[g, k] ~ Normal(mu_k, tau_k)``,
      ``mu_k ~ Normal(m_k, s_k)``, ``tau_k ~ HalfNormal(s_k / 2.5)``; sampled non-centred
      (``beta = mu + tau * z``, ``z ~ Normal(0, 1)``) or centred per group and term
      (``parametrization``).

    Terms not listed in ``varying`` are shared by all groups: ``beta_k ~ Normal(m_k, s_k)``.

    **Default priors** (weakly informative, scaled to the data as in rstanarm and bambi),
    with ``s_y = sd(y)``, ``s_k = sd(x_k)``, ``xbar_k = mean(x_k)`` (a zero sd counts as 1):
    slopes ``m_k = 0``, ``s_k' = 2.5 s_y / s_k``; intercept ``m = mean(y)``,
    ``s = sqrt((2.5 s_y)^2 + sum_k (2.5 s_y xbar_k / s_k)^2)``; residual sd
    ``sigma ~ Exponential(1 / s_y)``. Rescaling ``y`` or ``x`` rescales the priors, so the
    sampler behaves the same for a response in thousands or in thousandths. The priors used
    are in ``priors_`` after fitting.

    Parameters
    ----------
    formula : str or None, default=None
        ``"y ~ x1 + x2"`` (response taken from ``X`` when ``y`` is None), or right-hand side
        only (``"~ x1 + x2"`` or ``"x1 + x2"``) with ``y`` given to :meth:`fit`. Parsed with
        formulae (categoricals, ``C(...)``, interactions, transforms; ``0 +`` drops the
        intercept). None: ``X`` is numeric; every column but ``group`` is a feature and an
        intercept is added.
    group : hashable, list or None, default=None
        Grouping column of ``X`` (a name, or a position for arrays). None means one group:
        complete pooling whatever ``pooling`` says. A list gives several grouping factors:
        crossed (``["item", "rater"]``) or nested (``["state", "state:county"]``, where
        ``"a:b"``, when not a column, is the interaction of columns ``a`` and ``b``, so a
        county name repeated in two states is two groups). The first factor's coefficients
        are ``coef_``; each further factor adds zero-centred deviations of its varying terms
        (``Normal(0, tau_<factor>)`` under partial pooling, sum-to-zero fixed effects under no
        pooling; see :mod:`hierreg.design.grouping`). A formula with group-specific terms,
        ``"y ~ x + (1 + x | g1) + (1 | g2)"`` or ``"(1 | state/county)"``, defines the
        factors itself; ``group`` must then be None.
    pooling : {"partial", "complete", "none"}, default="partial"
        Applies to every grouping factor.
    varying : "all", list of str, or dict, default="all"
        Terms whose coefficients vary by group (e.g. ``["Intercept"]`` for varying
        intercepts). A formula term name such as ``"C(x)"`` stands for all its columns.
        With several factors, a list applies to each, and a dict maps a factor to its own
        (factors it leaves out: ``"all"``).
    parametrization : {"auto", "noncentered", "centered", "collapsed"}, default="auto"
        How the partial-pooling group coefficients are sampled (the posterior is the same).
        ``"auto"`` chooses per group and term before sampling: centred where the group's
        own data pin the coefficient (a moment estimate of ``tau_k^2`` times the group's
        precision for it, over ``sigma^2``, above 4), non-centred elsewhere (see
        :mod:`hierreg.model.centring`); with ``covariance="full"`` it means ``"noncentered"``.
        Non-centred suits groups of a few rows (radon), centred groups of many rows (1,000
        groups of 1,000 rows: non-centred R-hat 1.05, auto 1.01). ``"collapsed"``: the group
        effects (and normal-prior population coefficients) integrated out exactly, NUTS on
        the sds only, the coefficients drawn afterwards from their conditional normal
        (normal likelihood, one grouping factor, diagonal covariance; see
        :mod:`hierreg.model.collapsed`). ``posterior["z"]`` is ``(beta - mu) / tau`` in every
        case but ``"centered"`` (no ``z``).
    group_noise : bool, default=False
        A residual sd per group instead of one shared sd (ill-posed for groups of one or
        two rows: expect divergences).
    draws, tune, chains : int, default=1000, 1000, 4
        Posterior draws and tuning steps per chain, and number of chains.
    target_accept : float in (0, 1) or None, default=None
        NUTS target acceptance rate; None keeps the sampler's default.
    sampler : {"nutpie", "pymc", "numpyro", "blackjax", "advi", "pathfinder"}, default="nutpie"
        ``"nutpie"`` is PyMC 6's default NUTS engine (compiled once per model structure and
        process: refits swap the data in, see :mod:`hierreg.sampling.compiled`); ``"pymc"`` is
        PyMC's own NUTS; ``"numpyro"`` and ``"blackjax"`` run NUTS on JAX (CPU or GPU;
        ``pip install 'hierreg[jax]'``). ``"advi"`` is a fast mean-field variational
        approximation, not MCMC: ``diagnostics_["approximate"]`` is True and no convergence
        warning is raised (its independent draws always look converged).
        ``"pathfinder"`` is pymc-extras' multi-path Pathfinder (``pip install
        'hierreg[pathfinder]'``; one path per chain), also labelled approximate; its
        importance-sampling Pareto k is ``diagnostics_["pareto_k"]``, and above 0.7 a
        ``SamplingWarning`` says the approximation is unreliable.
    random_state : int, RandomState, Generator or None, default=None
        Seed. The same data, settings and seed give a bit-identical posterior within a
        process whatever ran before (compiled models are reused, and their group slots
        depend on the number of groups alone), and in every process that finds the model in
        the disk compile cache. The one process that first compiles a model structure on a
        machine draws a different, equally valid posterior: PyTensor's fast-math code rounds
        differently when compiled fresh than when loaded from the cache.
        ``PYTENSOR_FLAGS=numba__fastmath=False`` removes that difference, at about 3x the
        sampling time of radon's partial pooling.
    progressbar : bool, default=True
    sample_kwargs : dict or None, default=None
        Passed through to :func:`pymc.sample` (e.g. ``{"init": "adapt_diag"}``).
    new_groups : {"population", "mean", "error"}, default="population"
        How predictions treat a group not seen at fit (read at predict time, so it can be
        changed with ``set_params`` without refitting):

        ===========  =========================================  ===================
        pooling      ``"population"`` / ``"mean"``               ``"error"``
        ===========  =========================================  ===================
        complete     the pooled coefficients (groups ignored)    same
        partial      ``"population"``: per draw, a fresh group   ``ValueError``
                     from ``Normal(mu, tau)`` shared by all its  listing the unseen
                     rows (mean ``mu``, wider intervals);        labels
                     ``"mean"``: ``mu`` only (lme4's
                     ``re.form=NA``)
        none         ``ValueError`` (no population)              ``ValueError``
        ===========  =========================================  ===================

        A missing (NaN/None) group is always a ``ValueError``, as is an unseen group with
        ``group_noise=True``.
    store_log_likelihood : bool or "auto", default="auto"
        Store the pointwise log-likelihood in ``idata_["log_likelihood"]`` (computed in
        numpy after sampling) for LOO comparison with :func:`hierreg.compare`. It holds
        one value per posterior draw and row: ``"auto"`` stores it when that is at most
        10^8 values (800 MB; radon: 4000 x 919), and skips it for larger data.
    priors : dict of str to hierreg.Prior or None, default=None
        Priors replacing the defaults, in data units, by parameter name as in ``idata_``: a
        term (``"Intercept"``, ``"floor"``: the coefficient, or its population mean under
        partial pooling) takes ``Normal``, ``StudentT``, ``Cauchy``, ``Laplace`` or ``Flat``;
        ``"tau"`` (every term), ``"tau[<term>]"``, ``"tau_<factor>"``,
        ``"tau_<factor>[<term>]"``, ``"sigma"`` and ``"nu"`` take ``HalfNormal``,
        ``HalfCauchy``, ``HalfStudentT``, ``Exponential``, ``Gamma``, ``InverseGamma``,
        ``LogNormal`` or ``Uniform``; ``"corr"``/``"corr_<factor>"`` take ``LKJ`` (PyMC's
        parameter names: ``Prior("HalfCauchy", beta=1)``). The sampler works on a
        standardised scale and every prior is mapped to it exactly (see
        :mod:`hierreg.model.priors`). A name the model lacks, a distribution that does not fit
        the parameter or bad parameters are a ``ValueError`` listing the valid ones.
        ``default_priors_`` shows the defaults; :meth:`sample_prior_predictive` draws from
        the priors.
    group_predictors : list of str or None, default=None
        Columns constant within each group (radon: the county's ``log_uranium``) that
        predict the group intercepts: ``alpha_g ~ Normal(gamma_0 + gamma' u_g, tau)``. Fitted
        as shared terms of the formula (``y = alpha_g + gamma' u_g + ...`` is the same
        model), so ``coef_["Intercept"]`` is ``alpha_g`` without ``gamma' u_g`` and
        ``coef_[u]`` is ``gamma``; a new group's ``u`` is read from ``X`` at predict time.
        A column that varies within a group is a ``ValueError`` naming the column and a
        group where it varies. Needs a formula and a group; the columns cannot be listed in
        ``varying``.
    likelihood_mode : {"auto", "rows", "sufficient"}, default="auto"
        How the normal log-likelihood enters the sampler; the model is exactly the same.
        ``"rows"``: row by row (gradient cost grows with the rows). ``"sufficient"``: from
        each group's ``n_g``, ``X_g'X_g``, ``X_g'y_g``, ``y_g'y_g`` (gradient cost
        ``n_groups x n_terms^2``, independent of the rows; see :mod:`hierreg.model.sufficient`).
        ``"auto"`` picks the cheaper (``structure_.likelihood_mode`` says which); a
        Student-t likelihood is always row by row.
    covariance : {"diagonal", "full"}, default="diagonal"
        Partial pooling: ``"full"`` lets a group's varying coefficients be correlated,
        ``beta_g ~ MvNormal(mu, diag(tau) R diag(tau))`` with ``R ~ LKJ(2)`` and the
        same ``HalfNormal`` priors on ``tau``, sampled non-centred through the Cholesky
        factor. The posterior holds ``tau`` and the correlation matrix ``corr`` (dims
        ``corr_term`` x ``corr_term_2``); ``group_correlation_`` is its posterior mean.
        Needs two or more varying terms and ``parametrization="noncentered"``.
    likelihood : {"normal", "student_t"}, default="normal"
        Distribution of the residuals. ``"student_t"``: ``y_i ~ StudentT(nu, x_i @ beta,
        sigma)``, robust to outliers, with the degrees of freedom estimated,
        ``nu ~ Gamma(2, 0.1)`` (mean 20; Juarez & Steel 2010, as Stan's prior-choice
        recommendations). The predictive sd is ``sigma * sqrt(nu / (nu - 2))``, infinite
        when the posterior puts weight on ``nu <= 2``.

    Attributes
    ----------
    fitted_ : hierreg.results.fitted.FittedModel
        The fit apart from the estimator (encoding, structure, posterior, priors,
        diagnostics): what predictions, :meth:`save` and Dask predictions read; the
        attributes below are read from it.
    idata_ : xarray.DataTree
        Posterior, sample stats and observed data; coordinates carry the group labels (dim
        named after the group column) and term names (dim ``term``).
    pooling_ : str
        Pooling actually used (``"complete"`` when ``group`` is None).
    groups_ : pandas.Index or None
        Group labels seen in training (None under complete pooling).
    terms_ : list of str
        Design-matrix column names.
    coef_ : pandas.DataFrame
        Posterior-mean coefficients, one row per group and one column per term (a single
        row labelled ``"pooled"`` under complete pooling).
    population_coef_ : pandas.Series or None
        Posterior mean of the population coefficients ``mu`` (shared terms included); used
        for groups unseen at fit. None unless ``pooling_ == "partial"``.
    group_correlation_ : pandas.DataFrame or None
        Posterior mean correlation of the varying coefficients (``covariance="full"``).
    group_effects_ : dict
        For each grouping factor after the first: a DataFrame of the posterior-mean
        deviations, one row per level and one column per term varying by it (the posterior
        holds their draws as ``effect_<factor>``, their sds as ``tau_<factor>``). Empty with
        one factor.
    sigma_ : float or pandas.Series
        Posterior mean residual sd (per group with ``group_noise=True``).
    priors_ : dict
        Parameter name -> :class:`hierreg.Prior` actually used (saved with the model).
    default_priors_ : dict
        The data-scaled defaults, before ``priors`` replaced any.
    diagnostics_ : dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``chains``,
        ``draws`` (ArviZ diagnostics over the sampled parameters), ``sampling_seconds``
        (the sampler's tuning and drawing), ``sample_call_seconds`` (with compilation),
        ``sampler`` and ``approximate`` (True for ``"advi"`` and ``"pathfinder"``; Pathfinder
        adds ``pareto_k``); with ``parametrization="auto"`` under partial pooling,
        ``centred_share``, the share of group coefficients sampled centred.
    n_features_in_ : int
        Number of columns of ``X`` at fit.
    feature_names_in_ : ndarray of str
        Column names of ``X`` at fit, when they are all strings.

    See Also
    --------
    sklearn.linear_model.BayesianRidge : conjugate Bayesian regression without groups.

    Notes
    -----
    A :class:`hierreg.SamplingWarning` (a scikit-learn ``ConvergenceWarning``) is raised when
    any divergence occurs, R-hat exceeds 1.01 or ESS is below 400.

    With nutpie and ``pooling="partial"``, each NUTS trajectory is doubled once beyond its
    U-turn (nutpie's ``extra_doublings=1``): about twice the gradients per draw, and about
    twice the effective sample size of the between-group sds, which otherwise mix slowly
    (radon: min bulk ESS 570-955 -> 1063-1410 of 4000 draws, max R-hat 1.005-1.013 ->
    1.005-1.008 over seeds 0-7). ``sample_kwargs={"nuts":
    {"extra_doublings": 0}}`` turns it off (and bypasses the compiled-model cache).

    Examples
    --------
    >>> from hierreg import HierarchicalLinearRegression
    >>> from hierreg.datasets import load_radon
    >>> df = load_radon()
    >>> est = HierarchicalLinearRegression(
    ...     "log_radon ~ floor", group="county", pooling="partial",
    ...     random_state=0, progressbar=False,
    ... ).fit(df)
    >>> est.coef_.loc["CASS"].round(1).tolist()
    [1.4, -0.6]
    """

    def __init__(
        self,
        formula: str | None = None,
        *,
        group: Hashable | None = None,
        pooling: str = "partial",
        varying: str | Sequence[str] = "all",
        parametrization: str = "auto",
        group_noise: bool = False,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float | None = None,
        sampler: str = "nutpie",
        random_state: Any = None,
        progressbar: bool = True,
        sample_kwargs: Mapping[str, Any] | None = None,
        new_groups: str = "population",
        store_log_likelihood: bool | str = "auto",
        priors: Mapping[str, Any] | None = None,
        group_predictors: Sequence[str] | None = None,
        likelihood_mode: str = "auto",
        likelihood: str = "normal",
        covariance: str = "diagonal",
    ) -> None:
        self.formula = formula
        self.group = group
        self.pooling = pooling
        self.varying = varying
        self.parametrization = parametrization
        self.group_noise = group_noise
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.sampler = sampler
        self.random_state = random_state
        self.progressbar = progressbar
        self.sample_kwargs = sample_kwargs
        self.new_groups = new_groups
        self.store_log_likelihood = store_log_likelihood
        self.priors = priors
        self.group_predictors = group_predictors
        self.likelihood_mode = likelihood_mode
        self.likelihood = likelihood
        self.covariance = covariance

    # --- fitting -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> HierarchicalLinearRegression:
        """Sample the posterior of the model for data ``X`` (and response ``y``).

        Everything is validated before any compilation or sampling; on error the
        estimator's previous fitted state is left untouched.

        Parameters
        ----------
        X : pandas.DataFrame, array-like of shape (n_rows, n_columns) or Dask DataFrame
            Predictors and the grouping column (and the response if the formula names it).
            A ``dask.dataframe.DataFrame`` is fitted through per-group sufficient statistics
            reduced on the cluster (:mod:`hierreg.distributed`): the rows never reach this
            process; needs a formula with the response, the normal likelihood, and leaves
            out the pointwise log-likelihood.
        y : array-like of shape (n_rows,), optional
            Response, unless the formula's left-hand side names a column of ``X``.

        Returns
        -------
        self
        """
        fitted = self._fit_model(X, y, fit_options(self.get_params()))
        self._adopt(fitted, feature_names=_string_columns(X))
        if is_dask_collection(X):
            self.n_features_in_ = len(X.columns)
        return self

    def sample_prior_predictive(
        self, X: Any, y: Any = None, draws: int = 500, random_state: Any = None
    ) -> xr.DataTree:
        """Draws from the priors of the model ``fit(X, y)`` would sample, and the responses
        they imply for the rows of ``X``: a prior predictive check.

        The priors are those of :meth:`fit` (data-scaled defaults from ``X`` and ``y``, with
        ``priors=`` in place), sampled as the fit samples them (the same model without its
        likelihood, by the estimator's sampler, ``chains`` chains of ``draws`` after ``tune``
        tuning steps), then mapped to data units: what is drawn is the prior the fit
        actually uses. The estimator is not changed.

        Parameters
        ----------
        X, y
            As for :meth:`fit` (a pandas DataFrame or array; not a Dask DataFrame).
        draws : int, default=500
            Draws per chain.
        random_state : int, Generator or None
            Seed for the sampler and the noise of the predictive draws (None: the
            estimator's ``random_state``).

        Returns
        -------
        xarray.DataTree
            ``prior`` (every parameter, as ``idata_["posterior"]`` names them),
            ``prior_predictive`` (``y``, dims ``(chain, draw, obs)``), ``observed_data``
            (``y``) and ``sample_stats``.

        Raises
        ------
        ValueError
            For a Flat (improper) prior, which has no draws, or a Dask DataFrame.
        """
        if is_dask_collection(X):
            raise ValueError("sample_prior_predictive needs the rows: pass a pandas DataFrame")
        params = self.get_params()
        params["draws"] = draws
        if random_state is not None:
            params["random_state"] = random_state
        options = fit_options(params)
        fitted = self._fit_model(X, y, options, prior_only=True)
        rng = np.random.default_rng(options.settings.seed)
        chunks, n_rows, n_draws = fitted.draw_chunks(
            X, "population", True, lambda total: np.arange(total), rng
        )
        predictive = np.empty((n_draws, n_rows))
        for rows, values in chunks:
            predictive[:, rows] = values
        post = fitted.idata["posterior"]
        shape = (post.sizes["chain"], post.sizes["draw"], n_rows)
        tree = {
            "prior": post.to_dataset(),
            "prior_predictive": xr.Dataset(
                {"y": (("chain", "draw", "obs"), predictive.reshape(shape))},
                coords={"obs": np.arange(n_rows)},
            ),
            "observed_data": fitted.idata["observed_data"].to_dataset(),
        }
        if "sample_stats" in fitted.idata:
            tree["sample_stats"] = fitted.idata["sample_stats"].to_dataset()
        return xr.DataTree.from_dict(tree)

    def _fit_model(
        self, X: Any, y: Any, options: FitOptions, prior_only: bool = False
    ) -> FittedModel:
        """The fit's data path: data -> design -> structure -> priors -> draws -> posterior
        (``prior_only``: the model without its likelihood)."""
        design, distributed = self._fit_design(X, y, options)  # data -> design
        options.grouping.check_terms(design.spec.terms)
        structure, centring = resolve_structure(  # design -> what shapes the model
            design,
            pooling=options.pooling,
            varying=options.varying,
            factor_varying=options.factor_varying,
            group_predictors=options.group_predictors,
            covariance=options.covariance,
            parametrization=options.parametrization,
            group_noise=options.group_noise,
            likelihood=options.likelihood,
            likelihood_mode=options.likelihood_mode,
            statistics=None if distributed is None else distributed.statistics,
            n_rows=None if distributed is None else distributed.n_rows,
        )
        if prior_only:  # the data do not inform the parametrisation of a prior
            data_driven = structure.parametrization in ("mixed", "collapsed")
            structure = replace(
                structure,
                prior_only=True,
                likelihood_mode="rows",
                parametrization="noncentered" if data_driven else structure.parametrization,
            )
            centring = None
        defaults, units, statistics = data_scale(  # priors and the sampler's units
            design,
            *(() if distributed is None else (distributed.moments, distributed.statistics)),
        )
        priors, defaults = resolve_priors(defaults, self.priors, design, structure)
        if prior_only:
            check_proper(priors)
        std_priors = units.priors(priors)
        with interrupts_propagate():  # Ctrl-C: KeyboardInterrupt, the estimator as it was
            idata, seconds, sampled = sample_model(
                units.design(design), structure, std_priors, options.settings, statistics,
                centring,
            )  # fmt: skip
        idata = posterior_in_data_units(  # draws -> data units, labels, log-likelihood
            idata, design, structure, units, std_priors,
            False if prior_only else options.store_log_likelihood,
            training=distributed.template if distributed is not None else X,
            rows=distributed is None,
        )  # fmt: skip
        diagnostics = fit_diagnostics(idata, seconds, sampled, options.settings, not prior_only)
        return FittedModel(design.spec, structure, idata, priors, defaults.as_dict(), diagnostics)

    def _fit_design(self, X: Any, y: Any, options: FitOptions) -> tuple[Design, Any]:
        """Data -> design (validated, encoded); for a Dask DataFrame also the statistics
        reduced on the cluster (else None)."""
        grouping, predictors = options.grouping, options.group_predictors
        group = grouping.group
        distributed = None
        if is_dask_collection(X):
            check_dask_fit(
                self.formula, y, options.store_log_likelihood, options.likelihood,
                options.likelihood_mode, predictors,
            )  # fmt: skip
            if len(grouping.factors) > 1:
                raise ValueError(
                    "a Dask DataFrame is fitted through per-group sufficient statistics, which "
                    f"need one grouping factor; got {list(grouping.factors)}"
                )
            distributed = statistics_from_dask(
                X, options.formula, group if options.keep_group else None
            )
            design = distributed.design
        else:
            if not options.keep_group:  # ignored by complete pooling; misspelt is an error
                columns = as_2d_frame(X).columns
                for name in grouping.factors:
                    factor_columns(name, columns)
            if predictors:
                check_constant_within_groups(X, predictors, group)
            design = build_design(
                X,
                y,
                formula=options.formula,
                group=group if options.keep_group else None,
                factors=grouping.extra if options.keep_group else (),
            )
        if options.pooling == "complete":
            design = Design(design.X, design.y, None, _without_groups(design.spec))
        n_groups = 0 if design.spec.groups is None else len(design.spec.groups)
        if options.pooling == "partial" and n_groups < 2:
            raise ValueError(
                f"pooling='partial' needs at least 2 groups in column {group!r}, got "
                f"{n_groups}; use pooling='complete'"
            )
        for factor in design.spec.factors:
            if options.pooling == "partial" and len(factor.levels) < 2:
                raise ValueError(
                    f"pooling='partial' needs at least 2 groups in factor {factor.name!r}, got "
                    f"{len(factor.levels)}"
                )
        return design, distributed

    def _adopt(self, fitted: FittedModel, feature_names: np.ndarray | None) -> None:
        """Set every fitted attribute from ``fitted`` (the end of ``fit``, and ``load``)."""
        summaries = fitted.summaries()
        spec, structure = fitted.spec, fitted.structure
        self.fitted_ = fitted
        self.group_correlation_ = summaries["group_correlation"]
        self.factor_dims_ = fitted.factor_dims
        self.group_effects_ = summaries["group_effects"]
        self.idata_ = fitted.idata
        self.design_ = spec
        self.structure_ = structure
        self.group_dim_ = fitted.group_dim
        self.pooling_ = structure.pooling
        self.groups_ = spec.groups
        self.terms_ = list(spec.terms)
        self.coef_ = summaries["coef"]
        self.population_coef_ = summaries["population_coef"]
        self.sigma_ = summaries["sigma"]
        self.priors_ = summaries["priors"]
        self.default_priors_ = dict(fitted.default_priors)
        self.diagnostics_ = fitted.diagnostics
        self.n_features_in_ = spec.n_columns
        if feature_names is not None:
            self.feature_names_in_ = feature_names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    @classmethod
    def from_fitted(
        cls,
        params: Mapping[str, Any],
        fitted: FittedModel,
        feature_names: Sequence[str] | None = None,
    ) -> HierarchicalLinearRegression:
        """A fitted estimator with parameters ``params`` whose fit is ``fitted`` (how
        :meth:`load` builds one; the parameters are not checked against the fit)."""
        est = cls(**params)
        names = None if feature_names is None else np.asarray(feature_names, dtype=object)
        est._adopt(fitted, feature_names=names)
        return est

    # --- persistence ---------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Save the fitted estimator to the directory ``path`` (created if needed).

        Writes ``model.json`` (parameters, design encoding, priors, diagnostics, a format
        version and a checksum of the posterior file) and ``posterior.nc`` (``idata_`` as
        netCDF, with the training values of the formula's columns as ``constant_data``). No
        pickle: :meth:`load` executes no code from the files.

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        TypeError
            If a parameter (``random_state``, ``sample_kwargs``) or the group labels cannot
            be written as JSON.
        ValueError
            If the formula calls something other than formulae's transforms and NumPy
            ufuncs (it could not be re-created safely on load); pickle such a model instead.
        """
        return save_estimator(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HierarchicalLinearRegression:
        """Load an estimator saved with :meth:`save`; it predicts exactly as the original.

        Raises
        ------
        FileNotFoundError
            If ``path`` holds no saved model.
        ValueError
            If the files are truncated, corrupted, of another format or a newer version.
        """
        return load_estimator(cls, path)

    # --- prediction ----------------------------------------------------------------------

    def predict(self, X: Any, return_std: bool = False):
        """Posterior-predictive mean for each row of ``X`` (and its standard deviation).

        The mean is the posterior mean of the expected response; the standard deviation
        includes the observation noise (as ``BayesianRidge`` does). Both are exact functions
        of posterior moments: no draws, no PyMC graph. Groups unseen at fit follow
        ``new_groups`` (see the class docstring).

        Parameters
        ----------
        X : pandas.DataFrame, array-like or dask.dataframe.DataFrame
            Same columns as at fit (extra or reordered columns are fine with a formula).
            A Dask DataFrame is predicted partition by partition (lazily).
        return_std : bool, default=False

        Returns
        -------
        mean : ndarray of shape (n_rows,) (a Dask Series for Dask input)
        std : ndarray of shape (n_rows,), only if ``return_std``
        """
        if is_dask_collection(X):
            check_is_fitted(self)
            return predict_dask(self.fitted_, X, self._new_groups(), return_std)
        self._check_features(X)
        mean, var = self.fitted_.predict(X, self._new_groups())
        return (mean, np.sqrt(var)) if return_std else mean

    def predict_draws(
        self,
        X: Any,
        include_noise: bool = True,
        n_draws: int | None = None,
        random_state: Any = None,
    ) -> np.ndarray:
        """Posterior-predictive draws, shape ``(n_draws, n_rows)``.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
        include_noise : bool, default=True
            Add observation noise (draws of ``y``); False gives draws of its expectation.
        n_draws : int or None, default=None
            Use this many posterior draws, chosen at random without replacement; None uses
            all of them (chains x draws).
        random_state : int, Generator or None
            Seed for the draw subset, the noise and fresh unseen groups; the same seed gives
            identical draws.
        """
        chunks, n_rows, n_used = self._draw_chunks(X, include_noise, n_draws, random_state)
        out = np.empty((n_used, n_rows))
        for rows, draws in chunks:
            out[:, rows] = draws
        return out

    def predict_interval(
        self,
        X: Any,
        prob: float = 0.9,
        include_noise: bool = True,
        random_state: Any = None,
    ) -> pd.DataFrame:
        """Central posterior-predictive interval per row.

        Quantiles of the posterior-predictive draws (all of them), computed in row chunks so
        memory stays bounded however many rows ``X`` has. ``include_noise=False`` gives the
        credible interval of the expected response instead of a prediction interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``; the index of ``X`` when it is a DataFrame.
        """
        if not isinstance(prob, numbers.Real) or not 0 < prob < 1:
            raise ValueError(f"prob must be in (0, 1), got {prob!r}")
        chunks, n_rows, _ = self._draw_chunks(X, include_noise, None, random_state)
        bounds = np.empty((n_rows, 2))
        for rows, draws in chunks:
            bounds[rows] = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0).T
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(bounds, columns=["lower", "upper"], index=index)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """R^2 of :meth:`predict` (response from ``X`` when the formula names it)."""
        if y is None:
            check_is_fitted(self)
            response = self.design_.response
            if self.formula is None or not isinstance(X, pd.DataFrame) or response not in X:
                raise ValueError("score needs y, or a formula whose response is a column of X")
            y = X[response]
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))

    def _check_features(self, X: Any) -> None:
        """Fitted, and (array input) the number and names of the columns seen at fit."""
        check_is_fitted(self)
        if self.formula is None:
            X = X if isinstance(X, pd.DataFrame) else as_2d_frame(X)
            validate_data(self, X, reset=False, skip_check_array=True)
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input"
                )

    def _encode(self, X: Any) -> Design:
        self._check_features(X)
        return self.fitted_.encode(X, self._new_groups())

    def _draw_chunks(self, X, include_noise, n_draws, random_state):
        """(iterator of (rows, draws) chunks, number of rows, number of draws used)."""
        self._check_features(X)
        rng = np.random.default_rng(random_state)
        return self.fitted_.draw_chunks(
            X,
            self._new_groups(),
            include_noise,
            lambda total: _draw_subset(total, n_draws, rng),
            rng,
        )

    def _new_groups(self) -> str:
        return check_choice("new_groups", self.new_groups)

    def _posterior_arrays(self) -> PosteriorArrays:
        return self.fitted_.posterior_arrays()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


# --- helpers ---------------------------------------------------------------------------


def _draw_subset(total: int, n_draws: int | None, rng: np.random.Generator) -> np.ndarray:
    if n_draws is None:
        return np.arange(total)
    if not isinstance(n_draws, numbers.Integral) or isinstance(n_draws, bool) or n_draws <= 0:
        raise ValueError(f"n_draws must be a positive integer or None, got {n_draws!r}")
    if n_draws > total:
        raise ValueError(f"n_draws={n_draws} exceeds the {total} posterior draws available")
    return np.sort(rng.choice(total, size=n_draws, replace=False))


def _without_groups(spec: DesignSpec) -> DesignSpec:
    return replace(spec, group=None, groups=None, factors=())


def _string_columns(X: Any) -> np.ndarray | None:
    frame = isinstance(X, pd.DataFrame) or is_dask_collection(X)
    if frame and all(isinstance(c, str) for c in X.columns):
        return np.asarray(X.columns, dtype=object)
    return None
