"""Command line: ``hierreg radon`` (also ``python -m hierreg radon``)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hierreg", description="Bayesian hierarchical linear regression."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    radon = sub.add_parser(
        "radon",
        help="reproduce Gelman's radon analysis: complete, none and partial pooling",
    )
    radon.add_argument("--draws", type=_positive_int, default=1000)
    radon.add_argument("--tune", type=_positive_int, default=1000)
    radon.add_argument("--chains", type=_positive_int, default=4)
    radon.add_argument("--seed", type=int, default=0)
    radon.add_argument("--out", type=Path, default=None, help="folder for results.json (optional)")
    radon.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _run_radon(args: argparse.Namespace) -> int:
    from hierreg.inference import SamplingWarning
    from hierreg.radon import fit_radon, format_result

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
    """The notebook's figures: shrinkage, three counties' regression lines, forest plot."""
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
    print("== model comparison (PSIS-LOO; RMSD of expected vs observed log radon) ==")
    print(f"  {'pooling':9s} {'elpd':>9s} {'se':>6s} {'weight':>7s} {'RMSD':>7s}")
    for name, row in table.iterrows():
        print(
            f"  {name:9s} {row['elpd']:9.1f} {row['se']:6.1f} {row['weight']:7.2f} "
            f"{rmsd[name]:7.3f}"
        )
    for entry in summary:
        entry["loo_elpd"] = float(table.loc[entry["pooling"], "elpd"])
        entry["rmsd"] = rmsd[entry["pooling"]]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hierreg`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "radon":
        return _run_radon(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
