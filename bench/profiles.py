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


def importtime_children(stderr: str, module: str, count: int = 12) -> list[tuple[str, float, float]]:
    """The slowest imports made directly by `module`, from an `-X importtime` report: (name, cumulative ms, self ms).

    The report lists a module after everything it imports, each nesting level indented two more spaces; a
    module shared by several importers is charged to the first that imports it.
    """
    parsed = [
        (len(indent), name, int(cumulative_us) / 1000, int(self_us) / 1000)
        for self_us, cumulative_us, indent, name in IMPORTTIME_LINE.findall(stderr)
    ]
    children: list[tuple[str, float, float]] = []
    for index, (depth, name, _, _) in enumerate(parsed):
        if name != module:
            continue
        # Walk back from the module's own line over its subtree, keeping the lines one level deeper.
        for child_depth, child, cumulative, self_ms in reversed(parsed[:index]):
            if child_depth <= depth:
                break
            if child_depth == depth + 2 and not module.startswith(child + "."):
                children.append((child, cumulative, self_ms))
        break
    return sorted(children, key=lambda row: row[1], reverse=True)[:count]
