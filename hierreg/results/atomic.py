"""Replace a folder as a whole or not at all.

:func:`replace_folder` writes the new content into a fresh folder beside the target (same
file system), flushes it to disk, then swaps it into place: on Linux with one atomic
``renameat2(RENAME_EXCHANGE)``, elsewhere with two renames (the old folder is moved aside
first and moved back if the second rename fails). A failure at any point (a full disk, a
read-only folder, an exception, ``kill -9``) leaves the old content where it was; at worst a
hidden ``.NAME.saving-*`` folder remains beside it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path

__all__ = ["check_replaceable", "replace_folder", "write_file"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and flush it to disk."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def replace_folder(
    target: str | os.PathLike, write: Callable[[Path], None], owned: Collection[str]
) -> Path:
    """Put the folder that ``write(folder)`` fills at ``target``, atomically.

    ``target`` may be missing, an empty folder, or a folder holding only files named in
    ``owned`` (an earlier save); anything else is refused with ``FileExistsError`` before
    anything is written, so a save never deletes files it did not write.
    """
    target = Path(target)
    check_replaceable(target, owned)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(fresh, 0o777 & ~umask)
        write(fresh)
        _fsync_folder(fresh)
        if not target.exists():
            os.rename(fresh, target)  # atomic; fails if something appeared there meanwhile
        else:
            check_replaceable(target, owned)
            _swap(fresh, target)
            shutil.rmtree(fresh, ignore_errors=True)  # now holds the old content
        _fsync_folder(parent)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return target


def check_replaceable(target: Path, owned: Collection[str]) -> None:
    """Raise ``FileExistsError`` unless ``target`` is missing, an empty folder, or a folder
    of files named in ``owned``."""
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise FileExistsError(
            f"{target} exists and is not a folder of a saved model; remove it or choose "
            "another path"
        )
    foreign = sorted(p.name for p in target.iterdir() if p.name not in owned)
    if foreign:
        raise FileExistsError(
            f"{target} holds files that are not part of a saved model ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}); not overwriting: choose an empty or new "
            "folder"
        )


def _swap(fresh: Path, target: Path) -> None:
    """Exchange two folders: atomically where the OS can, else by two renames."""
    if _exchange(fresh, target):
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(fresh, target)
    except BaseException:
        os.rename(aside, target)
        raise
    os.rename(aside, fresh)  # the caller deletes ``fresh``


def _exchange(a: Path, b: Path) -> bool:
    """``renameat2(a, b, RENAME_EXCHANGE)``; False where it is not available."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
