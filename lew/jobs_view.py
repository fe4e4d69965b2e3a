"""Live progress of jobs: a rich progress bar per job on a terminal, a line per change otherwise (logs, pipes)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from lew.client import RETRYING, JobState, RunningJob
from lew.ui import is_terminal
from worker.progress import Progress as JobProgress

# Without a terminal a line is written when a job's status changes or its progress passes the next step.
PLAIN_STEP_PERCENT = 10


@dataclass(frozen=True)
class JobLine:
    """One job as the view shows it."""

    name: str
    status: str
    progress: JobProgress | None = None
    age: float | None = None
    note: str | None = None  # a retrying job's last attempt and its error

    @classmethod
    def of_state(cls, name: str, state: JobState) -> JobLine:
        """From `Client.wait`'s states."""
        note = None
        if state.status == RETRYING and state.attempt is not None:
            of = f" of {state.max_attempts}" if state.max_attempts else ""
            note = f"after attempt {state.attempt}{of}: {state.error or 'no reason recorded'}"
        return cls(name, state.status, state.progress, state.age, note)

    @classmethod
    def of_running(cls, job: RunningJob) -> JobLine:
        """From `Client.running_jobs`."""
        return cls(job.key, "running", job.progress, job.age)

    @property
    def percent(self) -> int | None:
        """Whole percent done, None when the total is unknown."""
        fraction = self.progress.fraction if self.progress is not None else None
        return None if fraction is None else int(fraction * 100)

    def describe(self, *, percent: bool = True) -> str:
        """`running 40% rendering (12 s)`: status, progress (`percent=False`: without the %) and age in one line."""
        parts = [self.status]
        if self.progress is not None:
            if self.percent is None:
                parts.append(f"{self.progress.done:g} done")
            elif percent:
                parts.append(f"{self.percent}%")
            if self.progress.message:
                parts.append(self.progress.message)
        if self.age is not None:
            parts.append(f"({format_age(self.age)})")
        if self.note:
            parts.append(self.note)
        return " ".join(parts)


def job_lines(outcomes: Mapping[str, Any], running: Sequence[RunningJob], input_prefix: str) -> list[JobLine]:
    """`lew demo`'s inputs by name: finished (an outcome with a `status` and a `manifest`), running, or queued."""
    by_key = {job.key: job for job in running}
    lines = []
    for name, outcome in outcomes.items():
        job = by_key.get(f"{input_prefix}{name}")
        if getattr(outcome, "manifest", None) is not None:
            lines.append(JobLine(name, str(outcome.status), age=outcome.manifest.seconds))
        elif job is not None:
            lines.append(JobLine(name, "running", job.progress, job.age))
        else:
            lines.append(JobLine(name, "queued"))
    return lines


def format_age(seconds: float) -> str:
    """12 s, 3 min 05 s, 2 h 04 min."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class JobsView:
    """`with JobsView("title") as view: view.update(counts, jobs)`; a bar per job, counters on the line above."""

    def __init__(self, title: str, *, stream: TextIO | None = None) -> None:
        self._title = title
        self._stream = stream or sys.stdout
        self._live: Live | None = None
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._header = Text(title)
        self._printed: dict[str, tuple[str, int | None, str | None]] = {}
        self._last_counts = ""

    def __enter__(self) -> JobsView:
        if is_terminal(self._stream):
            console = Console(file=self._stream)
            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", style="bold"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"),
                console=console,
                auto_refresh=False,
            )
            # No redirection of sys.stdout/stderr: rich would print what other threads write (the in-process
            # launcher's logs and metrics) above the display, around the local stack's routing to its log file.
            self._live = Live(
                Group(self._header, self._bars),
                console=console,
                refresh_per_second=4,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.__enter__()
        return self

    def update(self, counts: Mapping[str, int | str] | None = None, jobs: Sequence[JobLine] = ()) -> None:
        """Show these counters (e.g. queued 2 in flight 1) and these jobs; jobs not listed again keep their bar."""
        line = "  ".join(f"{name} {value}" for name, value in (counts or {}).items())
        if self._bars is not None:
            self._header = Text.assemble((f"{self._title}  ", "bold"), line)
            for job in jobs:
                self._show_bar(job)
            if self._live is not None:
                self._live.update(Group(self._header, self._bars))
            return
        if line and line != self._last_counts:
            self._last_counts = line
            self._stream.write(f"{self._title}: {line}\n")
        for job in jobs:
            seen = (job.status, None if job.percent is None else job.percent // PLAIN_STEP_PERCENT, job.note)
            if self._printed.get(job.name) != seen:
                self._printed[job.name] = seen
                self._stream.write(f"  {job.name}: {job.describe()}\n")
        self._stream.flush()

    def _show_bar(self, job: JobLine) -> None:
        assert self._bars is not None  # noqa: S101 - only called on a terminal
        total = job.progress.total if job.progress is not None else None
        done = job.progress.done if job.progress is not None else 0.0
        if job.status not in ("queued", "running", "retrying") and job.status != "timed out":
            total, done = (total or 1.0), (total or 1.0)  # finished: a full bar, its colour says how
        detail = job.describe(percent=False)  # the bar's own column shows the percentage
        style = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "dead-lettered": "red"}.get(job.status)
        if style:
            detail = f"[{style}]{detail}[/{style}]"
        if job.name not in self._tasks:
            # rich counts in floats; its stubs say int
            self._tasks[job.name] = self._bars.add_task(job.name, total=total, completed=done, detail=detail)  # type: ignore[arg-type]
        else:
            self._bars.update(self._tasks[job.name], total=total, completed=done, detail=detail)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, traceback)
