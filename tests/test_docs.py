"""Every Python example in README.md and docs/*.md runs (so the documentation cannot rot).

The blocks of one page run in order in one namespace, in a temporary working directory.
"""

import re
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
