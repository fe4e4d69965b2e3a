"""Results: one row per measured figure, the terminal table, and BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table


@dataclass
class Row:
    """One line of the table. `met` is None for figures that are only reported, or when the run failed."""

    number: str
    benchmark: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.met is None:
            return "report"
        return "yes" if self.met else "NO"


@dataclass
class Section:
    """A benchmark's method, its details and (when a target is missed) the profile, for BENCHMARKS.md."""

    title: str
    body: list[str] = field(default_factory=list)


COLUMNS = ("#", "Benchmark", "Measured", "Floor / baseline", "Ratio", "Target", "Met?")


def ratio_text(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def cells(row: Row) -> tuple[str, ...]:
    measured = f"failed: {row.error}" if row.error else row.measured
    return (row.number, row.benchmark, measured, row.baseline, ratio_text(row.ratio), row.target, row.verdict)


def print_table(rows: Sequence[Row], console: Console, title: str) -> None:
    """The results table in the terminal."""
    table = Table(title=title, show_lines=False)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    style = {"yes": "green", "NO": "bold red", "ERROR": "bold red", "report": "cyan"}
    for row in rows:
        values = list(cells(row))
        values[-1] = f"[{style[row.verdict]}]{values[-1]}[/]"
        table.add_row(*values)
    console.print(table)


def markdown_table(rows: Sequence[Row]) -> list[str]:
    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(escape(cell) for cell in cells(row)) + " |" for row in rows]
    return lines


def markdown(
    rows: Sequence[Row],
    sections: Sequence[Section],
    machine: Mapping[str, str],
    command: str,
    preamble: Sequence[str],
) -> str:
    """The whole of BENCHMARKS.md."""
    lines = ["# Benchmarks", "", *preamble, "", "## Results", "", *markdown_table(rows), ""]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in machine.items()]
    lines += ["", f"Command: `{command}`", ""]
    for section in sections:
        lines += [f"## {section.title}", "", *section.body, ""]
    return "\n".join(lines).rstrip() + "\n"
