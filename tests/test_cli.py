import json
import subprocess
import sys

import pytest

from hierreg.cli import main


def test_radon_command_prints_a_table_per_mode(tmp_path, capsys):
    code = main(
        [
            "radon",
            "--draws",
            "150",
            "--tune",
            "150",
            "--chains",
            "2",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for mode in ("complete", "none", "partial"):
        assert f"== pooling='{mode}' ==" in out
    for county in ("CASS", "CROW WING", "FREEBORN"):
        assert out.count(county) == 3
    for field in ("fit time (s)", "divergences ", "max R-hat ", "floor effect"):
        assert out.count(f"  {field}") == 3, field
    assert "== model comparison" in out
    header = out.split("== model comparison")[1].splitlines()[1].split()
    expected = "pooling fit s div R-hat floor elpd se weight RMSD".split()
    assert header == expected
    figures = ["shrinkage", "county_lines", "forest_intercepts", "prior_predictive"]
    for figure in [f"{name}.png" for name in [*figures, "prior_posterior"]]:
        assert (tmp_path / figure).stat().st_size > 10_000
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(r["rmsd"] > 0 and r["loo_elpd"] < 0 for r in results)
    assert [r["pooling"] for r in results] == ["complete", "none", "partial"]
    assert results[2]["priors"]["sigma"].startswith("Exponential(lam=")
    assert results[0]["floor_effect"] == pytest.approx(-0.586, abs=0.03)
    assert set(results[2]["counties"]) == {"CASS", "CROW WING", "FREEBORN"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["radon", "--draws", "0"], "must be a positive integer"),
        (["radon", "--chains", "x"], "is not an integer"),
        (["nosuch"], "invalid choice"),
        ([], "required"),
        (["fit", "data.csv"], "the following arguments are required: --formula"),
        (["fit", "nowhere.csv", "--formula", "y ~ x", "--out", "m"], "no such file: nowhere.csv"),
        (["predict", "no_model_dir", "new.csv"], "no saved hierreg model at no_model_dir"),
        (["predict", "m", "new.csv", "--interval", "1.5"], "must be between 0 and 1"),
        (["fit", "d.csv", "--formula", "y ~ x", "--prior", "tau"], "is not NAME=DIST(...)"),
        (["fit", "d.csv", "--formula", "y", "--prior", "x=os.system(1)"], "cannot read a prior"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "hierreg", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def _cli(*argv, cwd):
    return subprocess.run(
        [sys.executable, "-m", "hierreg", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_fit_then_predict_round_trip_on_csv(tmp_path):
    import numpy as np
    import pandas as pd

    from hierreg import HierarchicalLinearRegression
    from tests.conftest import simulate_groups

    frame, _ = simulate_groups(n_groups=4, n_per_group=15, seed=7)
    frame.to_csv(tmp_path / "train.csv", index=False)
    new = frame.drop(columns="y").sample(12, random_state=0)
    new.to_csv(tmp_path / "new.csv", index=False)
    settings = ["--draws", "100", "--tune", "100", "--chains", "2", "--quiet"]
    fit = _cli(
        "fit",
        "train.csv",
        "--formula",
        "y ~ x",
        "--group",
        "g",
        "--out",
        "model",
        "--prior",
        "tau=HalfCauchy(beta=1)",
        "--prior",
        "x=StudentT(nu=3, mu=0, sigma=5)",
        *settings,
        cwd=tmp_path,
    )
    assert fit.returncode == 0, fit.stderr
    assert "saved to model: 60 rows, 2 terms, 4 groups" in fit.stderr
    assert "tau ~ HalfCauchy(beta=1), x ~ StudentT(nu=3, mu=0, sigma=5)" in fit.stderr
    pred = _cli("predict", "model", "new.csv", "--interval", "0.8", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    out = pd.read_csv(__import__("io").StringIO(pred.stdout))
    assert list(out.columns) == [*new.columns, "prediction", "prediction_sd", "lower", "upper"]
    est = HierarchicalLinearRegression.load(tmp_path / "model")
    assert str(est.priors_["tau[x]"]) == "HalfCauchy(beta=1)"
    mean, sd = est.predict(new, return_std=True)
    np.testing.assert_allclose(out["prediction"], mean, rtol=1e-12)
    np.testing.assert_allclose(out["prediction_sd"], sd, rtol=1e-12)
    assert (out["lower"] < out["prediction"]).all() and (out["prediction"] < out["upper"]).all()


def test_fit_with_bad_data_is_one_line_exit_2(tmp_path):
    (tmp_path / "train.csv").write_text("y,x,g\n1,2,a\n2,,b\n3,4,a\n")
    proc = _cli(
        "fit", "train.csv", "--formula", "y ~ x", "--group", "g", "--out", "m", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("hierreg: error: ") and "'x'" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_repeated_group_gives_several_factors(tmp_path):
    """--group twice is a list of grouping factors (checked before any sampling)."""
    (tmp_path / "train.csv").write_text("y,x,g\n1,2,a\n2,3,b\n3,4,a\n")
    proc = _cli(
        "fit", "train.csv", "--formula", "y ~ x", "--group", "g", "--group", "rater",
        "--out", "m", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "group column 'rater' is not a column of X" in proc.stderr
