"""Checks of the paths a command is given, before any work starts, each failure one line in words.

Python's own errors say `[Errno 20] Not a directory: 'README.md/scene'`; these say which option or file is wrong
and why (`--out README.md: exists and is not a folder`). Anything that still fails later (a full disk, say) is
put into words by `lew.cli.describe_os_error`.
"""

from __future__ import annotations

import os
from pathlib import Path

from lew.errors import LewError


def check_readable_file(path: Path, *, label: str = "", need_content: bool = False) -> None:
    """Refuse a path that is not a file this process can read (or, with `need_content`, an empty one)."""
    name = f"{label} {path}" if label else str(path)
    if not path.exists():
        blocker = _file_in_the_way(path)
        raise LewError(f"{name}: {blocker} is a file, not a folder" if blocker else f"{name}: no such file")
    if path.is_dir():
        raise LewError(f"{name}: is a folder, not a file")
    if not path.is_file():
        raise LewError(f"{name}: not a regular file")
    if not os.access(path, os.R_OK):
        raise LewError(f"{name}: permission denied (cannot read it)")
    if need_content and path.stat().st_size == 0:
        raise LewError(f"{name}: is empty (0 bytes), so there is nothing to process")


def check_writable_folder(path: Path, *, label: str) -> None:
    """Refuse a folder that cannot be created or written in (it may not exist yet: it is created later)."""
    name = f"{label} {path}"
    if path.exists() and not path.is_dir():
        raise LewError(f"{name}: exists and is not a folder")
    blocker = _file_in_the_way(path)
    if blocker is not None:
        raise LewError(f"{name}: {blocker} is a file, not a folder")
    existing = _nearest_existing(path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LewError(f"{name}: permission denied (cannot write in {existing})")


def create_folder(path: Path, *, label: str) -> None:
    """Create `path` (and its parents) now, so that a folder that cannot be made is refused before any work.

    check_writable_folder's checks cannot see everything (a pseudo-filesystem like /proc, a full or read-only mount,
    root's bypass of permission bits): creating it is the only sure test. Raises LewError in one line.
    """
    check_writable_folder(path, label=label)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LewError(f"{label} {path}: could not be created ({error.strerror or error})") from None


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _file_in_the_way(path: Path) -> Path | None:
    """The first parent of `path` that exists as something other than a folder, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None
