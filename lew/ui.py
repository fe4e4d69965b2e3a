"""Terminal output: rich tables and a live progress line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {"succeeded": "green", "failed": "red", "rejected": "yellow", "timed out": "red"}


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


class ProgressDisplay:
    """Live counters while jobs flow (queued, in flight, done, failed, workers); a new line per change if piped."""

    def __init__(self, title: str, *, stream: TextIO | None = None) -> None:
        self._title = title
        self._stream = stream or sys.stdout
        self._live: Live | None = None
        self._last = ""

    def __enter__(self) -> ProgressDisplay:
        if is_terminal(self._stream):
            # No redirection of sys.stdout/stderr: rich would print what other threads write (the in-process
            # launcher's logs and metrics) above the display, around the local stack's routing to its log file.
            self._live = Live(
                Text(self._title),
                console=Console(file=self._stream),
                refresh_per_second=4,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.__enter__()
        return self

    def update(self, counts: Mapping[str, int | str]) -> None:
        line = "  ".join(f"{name} {value}" for name, value in counts.items())
        if line == self._last:
            return
        self._last = line
        if self._live is not None:
            self._live.update(Text.assemble((f"{self._title}  ", "bold"), line))
        else:
            self._stream.write(f"{self._title}: {line}\n")
            self._stream.flush()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, traceback)
