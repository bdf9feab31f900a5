"""Crossed and nested groups: hierreg vs the textbook model hand-written in plain PyMC.

Two simulations (the test suite's): items x raters, one rating per pair (40 x 30, crossed),
and 15 states x 10 counties x 3 homes (nested). For each, the same model (same priors:
hierreg's data-scaled defaults, read from ``priors_``) is fitted by hierreg and by hand with
the usual non-centred parametrisation ``u = tau * z``, both with nutpie, 4 chains x 1000
draws, in the same process (after a warm-up on an unrelated model), alternating, each in
``--repeats`` seeds. Reported: fit seconds (median of the repeats after the first, which
compiles: its seconds are in the JSON), min bulk ESS over the parameters the two share (grand mean,
slope, sds), ESS per second, max R-hat and divergences, and hierreg / hand ratios.
hierreg samples each further factor as a zero-sum part plus a mean moved into the grand
mean (docs/groups.md): the comparison shows what that buys.

Run: ``python benchmarks/bench_crossed.py [--repeats 3] [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import write_results  # noqa: E402
from benchmarks.bench_radon import warm_up  # noqa: E402
from hierreg import HierarchicalLinearRegression  # noqa: E402
from tests.test_factors import _crossed, _nested, textbook_crossed_model  # noqa: E402

CASES = {
    "crossed 40x30": ("y ~ x + (1 | item) + (1 | rater)", ["item", "rater"]),
    "nested 15x10x3": ("y ~ x + (1 | state/county)", ["state", "state:county"]),
}


def _frame(case: str, seed: int) -> pd.DataFrame:
    if case.startswith("crossed"):
        return _crossed(seed=seed)[0]
    frame = _nested(seed=seed)[0]
    return frame.assign(**{"state:county": frame["state"] + ":" + frame["county"]})


def _summary(posterior, names, seconds, divergences) -> dict:
    data = posterior[names] if hasattr(posterior, "data_vars") else posterior
    ess = azs.ess(data, method="bulk")
    rhat = azs.rhat(data)
    min_ess = float(min(np.nanmin(v.values) for v in ess.data_vars.values()))
    return dict(
        fit_seconds=seconds,
        min_ess_bulk=min_ess,
        ess_per_second=min_ess / seconds,
        max_rhat=float(max(np.nanmax(v.values) for v in rhat.data_vars.values())),
        divergences=divergences,
    )


def with_hierreg(case: str, frame: pd.DataFrame, seed: int) -> tuple[dict, dict]:
    start = time.perf_counter()
    est = HierarchicalLinearRegression(CASES[case][0], random_state=seed, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(frame)
    seconds = time.perf_counter() - start
    post = est.idata_["posterior"].to_dataset()
    factor = est.factor_dims_[0]
    shared = post[["mu", "beta_common", "tau", f"tau_{factor}", "sigma"]]
    return _summary(shared, list(shared.data_vars), seconds, est.diagnostics_["divergences"]), (
        est.priors_
    )


def by_hand(case: str, frame: pd.DataFrame, seed: int, priors: dict) -> dict:
    start = time.perf_counter()
    first, second = CASES[case][1]
    with textbook_crossed_model(frame, first, second, priors):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(
                1000, tune=1000, chains=4, random_seed=seed, progressbar=False,
                nuts_sampler="nutpie",
            )  # fmt: skip
    seconds = time.perf_counter() - start
    post = idata["posterior"].to_dataset()
    divergences = int(idata["sample_stats"]["diverging"].values.sum())
    names = ["mu", "slope", "tau1", "tau2", "sigma"]
    return _summary(post[names], names, seconds, divergences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    __import__("logging").getLogger("pymc").setLevel("ERROR")
    warm_up(None)  # numba's one-off start-up, on an unrelated model
    runs = []
    for case in CASES:
        for seed in range(args.repeats):
            frame = _frame(case, seed)
            mine, priors = with_hierreg(case, frame, seed)
            hand = by_hand(case, frame, seed, priors)
            for impl, result in (("hierreg", mine), ("hand", hand)):
                runs.append(dict(case=case, impl=impl, seed=seed, **result))
                print(f"  {case:15s} {impl:8s} seed {seed}: {result}", flush=True)
    rows = []
    print(
        f"\n{'case':15s} {'impl':8s} {'fit s (median)':>14s} {'min ESS':>8s} {'ESS/s':>7s} "
        f"{'max R-hat':>9s} {'div':>4s} {'ESS ratio':>9s} {'ESS/s ratio':>11s}"
    )
    for case in CASES:
        summary = {}
        for impl in ("hierreg", "hand"):
            mine = [r for r in runs if r["case"] == case and r["impl"] == impl]
            warm = [r for r in mine if r["seed"] > 0] or mine
            summary[impl] = dict(
                fit_seconds=statistics.median(r["fit_seconds"] for r in warm),
                min_ess_bulk=min(r["min_ess_bulk"] for r in mine),
                ess_per_second=statistics.median(r["ess_per_second"] for r in warm),
                max_rhat=max(r["max_rhat"] for r in mine),
                divergences=sum(r["divergences"] for r in mine),
            )
        for impl in ("hierreg", "hand"):
            s = summary[impl]
            ess_ratio = s["min_ess_bulk"] / summary["hand"]["min_ess_bulk"]
            rate_ratio = s["ess_per_second"] / summary["hand"]["ess_per_second"]
            rows.append(dict(case=case, impl=impl, **s, ess_ratio=ess_ratio, rate_ratio=rate_ratio))
            print(
                f"{case:15s} {impl:8s} {s['fit_seconds']:14.2f} {s['min_ess_bulk']:8.0f} "
                f"{s['ess_per_second']:7.0f} {s['max_rhat']:9.3f} {s['divergences']:4d} "
                f"{ess_ratio:9.2f} {rate_ratio:11.2f}"
            )
    path = write_results("crossed", args.out, repeats=args.repeats, runs=runs, rows=rows)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
