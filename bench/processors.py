"""A processor for the large-archive benchmarks: every unpacked file is an output, so the worker downloads,
unpacks and uploads the same bytes that the floor copies (`PROCESSOR=bench.processors:passthrough`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def passthrough(folder: Path, job: Any) -> list[Path]:
    """Return every file of the unpacked archive as an output, unchanged."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
