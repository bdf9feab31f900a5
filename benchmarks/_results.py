"""Shared by the benchmark scripts: write a result as timestamped and latest JSON."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def write_results(benchmark: str, out: str | Path, **payload: Any) -> Path:
    """Write ``{benchmark, timestamp, machine, **payload}`` to ``out/<benchmark>_<stamp>.json``
    and ``out/latest_<benchmark>.json``; return the latter."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": benchmark,
        "timestamp": stamp,
        "machine": platform.platform(),
        **payload,
    }
    text = json.dumps(document, indent=2)
    for name in (f"{benchmark}_{stamp}.json", f"latest_{benchmark}.json"):
        (folder / name).write_text(text)
    return folder / f"latest_{benchmark}.json"
