"""Command line (``hierreg ...`` or ``python -m hierreg ...``).

* ``hierreg radon [--out DIR] [--seed-priors]``: Gelman's radon analysis, complete vs no vs
  partial pooling (``--seed-priors``: with the original notebook's priors);
* ``hierreg fit DATA.csv --formula "y ~ x" --group g --out MODEL_DIR [--prior
  'tau=HalfCauchy(beta=1)' ...]``: fit and save a model;
* ``hierreg predict MODEL_DIR NEW.csv [--interval 0.9]``: predictions as CSV on stdout.

Every failure (bad arguments, unreadable or bad data, a refused model file, an output folder
that cannot be written) gives one line, ``hierreg: error: ...``, on stderr and exit status 2,
before any sampling where it can be known then; Ctrl-C gives ``hierreg: interrupted`` and
exit status 130. ``HIERREG_TRACEBACK=1`` adds the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import NoReturn

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with one error line (``hierreg: error: ...``) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        _fail(message)


def _fail(message: str) -> NoReturn:
    print(f"hierreg: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    from hierreg.parameters import choices

    parser = _Parser(prog="hierreg", description="Bayesian hierarchical linear regression.")
    sub = parser.add_subparsers(dest="command", required=True)
    radon = sub.add_parser(
        "radon",
        help="reproduce Gelman's radon analysis: complete, none and partial pooling",
    )
    _add_sampler_arguments(radon)
    radon.add_argument(
        "--seed-priors",
        action="store_true",
        help="the notebook's priors (Normal(0, 1) coefficients, HalfCauchy(1) sds) instead "
        "of the data-scaled defaults",
    )
    radon.add_argument("--out", type=Path, default=None, help="folder for results.json (optional)")

    fit = sub.add_parser("fit", help="fit a model to a CSV file and save it to a folder")
    fit.add_argument("data", type=Path, help="CSV file with the response, predictors, group")
    fit.add_argument("--formula", required=True, help='e.g. "y ~ x1 + x2"')
    fit.add_argument(
        "--group",
        action="append",
        default=None,
        help="grouping column (omit: complete pooling; repeat for crossed factors, "
        "'state:county' for nesting; or write '(1 | g)' terms in the formula)",
    )
    fit.add_argument("--pooling", choices=choices("pooling"), default="partial")
    fit.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="NAME=DIST(k=v,...)",
        type=_prior_argument,
        help="a prior in data units, e.g. --prior 'tau=HalfCauchy(beta=1)' (repeatable)",
    )
    _add_sampler_arguments(fit)
    fit.add_argument("--out", type=Path, required=True, help="folder to save the model in")

    predict = sub.add_parser("predict", help="predict from a saved model; CSV on stdout")
    predict.add_argument("model", type=Path, help="folder written by 'hierreg fit'")
    predict.add_argument("data", type=Path, help="CSV file with the predictors and group")
    predict.add_argument(
        "--interval",
        type=_probability,
        default=None,
        help="also write lower/upper columns of this central predictive interval",
    )
    predict.add_argument("--seed", type=int, default=0, help="seed for interval draws")
    return parser


def _add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--draws", type=_positive_int, default=1000)
    parser.add_argument("--tune", type=_positive_int, default=1000)
    parser.add_argument("--chains", type=_positive_int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _prior_argument(text: str) -> tuple[str, object]:
    from hierreg.model.priors import Prior

    name, sep, dist = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=DIST(...), e.g. sigma=HalfCauchy(beta=1)"
        )
    try:
        return name.strip(), Prior.parse(dist)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _read_csv(path: Path):
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path} as CSV: {err}") from None


def _check_out_folder(out: Path) -> None:
    """Before fitting: ``out`` can take a saved model (new, empty, or an earlier model)."""
    from hierreg.results.persistence import check_save_target

    check_save_target(out)
    parent = out.parent if str(out.parent) else Path(".")
    existing = next((p for p in [parent, *parent.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {existing} is not writable")


def _run_fit(args: argparse.Namespace) -> int:
    from hierreg import HierarchicalLinearRegression
    from hierreg.model.priors import format_priors
    from hierreg.sampling.diagnostics import SamplingWarning

    _check_out_folder(args.out)
    frame = _read_csv(args.data)
    est = HierarchicalLinearRegression(
        args.formula,
        group=args.group[0] if args.group and len(args.group) == 1 else args.group,
        pooling=args.pooling,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        random_state=args.seed,
        progressbar=not args.quiet,
        priors=dict(args.prior) or None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplingWarning)
        est.fit(frame)
    for warning in caught:
        print(f"hierreg: warning: {warning.message}", file=sys.stderr)
    est.save(args.out)
    d = est.diagnostics_
    groups = f"{0 if est.groups_ is None else len(est.groups_)} groups"
    for factor, effects in est.group_effects_.items():
        groups += f", {len(effects)} {factor} levels"
    print(
        f"saved to {args.out}: {len(frame)} rows, {len(est.terms_)} terms, "
        f"{groups}; divergences "
        f"{d['divergences']}, max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}",
        file=sys.stderr,
    )
    print(f"priors: {format_priors(est.priors_)}", file=sys.stderr)
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from hierreg import HierarchicalLinearRegression

    est = HierarchicalLinearRegression.load(args.model)
    frame = _read_csv(args.data)
    mean, sd = est.predict(frame, return_std=True)
    out = frame.assign(prediction=mean, prediction_sd=sd)
    if args.interval is not None:
        bounds = est.predict_interval(frame, prob=args.interval, random_state=args.seed)
        out = out.assign(lower=bounds["lower"].to_numpy(), upper=bounds["upper"].to_numpy())
    out.to_csv(sys.stdout, index=False)
    return 0


def _run_radon(args: argparse.Namespace) -> int:
    from hierreg.radon import fit_radon, format_result
    from hierreg.sampling.diagnostics import SamplingWarning

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file, not a folder")
    summary = []
    fits = {}
    for pooling in ("complete", "none", "partial"):
        print(f"fitting pooling={pooling!r} ...", flush=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplingWarning)
            result = fit_radon(
                pooling,
                random_state=args.seed,
                progressbar=not args.quiet,
                draws=args.draws,
                tune=args.tune,
                chains=args.chains,
                seed_priors=args.seed_priors,
            )
        print(format_result(result), flush=True)
        for w in caught:
            if issubclass(w.category, SamplingWarning):
                print(f"  warning: {w.message}", flush=True)
        est = result.estimator
        fits[pooling] = est
        summary.append(
            {
                "pooling": pooling,
                "seconds": result.seconds,
                "floor_effect": result.floor_effect,
                "priors": {k: str(v) for k, v in est.priors_.items()},
                **est.diagnostics_,
                "counties": result.county_coefficients().to_dict(orient="index"),
            }
        )
    _print_comparison(fits, summary)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "results.json"
        path.write_text(json.dumps(summary, indent=2, default=float))
        print(f"wrote {path}")
        for figure in _write_figures(fits, args.out):
            print(f"wrote {figure}")
    return 0


def _write_figures(fits: dict, out: Path) -> list[Path]:
    """The notebook's figures (shrinkage, three counties' regression lines, forest plot) and
    the partial-pooling model's prior checks (prior predictive, prior vs posterior)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hierreg import plots
    from hierreg.datasets import load_radon
    from hierreg.radon import RADON_COUNTIES

    paths = []
    ax = plots.shrinkage(fits["none"], fits["partial"])
    paths.append(_save(ax.figure, out / "shrinkage.png", plt))
    axes = plots.group_lines(
        fits["complete"],
        fits["none"],
        fits["partial"],
        groups=RADON_COUNTIES,
        x="floor",
        data=load_radon(),
    )
    paths.append(_save(axes[0].figure, out / "county_lines.png", plt))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 10), sharex=True)
    plots.forest(fits["none"], ax=left)
    plots.forest(fits["partial"], ax=right)
    paths.append(_save(fig, out / "forest_intercepts.png", plt))
    prior = fits["partial"].sample_prior_predictive(load_radon(), draws=500)
    ax = plots.prior_predictive(prior)
    paths.append(_save(ax.figure, out / "prior_predictive.png", plt))
    axes = plots.prior_posterior(fits["partial"], prior)
    paths.append(_save(axes[0].figure, out / "prior_posterior.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _print_comparison(fits: dict, summary: list[dict]) -> None:
    """LOO (ArviZ) and posterior-predictive RMSD of the three pooling modes."""
    from hierreg import compare, posterior_predictive_rmsd
    from hierreg.datasets import load_radon

    df = load_radon()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto-k notes are in the table
        table = compare(fits)
    rmsd = {name: float(posterior_predictive_rmsd(est, df).mean()) for name, est in fits.items()}
    by_mode = {entry["pooling"]: entry for entry in summary}
    print("== model comparison (PSIS-LOO, best first; RMSD of expected vs observed) ==")
    print(
        f"  {'pooling':9s} {'fit s':>6s} {'div':>4s} {'R-hat':>6s} {'floor':>7s} "
        f"{'elpd':>9s} {'se':>6s} {'weight':>7s} {'RMSD':>7s}"
    )
    for name, row in table.iterrows():
        entry = by_mode[name]
        print(
            f"  {name:9s} {entry['seconds']:6.2f} {entry['divergences']:4d} "
            f"{entry['max_rhat']:6.3f} {entry['floor_effect']:7.3f} {row['elpd']:9.1f} "
            f"{row['se']:6.1f} {row['weight']:7.2f} {rmsd[name]:7.3f}"
        )
    for entry in summary:
        entry["loo_elpd"] = float(table.loc[entry["pooling"], "elpd"])
        entry["rmsd"] = rmsd[entry["pooling"]]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hierreg`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)  # bad arguments: usage + one error line, exit 2
    runners = {"radon": _run_radon, "fit": _run_fit, "predict": _run_predict}
    try:
        return runners[args.command](args)
    except KeyboardInterrupt:
        print("hierreg: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as err:
        message = str(err) or type(err).__name__
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError | FileExistsError):
            message = f"{type(err).__name__}: {message}"
    except Exception as err:  # a bug: still one line, the traceback on request
        if os.environ.get("HIERREG_TRACEBACK"):
            traceback.print_exc()
        message = f"unexpected {type(err).__name__}: {err} (HIERREG_TRACEBACK=1 shows where)"
    print(f"hierreg: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
