"""Radon: hierreg vs the same models hand-written in plain PyMC, in the same process.

For each pooling mode, fits ``log_radon ~ floor`` by county with hierreg and with a plain PyMC
model (same likelihood, same priors, nutpie via ``pm.sample``), alternating the two so that
machine noise hits both, and reports end-to-end fit seconds (model build, compilation,
sampling, diagnostics), the sampler's own seconds, min bulk ESS and divergences. With nutpie,
``pm.sample`` checks no convergence, so the hand-written side's ArviZ R-hat and bulk/tail ESS
(what hierreg's ``diagnostics_`` holds) are timed separately ("+checks s") and reported as a
second ratio; the first ratio compares hierreg with the bare ``pm.sample`` call. The first
repeat includes each graph's compilation from scratch ("cold"); later repeats reuse PyMC's
in-process caches ("warm", median). CPU seconds (all threads of the process) are reported
beside wall seconds: on this shared machine they are disturbed less by other tenants.
Ratios are hierreg / hand-written.

Run: ``python benchmarks/bench_radon.py [--repeats 2] [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm

from hierreg import HierarchicalLinearRegression, SamplingWarning
from hierreg.datasets import load_radon
from hierreg.design.build import build_design
from hierreg.model.priors import default_priors

DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 0


def hand_written(pooling: str, df) -> dict:
    """The model as a PyMC user would write it (natural-scale priors, non-centred partial)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    county, counties = pd.factorize(df["county"], sort=True)
    floor = df["floor"].to_numpy(dtype=float)
    y = df["log_radon"].to_numpy()
    d = build_design(df, None, formula="log_radon ~ floor", group=None)
    p = default_priors(d.X, d.y, d.spec.terms)  # same numbers as hierreg's defaults
    with pm.Model(coords={"county": counties}):
        if pooling == "complete":
            a = pm.Normal("a", p.loc[0], p.scale[0])
            b = pm.Normal("b", p.loc[1], p.scale[1])
            mu = a + b * floor
        elif pooling == "none":
            a = pm.Normal("a", p.loc[0], p.scale[0], dims="county")
            b = pm.Normal("b", p.loc[1], p.scale[1], dims="county")
            mu = a[county] + b[county] * floor
        else:
            mu_a = pm.Normal("mu_a", p.loc[0], p.scale[0])
            mu_b = pm.Normal("mu_b", p.loc[1], p.scale[1])
            tau_a = pm.HalfNormal("tau_a", p.group_sd_scale[0])
            tau_b = pm.HalfNormal("tau_b", p.group_sd_scale[1])
            z_a = pm.Normal("z_a", 0, 1, dims="county")
            z_b = pm.Normal("z_b", 0, 1, dims="county")
            a = pm.Deterministic("a", mu_a + tau_a * z_a, dims="county")
            b = pm.Deterministic("b", mu_b + tau_b * z_b, dims="county")
            mu = a[county] + b[county] * floor
        sigma = pm.Exponential("sigma", p.sigma_rate)
        pm.Normal("y", mu, sigma, observed=y)
        idata = pm.sample(
            DRAWS,
            tune=TUNE,
            chains=CHAINS,
            random_seed=SEED,
            progressbar=False,
            nuts_sampler="nutpie",
        )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # pm.sample runs no convergence checks with nutpie: a careful user then asks ArviZ for
    # what hierreg's diagnostics_ holds (R-hat, bulk and tail ESS), timed separately
    start = time.perf_counter()
    posterior = idata["posterior"].to_dataset()
    azs.rhat(posterior)
    ess = azs.ess(posterior, method="bulk")
    azs.ess(posterior, method="tail", prob=(0.05, 0.95))
    check_seconds = time.perf_counter() - start
    min_ess = float(min(np.nanmin(v.values) for v in ess.data_vars.values()))
    divergences = int(idata["sample_stats"]["diverging"].values.sum())
    sampling = float(idata["posterior"].attrs["sampling_time"])
    return dict(
        fit_seconds=seconds,
        cpu_seconds=cpu,
        sampling_seconds=sampling,
        min_ess_bulk=min_ess,
        divergences=divergences,
        check_seconds=check_seconds,
    )


