"""Fit from Parquet through Dask: 10M rows, 1,000 groups, driver memory and time.

Writes ``--rows`` simulated rows (varying intercept and slope, 1,000 groups, truth
mu = (1, -0.5), tau = (0.6, 0.3), sigma = 0.5) as Parquet partitions of 500,000 rows, starts
a ``LocalCluster`` (2 worker processes, 1 thread each, loopback), and fits partial pooling
(centred: ~10,000 rows per group) from ``dd.read_parquet``: time to the sufficient
statistics, time to the fitted model, and the driver process's peak resident memory (the
workers are other processes). The same rows are then fitted from an in-memory pandas frame
in a fresh process (``likelihood_mode="sufficient"``), for the time and the peak memory of
the one-machine path. Peak memory: ``ru_maxrss`` of the process.

Run: ``python benchmarks/bench_dask.py [--rows 10000000] [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _results import write_results

N_GROUPS, PART_ROWS, SEED = 1_000, 500_000, 0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_parquet(folder: Path, n_rows: int) -> None:
    rng = np.random.default_rng(SEED)
    coef = rng.normal((1.0, -0.5), (0.6, 0.3), size=(N_GROUPS, 2))
    for k, start in enumerate(range(0, n_rows, PART_ROWS)):
        n = min(PART_ROWS, n_rows - start)
        g = rng.integers(0, N_GROUPS, size=n)
        x = rng.normal(size=n)
        y = coef[g, 0] + coef[g, 1] * x + rng.normal(0, 0.5, size=n)
        frame = pd.DataFrame({"y": y, "x": x, "g": np.char.add("g", g.astype(str))})
        frame.to_parquet(folder / f"part-{k:04d}.parquet", index=False)


def _estimator():
    from hierreg import HierarchicalLinearRegression

    return HierarchicalLinearRegression(
        "y ~ x", group="g", parametrization="centered", random_state=SEED, progressbar=False
    )


def fit_pandas(folder: str) -> dict:
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    frame = pd.read_parquet(folder)
    read_s = time.perf_counter() - start
    est = _estimator().set_params(likelihood_mode="sufficient").fit(frame)
    d = est.diagnostics_
    return {
        "read_s": read_s,
        "fit_s": time.perf_counter() - start - read_s,
        "peak_mib": _peak_mib(),
        "max_rhat": d["max_rhat"],
        "min_ess_bulk": d["min_ess_bulk"],
        "divergences": d["divergences"],
        "mu_x": float(est.population_coef_["x"]),
    }


def fit_dask(folder: str) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from hierreg.distributed import statistics_from_dask

    warnings.simplefilter("ignore")
    baseline = _peak_mib()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    )  # fmt: skip
    with Client(cluster):
        ddf = dd.read_parquet(folder)
        start = time.perf_counter()
        stats = statistics_from_dask(ddf, "y ~ x", "g")
        stats_s = time.perf_counter() - start
        start = time.perf_counter()
        est = _estimator().fit(ddf)
        fit_s = time.perf_counter() - start
    cluster.close()
    d = est.diagnostics_
    return {
        "rows": stats.n_rows,
        "partitions": ddf.npartitions,
        "statistics_s": stats_s,
        "fit_s": fit_s,
        "driver_peak_mib": _peak_mib(),
        "driver_baseline_mib": baseline,
        "max_rhat": d["max_rhat"],
        "min_ess_bulk": d["min_ess_bulk"],
        "divergences": d["divergences"],
        "mu_x": float(est.population_coef_["x"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if args.child:
        kind, folder = args.child
        print(json.dumps(fit_dask(folder) if kind == "dask" else fit_pandas(folder)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        write_parquet(folder, args.rows)
        print(f"wrote {args.rows:,} rows in {time.perf_counter() - start:.1f} s", flush=True)
        results = {}
        for kind in ["dask"] + ([] if args.skip_pandas else ["pandas"]):
            cmd = [sys.executable, __file__, "--child", kind, str(folder)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                results[kind] = {"error": done.stderr.strip().splitlines()[-1]}
            else:
                results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
            print(kind, json.dumps(results[kind]), flush=True)
    path = write_results("bench_dask", args.out, rows=args.rows, groups=N_GROUPS, results=results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
