"""Refits: 5-fold cross-validation on radon, hierreg vs the hand-written PyMC model.

Each implementation runs in its own fresh Python process (both pay numba's start-up in
their first fit, as a user's script would) and fits partial pooling
``log_radon ~ floor | county`` (varying intercept and slope, non-centred, nutpie, 4 chains x
(1000 tune + 1000 draws)) on the training rows of each fold of ``KFold(5)`` (unshuffled:
radon is sorted by county, so the folds see 56-79 of the 85 counties) and of
``KFold(5, shuffle=True)`` (83-85 counties), then scores the held-out rows of counties seen
in training (R^2).

hierreg compiles the model once per process and feeds each fold's data to the compiled
model (:mod:`hierreg.sampling.compiled`); the hand-written model is rebuilt and recompiled for every
fold by ``pm.sample`` (PyMC reuses what it can from its in-process caches). Each
implementation runs twice on a new PyTensor compile directory (where PyTensor, and hierreg's
nutpie callbacks, keep their disk caches): "empty", its first fit compiles everything, as on
a new machine or for a model never fitted before; "disk-cached", a second process loads what
the first compiled, as a later session fitting the same model does. Reported: each fold's
fit seconds, its ratio to the process's first fit, the number of compilations, the whole
cross-validation's seconds and the hierreg / hand ratio.

Run: ``python benchmarks/bench_refit.py [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _results import write_results

DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 0
# each implementation runs twice on a new, empty PyTensor compile directory: first with
# nothing compiled (a new machine, or a model never fitted before), then reading what the
# first process compiled from the disk caches (a later session fitting the same model)
CACHES = ("empty", "disk-cached")
SPLITS = {"KFold(5)": dict(shuffle=False), "KFold(5, shuffle)": dict(shuffle=True, random_state=0)}


def _r2(y, pred) -> float:
    return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def hierreg_fold(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    from hierreg import HierarchicalLinearRegression
    from hierreg.sampling.compiled import compilations

    start = time.perf_counter()
    est = HierarchicalLinearRegression(
        "log_radon ~ floor", group="county", random_state=SEED, progressbar=False
    ).fit(train)
    seconds = time.perf_counter() - start
    seen = test[test["county"].isin(est.groups_)]
    return {
        "fit_s": seconds,
        "sampling_s": est.diagnostics_["sampling_seconds"],
        "compilations": compilations(),
        "divergences": est.diagnostics_["divergences"],
        "max_rhat": est.diagnostics_["max_rhat"],
        "r2": _r2(seen["log_radon"].to_numpy(), est.predict(seen)),
    }


def hand_fold(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    import arviz_stats as azs
    import pymc as pm

    start = time.perf_counter()
    county, counties = pd.factorize(train["county"], sort=True)
    floor = train["floor"].to_numpy(float)
    y = train["log_radon"].to_numpy()
    with pm.Model(coords={"county": counties}):
        mu_a = pm.Normal("mu_a", y.mean(), 2.5 * y.std())
        mu_b = pm.Normal("mu_b", 0, 2.5 * y.std() / floor.std())
        tau_a = pm.HalfNormal("tau_a", y.std())
        tau_b = pm.HalfNormal("tau_b", y.std() / floor.std())
        a = mu_a + tau_a * pm.Normal("z_a", 0, 1, dims="county")
        b = mu_b + tau_b * pm.Normal("z_b", 0, 1, dims="county")
        sigma = pm.Exponential("sigma", 1 / y.std())
        pm.Normal("y", a[county] + b[county] * floor, sigma, observed=y)
        idata = pm.sample(DRAWS, tune=TUNE, chains=CHAINS, random_seed=SEED, progressbar=False)
    rhat = azs.rhat(idata)  # what hierreg's diagnostics_ hold, for a fair comparison
    azs.ess(idata, method="bulk")
    seconds = time.perf_counter() - start
    post = idata["posterior"]
    a_mean = (post["mu_a"] + post["tau_a"] * post["z_a"]).mean(("chain", "draw")).values
    b_mean = (post["mu_b"] + post["tau_b"] * post["z_b"]).mean(("chain", "draw")).values
    seen = test[test["county"].isin(counties)]
    idx = counties.get_indexer(seen["county"])
    pred = a_mean[idx] + b_mean[idx] * seen["floor"].to_numpy(float)
    return {
        "fit_s": seconds,
        "sampling_s": float(post.attrs.get("sampling_time", np.nan)),
        "compilations": None,
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
        "max_rhat": float(max(v.max() for v in rhat.to_dataset().data_vars.values())),
        "r2": _r2(seen["log_radon"].to_numpy(), pred),
    }


def child(impl: str) -> list[dict]:
    from sklearn.model_selection import KFold

    from hierreg.datasets import load_radon

    warnings.simplefilter("ignore")
    df = load_radon()
    fold_fit = hierreg_fold if impl == "hierreg" else hand_fold
    rows = []
    for split, kwargs in SPLITS.items():
        for k, (train, test) in enumerate(KFold(5, **kwargs).split(df)):
            r = fold_fit(df.iloc[train], df.iloc[test])
            r.update(
                impl=impl, split=split, fold=k + 1, groups=int(df.iloc[train].county.nunique())
            )
            rows.append(r)
    return rows


def _child_env(compiledir: str) -> dict:
    """The environment of a child process whose PyTensor (and numba) caches live in
    ``compiledir``: hierreg's compiled callbacks are cached there too."""
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f]
    flags = [f for f in flags if not f.startswith("base_compiledir")]
    return {**os.environ, "PYTENSOR_FLAGS": ",".join([*flags, f"base_compiledir={compiledir}"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    rows = []
    for impl in ("hierreg", "hand"):
        with tempfile.TemporaryDirectory(prefix="bench_refit_") as compiledir:
            for caches in CACHES:  # the first process fills the empty caches, the second reads
                cmd = [sys.executable, __file__, "--child", impl]
                done = subprocess.run(
                    cmd, capture_output=True, text=True, check=True, env=_child_env(compiledir)
                )
                for r in json.loads(done.stdout.strip().splitlines()[-1]):
                    rows.append({**r, "caches": caches})
    first = {
        (r["impl"], r["caches"]): r["fit_s"]
        for r in rows
        if r["split"] == "KFold(5)" and r["fold"] == 1
    }
    totals = {}
    print(
        f"{'impl':<8} {'caches':<13} {'split':<18} fold groups  fit s  /first  sampling s  comp"
        "  div  R-hat   R^2"
    )
    for r in rows:
        r["ratio_to_first_fit"] = r["fit_s"] / first[(r["impl"], r["caches"])]
        key = (r["impl"], r["caches"], r["split"])
        totals[key] = totals.get(key, 0.0) + r["fit_s"]
        print(
            f"{r['impl']:<8} {r['caches']:<13} {r['split']:<18} {r['fold']:>4} {r['groups']:>6} "
            f"{r['fit_s']:6.2f} {r['ratio_to_first_fit']:7.2f} {r['sampling_s']:10.2f} "
            f"{str(r['compilations']):>5} {r['divergences']:4d} {r['max_rhat']:6.3f} "
            f"{r['r2']:6.3f}"
        )
    summary = []
    for caches in CACHES:
        for split in SPLITS:
            h, m = totals[("hierreg", caches, split)], totals[("hand", caches, split)]
            refits = [
                r["ratio_to_first_fit"]
                for r in rows
                if (r["impl"], r["caches"], r["split"]) == ("hierreg", caches, split)
                and (split != "KFold(5)" or r["fold"] > 1)
            ]
            summary.append(
                {
                    "caches": caches,
                    "split": split,
                    "hierreg_s": h,
                    "hand_s": m,
                    "ratio": h / m,
                    "hierreg_refit_to_first_fit_max": max(refits),
                    "hierreg_refit_to_first_fit_min": min(refits),
                }
            )
            print(
                f"{caches}, {split}: whole CV hierreg {h:.1f} s, hand {m:.1f} s, ratio "
                f"{h / m:.2f}; hierreg refits / first fit {min(refits):.2f}-{max(refits):.2f}"
            )
    path = write_results(
        "bench_refit",
        args.out,
        settings={"draws": DRAWS, "tune": TUNE, "chains": CHAINS},
        results=rows,
        summary=summary,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
