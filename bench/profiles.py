"""Profiles for BENCHMARKS.md: pyinstrument's text tree of a child process, and `-X importtime` summaries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bench.harness import python

PROFILE_LINES = 70


def pyinstrument_argv(output: Path, target: Sequence[str]) -> list[str]:
    """Run `python <target>` under pyinstrument, writing its plain-text call tree to `output`."""
    return [python(), "-m", "pyinstrument", "-r", "text", "--no-color", "--no-unicode", "-o", str(output), *target]


def trimmed_profile(path: Path, lines: int = PROFILE_LINES) -> list[str]:
    """The top of a pyinstrument text report (the rest is the long tail of small frames)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        return [f"(no profile: {error})"]
    kept = [line.rstrip() for line in text if line.strip()]
    if len(kept) > lines:
        kept = [*kept[:lines], f"... ({len(kept) - lines} more lines)"]
    return kept


IMPORTTIME_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)")


def importtime_children(stderr: str, package: str, count: int = 12) -> list[tuple[str, float, float]]:
    """The slowest imports made directly by `package`'s own modules, from an `-X importtime` report.

    Returns (name, cumulative ms, self ms). The report lists a module after everything it imports, each nesting
    level indented two more spaces, so a line's importer is the next line indented less. A module shared by
    several importers is charged to the first that imports it.
    """
    parsed = [
        (len(indent), name, int(cumulative_us) / 1000, int(self_us) / 1000)
        for self_us, cumulative_us, indent, name in IMPORTTIME_LINE.findall(stderr)
    ]

    def own(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    children: list[tuple[str, float, float]] = []
    for index, (depth, name, cumulative, self_ms) in enumerate(parsed):
        importer = next((later for later_depth, later, _, _ in parsed[index + 1 :] if later_depth < depth), None)
        if importer is not None and own(importer) and not own(name):
            children.append((name, cumulative, self_ms))
    return sorted(children, key=lambda row: row[1], reverse=True)[:count]
