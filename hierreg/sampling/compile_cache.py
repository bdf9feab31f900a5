"""The on-disk compile cache: a usable location, and recovery from damaged entries.

Compiled models are cached on disk by PyTensor and numba (under PyTensor's
``base_compiledir``, ``~/.pytensor`` by default), so a later process does not compile the
same model again. Two things must never stop a fit:

* an unusable location (no home folder, a read-only one): :func:`ensure_usable_location`,
  run when hierreg is imported, points PyTensor at a private temporary folder instead, with a
  :class:`CompileCacheWarning`;
* a damaged entry (a truncated file after a crash or a full disk): :func:`healing` runs a
  compilation, and if it fails while numba reads its cache, deletes the entries it was
  reading, warns, and compiles once more.

Cache files are pickles written by numba; they are trusted as numba trusts them (the cache
folder must be writable only by its owner), and never read by hierreg itself.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CompileCacheWarning", "ensure_usable_location", "healing"]

# bound on the cache entries one compile may remove (each costs a compile attempt)
MAX_HEALS = 16
_NUMBA_CACHING = os.path.join("numba", "core", "caching.py")
_CACHE_SUFFIXES = (".nbi", ".nbc")


class CompileCacheWarning(RuntimeWarning):
    """The compile cache was moved to a temporary folder, or a damaged entry was rebuilt."""


def _usable(folder: Path) -> bool:
    try:
        (folder / "numba").mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def _configured_elsewhere() -> bool:
    """PyTensor's location set by the user (flags or a config file): theirs to fix."""
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" in flags or "compiledir" in flags:
        return True
    if os.environ.get("PYTENSORRC"):
        return True
    home = os.environ.get("HOME")
    return home is not None and Path(home, ".pytensorrc").is_file()


def ensure_usable_location() -> Path | None:
    """Before PyTensor is imported: if its default cache folder cannot be written, use a
    private temporary one (returned) and warn; else None."""
    if "pytensor" in sys.modules or _configured_elsewhere() or os.name == "nt":
        return None
    home = os.environ.get("HOME") or str(Path.home())
    default = Path(home) / ".pytensor"
    if _usable(default):
        return None
    fallback = Path(tempfile.gettempdir()) / f"hierreg-pytensor-{os.getuid()}"
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
        if fallback.stat().st_uid != os.getuid() or not _usable(fallback):
            fallback = Path(tempfile.mkdtemp(prefix="hierreg-pytensor-"))
    except OSError:
        fallback = Path(tempfile.mkdtemp(prefix="hierreg-pytensor-"))
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={fallback}") if f)
    warnings.warn(
        f"the compile cache folder {default} cannot be written; compiled models are cached in "
        f"{fallback} for this process instead (set PYTENSOR_FLAGS=base_compiledir=... to "
        "choose a folder)",
        CompileCacheWarning,
        stacklevel=3,
    )
    return fallback


def healing[T](compile: Callable[[], T]) -> T:
    """``compile()``; each time it fails while numba reads a cache entry not removed before,
    delete that entry and compile again (at most ``MAX_HEALS`` times; any other failure
    propagates), then warn once naming what was removed.

    Several entries can be unreadable at once: an upgrade that moved a module the cached code
    refers to makes every entry of that code fail, one per compile.
    """
    removed: list[Path] = []
    first: str | None = None
    try:
        for _ in range(MAX_HEALS):
            try:
                return compile()
            except Exception as err:
                damaged = [p for p in _cache_files_in(err.__traceback__) if p not in removed]
                if not damaged:
                    raise
                for path in damaged:
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        pass
                removed.extend(damaged)
                first = first or f"{type(err).__name__}: {err}"
        return compile()
    finally:
        if removed:
            warnings.warn(
                f"a compile cache entry could not be read ({first}); removed "
                f"{', '.join(p.name for p in removed)} and compiled again",
                CompileCacheWarning,
                stacklevel=3,
            )


def _cache_files_in(traceback: Any) -> list[Path]:
    """The numba cache files being read in the frames of ``traceback``."""
    found: list[Path] = []
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code.co_filename.endswith(_NUMBA_CACHING):
            owner = frame.f_locals.get("self")
            candidates = [frame.f_locals.get("path"), getattr(owner, "_index_path", None)]
            for candidate in candidates:
                if isinstance(candidate, str | os.PathLike):
                    path = Path(candidate)
                    if path.suffix in _CACHE_SUFFIXES and path not in found:
                        found.append(path)
        traceback = traceback.tb_next
    return found
