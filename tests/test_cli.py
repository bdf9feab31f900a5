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
    for figure in ("shrinkage.png", "county_lines.png", "forest_intercepts.png"):
        assert (tmp_path / figure).stat().st_size > 10_000
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(r["rmsd"] > 0 and r["loo_elpd"] < 0 for r in results)
    assert [r["pooling"] for r in results] == ["complete", "none", "partial"]
    assert results[0]["floor_effect"] == pytest.approx(-0.586, abs=0.03)
    assert set(results[2]["counties"]) == {"CASS", "CROW WING", "FREEBORN"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["radon", "--draws", "0"], "must be a positive integer"),
        (["radon", "--chains", "x"], "is not an integer"),
        (["nosuch"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "hierreg", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
