"""Terminal output: rich tables on a terminal, aligned plain text otherwise (live job progress: lew/jobs_view.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {"succeeded": "green", "failed": "red", "rejected": "yellow", "timed out": "red"}


def plural(count: float, noun: str, plural_noun: str | None = None, *, spec: str = "") -> str:
    """A count with its noun, singular for exactly one: `plural(1, "archive")` -> "1 archive", `plural(3,
    "archive")` -> "3 archives", `plural(2, "task launch", "task launches")`; `spec` formats the count (",.0f")."""
    return f"{count:{spec}} {noun if count == 1 else plural_noun or noun + 's'}"


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, stream: TextIO | None = None
) -> None:
    """A table: boxed and coloured on a terminal, aligned plain text otherwise (for logs and pipes)."""
    stream = stream or sys.stdout
    if is_terminal(stream):
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell, style=STATUS_STYLES.get(cell, "")) for cell in row))
        Console(file=stream).print(table)
        return
    widths = [max(len(column), *(len(row[index]) for row in rows)) for index, column in enumerate(columns)]
    stream.write(f"{title}\n")
    for cells in [columns, *rows]:
        stream.write("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip() + "\n")
    stream.flush()
