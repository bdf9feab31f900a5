"""Scaling in rows and groups: hierreg's sufficient-statistics likelihood vs row-wise models.

Simulated partial-pooling data (varying intercept and slope, 2 terms, truth
mu = (1, -0.5), tau = (0.6, 0.3), sigma = 0.5). For each (rows, groups) configuration, each
implementation is fitted in its OWN fresh Python process (so that its peak memory is its
own), after a warm-up fit of a tiny unrelated model in that process (numba's one-off
start-up, ~4 s, is paid by every implementation alike and is excluded):

* ``hierreg``: defaults (``likelihood_mode="auto"``, which picks the sufficient-statistics
  form here);
* ``hierreg-rows``: the same estimator forced to ``likelihood_mode="rows"``;
* ``hand``: the model written by hand in plain PyMC, row-wise, sampled with nutpie via
  ``pm.sample``.

hierreg runs with its default ``parametrization="auto"`` (centred or non-centred per group
and term, from the data). The hand-written model is non-centred when groups have fewer than
100 rows on average, centred otherwise (with ~1000 rows per group the non-centred posterior
is a funnel the other way round: R-hat 2.0 at 1M rows x 1000 groups), the choice a careful
user would make by hand. Row-wise fits
are skipped above ``--max-rows-rowwise`` rows (default 100,000: at 10^6 rows a row-wise
gradient makes one fit take many minutes on 2 cores).

Reported: end-to-end fit seconds (design, compilation, sampling, diagnostics), sampler
seconds, min bulk ESS, max R-hat, divergences, peak resident memory of the process (MiB),
and ratios to ``hand`` where it ran.

Run: ``python benchmarks/bench_scaling.py [--quick] [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _results import write_results

DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 0
TRUTH = {"mu": (1.0, -0.5), "tau": (0.6, 0.3), "sigma": 0.5}
ROW_SCAN = [(1_000, 100), (10_000, 100), (100_000, 100), (1_000_000, 100)]
GROUP_SCAN = [(100_000, 10), (100_000, 1_000), (100_000, 10_000)]
TARGET = [(1_000_000, 1_000)]


def simulate(n_rows: int, n_groups: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.arange(n_rows) % n_groups  # every group has rows
    rng.shuffle(g)
    coef = rng.normal(TRUTH["mu"], TRUTH["tau"], size=(n_groups, 2))
    x = rng.normal(size=n_rows)
    y = coef[g, 0] + coef[g, 1] * x + rng.normal(0, TRUTH["sigma"], size=n_rows)
    return pd.DataFrame({"y": y, "x": x, "g": np.char.add("g", g.astype(str))})


def parametrization(n_rows: int, n_groups: int) -> str:
    return "noncentered" if n_rows / n_groups < 100 else "centered"


def fit_hierreg(df: pd.DataFrame, mode: str, param: str = "auto") -> dict:
    from hierreg import HierarchicalLinearRegression

    start = time.perf_counter()
    est = HierarchicalLinearRegression(
        "y ~ x",
        group="g",
        parametrization=param,
        likelihood_mode=mode,
        random_state=SEED,
        progressbar=False,
    ).fit(df)
    seconds = time.perf_counter() - start
    d = est.diagnostics_
    return {
        "fit_s": seconds,
        "sampling_s": d["sampling_seconds"],
        "min_ess_bulk": d["min_ess_bulk"],
        "max_rhat": d["max_rhat"],
        "divergences": d["divergences"],
        "likelihood_mode": est.structure_.likelihood_mode,
        "mu_x": float(est.population_coef_["x"]),
        "parametrization": est.structure_.parametrization,
        "centred_share": d.get("centred_share", 0.0),
    }


def fit_hand(df: pd.DataFrame, param: str) -> dict:
    import arviz_stats as azs
    import pymc as pm

    start = time.perf_counter()
    g, groups = pd.factorize(df["g"])
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    with pm.Model(coords={"g": groups}):
        mu_a = pm.Normal("mu_a", 0, 2.5)
        mu_b = pm.Normal("mu_b", 0, 2.5)
        tau_a = pm.HalfNormal("tau_a", 1)
        tau_b = pm.HalfNormal("tau_b", 1)
        if param == "centered":
            a = pm.Normal("a", mu_a, tau_a, dims="g")
            b = pm.Normal("b", mu_b, tau_b, dims="g")
        else:
            a = mu_a + tau_a * pm.Normal("z_a", 0, 1, dims="g")
            b = mu_b + tau_b * pm.Normal("z_b", 0, 1, dims="g")
        sigma = pm.Exponential("sigma", 1)
        pm.Normal("y", a[g] + b[g] * x, sigma, observed=y)
        idata = pm.sample(DRAWS, tune=TUNE, chains=CHAINS, random_seed=SEED, progressbar=False)
    ess = azs.ess(idata, method="bulk")
    rhat = azs.rhat(idata)
    seconds = time.perf_counter() - start
    return {
        "fit_s": seconds,
        "sampling_s": float(idata["posterior"].attrs.get("sampling_time", np.nan)),
        "min_ess_bulk": float(min(v.min() for v in ess.to_dataset().data_vars.values())),
        "max_rhat": float(max(v.max() for v in rhat.to_dataset().data_vars.values())),
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
        "likelihood_mode": "rows",
        "mu_x": float(idata["posterior"]["mu_b"].mean()),
    }


def child(impl: str, n_rows: int, n_groups: int) -> dict:
    """One fit in this (fresh) process, after a warm-up; prints one JSON line."""
    warnings.simplefilter("ignore")
    fit_hierreg(simulate(200, 4, seed=1), "rows", "noncentered")  # numba start-up
    df = simulate(n_rows, n_groups)
    if impl == "hand":
        param = parametrization(n_rows, n_groups)
        result = {**fit_hand(df, param), "parametrization": param}
    else:
        result = fit_hierreg(df, "rows" if impl == "hierreg-rows" else "auto")
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_child(impl: str, n_rows: int, n_groups: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, str(n_rows), str(n_groups)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    except subprocess.CalledProcessError as err:
        return {"error": err.stderr.strip().splitlines()[-1] if err.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="only 10^3 and 10^4 rows")
    parser.add_argument("--max-rows-rowwise", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if args.child:
        impl, n_rows, n_groups = args.child
        print(json.dumps(child(impl, int(n_rows), int(n_groups))))
        return

    configs = ROW_SCAN + GROUP_SCAN + TARGET
    if args.quick:
        configs = [c for c in configs if c[0] <= 10_000]
    rows = []
    for n_rows, n_groups in dict.fromkeys(configs):
        impls = ["hierreg"]
        if n_rows <= args.max_rows_rowwise:
            impls += ["hierreg-rows", "hand"]
        results = {impl: run_child(impl, n_rows, n_groups, args.timeout) for impl in impls}
        hand = results.get("hand", {})
        for impl, r in results.items():
            r.update(impl=impl, rows=n_rows, groups=n_groups)
            if "fit_s" in r and "fit_s" in hand:
                r["fit_ratio_vs_hand"] = r["fit_s"] / hand["fit_s"]
                r["sampling_ratio_vs_hand"] = r["sampling_s"] / hand["sampling_s"]
            rows.append(r)
            print(_line(r), flush=True)

    path = write_results(
        "bench_scaling",
        args.out,
        settings={"draws": DRAWS, "tune": TUNE, "chains": CHAINS, "truth": TRUTH},
        results=rows,
    )
    print(f"wrote {path}")


def _line(r: dict) -> str:
    head = f"{r['rows']:>9,} rows {r['groups']:>6,} groups  {r['impl']:<13}"
    if "error" in r:
        return f"{head} ERROR {r['error']}"
    ratio = r.get("fit_ratio_vs_hand")
    ratio_text = f" fit ratio {ratio:.2f}" if ratio is not None else ""
    return (
        f"{head} {r['likelihood_mode']:<10} fit {r['fit_s']:7.2f} s  sampling "
        f"{r['sampling_s']:6.2f} s  ESS {r['min_ess_bulk']:6.0f}  R-hat {r['max_rhat']:.3f}  "
        f"div {r['divergences']:3d}  peak {r['peak_mib']:6.0f} MiB  mu_x {r['mu_x']:+.3f}"
        f"{ratio_text}"
    )


if __name__ == "__main__":
    main()
