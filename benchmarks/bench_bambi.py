"""Radon partial pooling: hierreg vs bambi, end to end, each in fresh processes.

The same model in both: ``log_radon ~ floor`` with intercept and floor slope varying by
county (bambi: ``log_radon ~ floor + (floor | county)``), 4 chains x (1000 tune + 1000
draws), each library's default priors and sampler settings. bambi may pin other versions
of PyMC than hierreg's environment: give its interpreter with ``--bambi-python`` (a
separate venv with ``pip install bambi nutpie``); without it the current interpreter is
used if bambi imports.

Each library runs in its own fresh process, ``--repeats`` times; in each process the first
fit ("first fit": model construction, compilation, sampling, and the library's convergence
summary) and a second fit of the same model on the same data ("refit") are timed, and the
library's import ("session": import + first fit, what a script pays from start). Reported:
seconds, the sampler's min bulk ESS and divergences (ArviZ, over the sampled parameters),
and the bambi / hierreg time ratio (above 1: hierreg faster).

Run: ``python benchmarks/bench_bambi.py --bambi-python /path/to/bambi-venv/bin/python``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from _results import write_results

RADON_CSV = Path(__file__).resolve().parents[1] / "hierreg" / "data" / "radon_mn.csv"
DRAWS, TUNE, CHAINS = 1000, 1000, 4


def _summary(idata, var_names=None) -> tuple[float, int]:
    import arviz_stats as azs
    import numpy as np

    post = idata["posterior"].to_dataset()
    if var_names is not None:
        post = post[var_names]
    ess = azs.ess(post, method="bulk")
    min_ess = float(min(np.nanmin(v.values) for v in ess.data_vars.values()))
    return min_ess, int(idata["sample_stats"]["diverging"].sum())


def run_hierreg(seed: int) -> dict:
    start = time.perf_counter()
    from hierreg import HierarchicalLinearRegression
    from hierreg.datasets import load_radon

    out = {"import_s": time.perf_counter() - start}
    df = load_radon()
    for label in ("first_fit", "refit"):
        start = time.perf_counter()
        est = HierarchicalLinearRegression(
            "log_radon ~ floor", group="county", random_state=seed, progressbar=False
        ).fit(df)
        out[f"{label}_s"] = time.perf_counter() - start
    d = est.diagnostics_
    out.update(min_ess_bulk=d["min_ess_bulk"], divergences=d["divergences"])
    return out


def run_bambi(seed: int) -> dict:
    start = time.perf_counter()
    import bambi as bmb
    import pandas as pd

    out = {"import_s": time.perf_counter() - start}
    df = pd.read_csv(RADON_CSV)
    for label in ("first_fit", "refit"):
        start = time.perf_counter()
        model = bmb.Model("log_radon ~ floor + (floor | county)", df)
        idata = model.fit(
            draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=seed, progressbar=False
        )
        out[f"{label}_s"] = time.perf_counter() - start
    # over what bambi reports (its posterior: the group effects themselves, not the offsets)
    out["min_ess_bulk"], out["divergences"] = _summary(idata)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bambi-python", default=sys.executable)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if args.child:
        warnings.simplefilter("ignore")
        run = run_hierreg if args.child == "hierreg" else run_bambi
        print(json.dumps(run(args.seed)))
        return
    rows = []
    for rep in range(args.repeats):
        for lib, python in (("hierreg", sys.executable), ("bambi", args.bambi_python)):
            cmd = [python, __file__, "--child", lib, "--seed", str(args.seed + rep)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{lib} failed:\n{done.stderr[-2000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row.update(library=lib, repeat=rep + 1, session_s=row["import_s"] + row["first_fit_s"])
            rows.append(row)
            print(
                f"{lib:<8} repeat {rep + 1}: import {row['import_s']:5.2f} s  first fit "
                f"{row['first_fit_s']:6.2f} s  refit "
                f"{row['refit_s']:6.2f} s  min bulk ESS {row['min_ess_bulk']:6.0f}  "
                f"divergences {row['divergences']}",
                flush=True,
            )
    summary = {}
    keys = ("import_s", "first_fit_s", "session_s", "refit_s", "min_ess_bulk", "divergences")
    for key in keys:
        for lib in ("hierreg", "bambi"):
            summary[f"{lib}_{key}_median"] = statistics.median(
                r[key] for r in rows if r["library"] == lib
            )
    for key in ("first_fit_s", "session_s", "refit_s"):
        ratio = summary[f"bambi_{key}_median"] / summary[f"hierreg_{key}_median"]
        summary[f"bambi_over_hierreg_{key}"] = ratio
        print(f"median {key}: bambi / hierreg = {ratio:.2f}")
    path = write_results(
        "bench_bambi", args.out, bambi_python=args.bambi_python, results=rows, summary=summary
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
