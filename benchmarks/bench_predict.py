"""Prediction speed: exact posterior moments vs computing the same from every posterior draw.

Fits radon partial pooling with default settings (4 x 1000 draws), then times, on N rows
resampled from radon (with 5% of rows in counties unseen at fit):

* ``predict(X, return_std=True)``: hierreg's exact mean and sd from posterior moments;
* the hand-written numpy equivalent: expected response for every draw, in row chunks, then
  mean and sd over draws plus the noise variance (what a careful PyMC user would write);
* ``predict_interval(X)`` (draw-based quantiles in bounded-memory chunks) and
  ``predict_draws`` on fewer rows.

Times are the best of two untraced calls; peak memory comes from a third call under
tracemalloc (numpy allocations included), which is slower and not timed.
Run: ``python benchmarks/bench_predict.py [--rows 1000000] [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from hierreg import HierarchicalLinearRegression, SamplingWarning
from hierreg.datasets import load_radon


def timed(fn, *args, **kwargs):
    """(result, best-of-2 seconds untraced, peak MiB from a separate traced call)."""
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
    tracemalloc.start()
    fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, min(seconds), peak / 2**20


def hand_written_mean_std(est, X: pd.DataFrame, chunk: int = 2000):
    """Per-draw computation in numpy (seen counties only), chunked over rows."""
    post = est.idata_["posterior"]
    beta = post["beta"].stack(s=("chain", "draw")).transpose("s", "county", "term").values
    sigma2 = float((post["sigma"] ** 2).mean())
    g = est.groups_.get_indexer(X["county"])
    floor = X["floor"].to_numpy(dtype=float)
    mean = np.empty(len(X))
    std = np.empty(len(X))
    for start in range(0, len(X), chunk):
        rows = slice(start, start + chunk)
        eta = beta[:, g[rows], 0] + beta[:, g[rows], 1] * floor[rows]
        mean[rows] = eta.mean(axis=0)
        std[rows] = np.sqrt(eta.var(axis=0) + sigma2)
    return mean, std


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    __import__("logging").getLogger("pymc").setLevel("ERROR")
    df = load_radon()
    est = HierarchicalLinearRegression(
        "log_radon ~ floor", group="county", random_state=0, progressbar=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        est.fit(df)
    rng = np.random.default_rng(0)
    X = df.sample(args.rows, replace=True, random_state=0)[["county", "floor"]].reset_index(
        drop=True
    )
    seen_only = X.copy()
    unseen = rng.random(len(X)) < 0.05
    X.loc[unseen, "county"] = "NEW-" + (rng.integers(0, 50, unseen.sum())).astype(str)

    rows = []
    (mean, std), s, mem = timed(est.predict, X, return_std=True)
    rows.append(
        dict(call="predict(return_std=True)", impl="hierreg", rows=len(X), seconds=s, peak_mib=mem)
    )
    (mean_seen, std_seen), s_h, mem_h = timed(hand_written_mean_std, est, seen_only)
    rows.append(
        dict(
            call="mean+std from all draws",
            impl="hand numpy",
            rows=len(X),
            seconds=s_h,
            peak_mib=mem_h,
        )
    )
    m2, s2 = est.predict(seen_only, return_std=True)
    agreement = float(np.max(np.abs(m2 - mean_seen)) + np.max(np.abs(s2 - std_seen)))
    n_small = min(len(X), 100_000)
    _, s, mem = timed(est.predict_interval, X.iloc[:n_small], random_state=0)
    rows.append(
        dict(call="predict_interval(0.9)", impl="hierreg", rows=n_small, seconds=s, peak_mib=mem)
    )
    n_draw_rows = min(len(X), 10_000)
    _, s, mem = timed(est.predict_draws, X.iloc[:n_draw_rows], n_draws=1000, random_state=0)
    rows.append(
        dict(
            call="predict_draws(n_draws=1000)",
            impl="hierreg",
            rows=n_draw_rows,
            seconds=s,
            peak_mib=mem,
        )
    )

    header = f"{'call':30s} {'impl':11s} {'rows':>9s} {'seconds':>8s} {'peak MiB':>9s}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(
            f"{r['call']:30s} {r['impl']:11s} {r['rows']:9d} {r['seconds']:8.2f} "
            f"{r['peak_mib']:9.0f}"
        )
    ratio = rows[0]["seconds"] / rows[1]["seconds"]
    print(
        f"\nexact / per-draw time ratio: {ratio:.3f}; max |difference| of mean+sd on seen "
        f"counties: {agreement:.2e} (Monte Carlo-free vs exact: same numbers)"
    )
    result = dict(
        benchmark="bench_predict",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        draws=int(est.diagnostics_["chains"] * est.diagnostics_["draws"]),
        rows=rows,
        ratio_exact_over_draws=ratio,
        max_abs_difference=agreement,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for path in (args.out / f"bench_predict-{stamp}.json", args.out / "latest_bench_predict.json"):
        path.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out / 'latest_bench_predict.json'}")


if __name__ == "__main__":
    main()
