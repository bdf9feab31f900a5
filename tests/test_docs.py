"""Every Python example in README.md and docs/*.md runs (so the documentation cannot rot).

The blocks of one page run in order in one namespace, in a temporary working directory.
"""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hierreg import SamplingWarning

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def test_the_docs_have_examples():
    assert sum(len(_blocks(p)) for p in PAGES) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.name)
def test_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        for i, block in enumerate(_blocks(page)):
            code = compile(block, f"{page.name}[block {i}]", "exec")
            exec(code, namespace)  # noqa: S102 - our own documentation


def test_docs_site_builds_strictly_offline(tmp_path):
    """mkdocs (material + mkdocstrings API reference) builds with no warnings."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("HierarchicalLinearRegression", "predict_interval", "load_radon", "compare"):
        assert name in api
