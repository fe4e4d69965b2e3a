"""Where the local stack's log lines go: each line is tagged with its source (launcher, worker-1, ecs, ...)."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

LogSink = Callable[[str, str], None]
"""Receives (source, line) for every line the stack's parts write; must be thread-safe."""


def prefixed_stream_sink(stream: TextIO | None = None, *, on_broken: Callable[[], None] = lambda: None) -> LogSink:
    """Print `[source] line` to a stream (stdout by default), one whole line at a time.

    When the reader has gone (`lew local up | head`), lines are dropped and `on_broken` is called once, so that
    the stack stops, rather than the thread that wrote the line dying with a BrokenPipeError.
    """
    lock = threading.Lock()
    broken = threading.Event()

    def sink(source: str, line: str) -> None:
        target = stream or sys.__stdout__ or sys.stdout
        with lock:
            if broken.is_set():
                return
            try:
                target.write(f"[{source}] {line}\n")
                target.flush()
            except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
                broken.set()
                on_broken()

    return sink


class FileSink:
    """Append `[source] line` to a log file; used by `lew demo` so that logs do not cover the progress display."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, source: str, line: str) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.write(f"[{source}] {line}\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class ThreadRoutedStdout(io.TextIOBase):
    """A stand-in for sys.stdout that sends what chosen threads print to a sink, line by line.

    The launcher runs in-process (as Lambda would run it in its own sandbox) and its Powertools logger and
    metrics print to sys.stdout. Routing by thread tags those lines `[launcher]` without touching its code.
    """

    def __init__(self, fallback: TextIO) -> None:
        super().__init__()
        self._fallback = fallback
        self._routes: dict[int, Callable[[str], None]] = {}
        self._partial: dict[int, str] = {}
        self._lock = threading.Lock()

    def route_current_thread(self, receive_line: Callable[[str], None]) -> None:
        """Send every whole line that the calling thread prints to `receive_line` instead."""
        with self._lock:
            self._routes[threading.get_ident()] = receive_line

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        with self._lock:
            route = self._routes.get(ident)
            if route is None:
                return self._fallback.write(text)
            *lines, rest = (self._partial.pop(ident, "") + text).split("\n")
            if rest:
                self._partial[ident] = rest
        for line in lines:
            route(line)
        return len(text)

    def flush(self) -> None:
        self._fallback.flush()

    def isatty(self) -> bool:
        return self._fallback.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it as a plain attribute
        return getattr(self._fallback, "encoding", "utf-8") or "utf-8"

    def fileno(self) -> int:
        return self._fallback.fileno()