def with_hierreg(pooling: str, df) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    est = HierarchicalLinearRegression(
        "log_radon ~ floor",
        group="county",
        pooling=pooling,
        draws=DRAWS,
        tune=TUNE,
        chains=CHAINS,
        random_state=SEED,
        progressbar=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        est.fit(df)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    d = est.diagnostics_
    return dict(
        fit_seconds=seconds,
        cpu_seconds=cpu,
        sampling_seconds=d["sampling_seconds"],
        min_ess_bulk=d["min_ess_bulk"],
        divergences=d["divergences"],
        check_seconds=0.0,
    )


def warm_up(df) -> None:
    """Pay numba's one-off start-up cost on an unrelated model before timing anything."""
    with pm.Model():
        pm.Normal("x", 0, 1, shape=3)
        pm.sample(50, tune=50, chains=1, progressbar=False, nuts_sampler="nutpie")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    logger = __import__("logging").getLogger("pymc")
    logger.setLevel("ERROR")
    df = load_radon()
    warm_up(df)
    runs = []
    for pooling in ("complete", "none", "partial"):
        for rep in range(args.repeats):
            for name, fn in (("hand", hand_written), ("hierreg", with_hierreg)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    measured = fn(pooling, df)
                runs.append(dict(pooling=pooling, impl=name, repeat=rep, **measured))
                print(
                    f"  {pooling:8s} {name:8s} rep {rep}: {measured['fit_seconds']:6.2f} s",
                    flush=True,
                )

    rows = []
    header = (
        f"{'pooling':9s} {'impl':8s} {'cold fit s':>10s} {'warm fit s':>10s} {'cpu s':>6s} "
        f"{'sampling s':>10s} {'min ESS':>8s} {'ESS/s':>7s} {'div':>4s} {'cold ratio':>10s}"
        f" {'warm ratio':>10s} {'cpu ratio':>9s} {'+checks s':>9s} {'ratio vs hand+checks':>20s}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for pooling in ("complete", "none", "partial"):
        summary = {}
        for name in ("hand", "hierreg"):
            mine = [r for r in runs if r["pooling"] == pooling and r["impl"] == name]
            warm = [r for r in mine if r["repeat"] > 0] or mine
            summary[name] = dict(
                cold_fit_seconds=mine[0]["fit_seconds"],
                warm_fit_seconds=statistics.median(r["fit_seconds"] for r in warm),
                warm_cpu_seconds=statistics.median(r["cpu_seconds"] for r in warm),
                sampling_seconds=statistics.median(r["sampling_seconds"] for r in mine),
                min_ess_bulk=min(r["min_ess_bulk"] for r in mine),
                divergences=max(r["divergences"] for r in mine),
                check_seconds=statistics.median(r["check_seconds"] for r in mine),
            )
        hand = summary["hand"]
        for name in ("hand", "hierreg"):
            s = summary[name]
            s.update(
                cold_ratio=s["cold_fit_seconds"] / hand["cold_fit_seconds"],
                warm_ratio=s["warm_fit_seconds"] / hand["warm_fit_seconds"],
                cpu_ratio=s["warm_cpu_seconds"] / hand["warm_cpu_seconds"],
                warm_ratio_with_checks=(s["warm_fit_seconds"] + s["check_seconds"])
                / (hand["warm_fit_seconds"] + hand["check_seconds"]),
                ess_per_second=s["min_ess_bulk"] / (s["warm_fit_seconds"] + s["check_seconds"]),
            )
            rows.append(dict(pooling=pooling, impl=name, **s))
            print(
                f"{pooling:9s} {name:8s} {s['cold_fit_seconds']:10.2f}"
                f" {s['warm_fit_seconds']:10.2f} {s['warm_cpu_seconds']:6.2f}"
                f" {s['sampling_seconds']:10.2f} {s['min_ess_bulk']:8.0f}"
                f" {s['ess_per_second']:7.0f} {s['divergences']:4d} {s['cold_ratio']:10.2f}"
                f" {s['warm_ratio']:10.2f} {s['cpu_ratio']:9.2f} {s['check_seconds']:9.2f}"
                f" {s['warm_ratio_with_checks']:20.2f}"
            )
    result = dict(
        benchmark="bench_radon",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=dict(
            python=platform.python_version(),
            processor=platform.machine(),
            cpus=__import__("os").cpu_count(),
        ),
        settings=dict(draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED, repeats=args.repeats),
        rows=rows,
        runs=runs,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for path in (args.out / f"bench_radon-{stamp}.json", args.out / "latest_bench_radon.json"):
        path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out / 'latest_bench_radon.json'}")


if __name__ == "__main__":
    main()
