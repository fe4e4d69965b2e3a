"""Progress reports from processors: the `LEW_PROGRESS` convention, and POV-Ray's own progress.

The convention, which any command can follow without a library: append one JSON object per line to the file
named by the environment variable `LEW_PROGRESS`, e.g. `{"done": 12, "total": 100, "message": "frame 12"}`.
`done` is a number ≥ 0 (required), `total` a number > 0 or null (unknown), `message` a short text or null. Only
the last complete, valid line counts; a torn or malformed line is ignored, never an error. (docs/worker.md)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from worker.commands import read_tail

PROGRESS_ENV = "LEW_PROGRESS"
PROGRESS_FILE_NAME = "progress.jsonl"  # in the job's folder, next to processor.log
MAX_MESSAGE_CHARS = 200
# Only the end of the file is read: a command may append thousands of lines, the last one is what counts.
TAIL_BYTES = 4096
# POV-Ray's render status, written with carriage returns to its output: "Rendered 3072 of 76800 pixels (4%)".
POVRAY_RENDERED = re.compile(r"Rendered (\d+) of (\d+) pixels")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Progress:
    """How far a job is: `done` of `total` (units of the processor's choosing; `total` None when unknown)."""

    done: float
    total: float | None = None
    message: str | None = None

    @property
    def fraction(self) -> float | None:
        """done / total in 0..1, or None when the total is unknown."""
        return None if not self.total else min(1.0, self.done / self.total)

    def to_dict(self) -> dict[str, Any]:
        """The `progress` object of claims and events: {"done", "total", "message"}."""
        return {"done": _number(self.done), "total": _number(self.total), "message": self.message}

    @classmethod
    def from_dict(cls, document: Any) -> Progress | None:
        """A progress report from a parsed JSON value; None when it does not follow the convention."""
        if not isinstance(document, dict):
            return None
        done, total, message = document.get("done"), document.get("total"), document.get("message")
        if not _is_number(done) or float(done) < 0:
            return None
        limit: float | None = None
        if total is not None:
            if not _is_number(total) or float(total) <= 0:
                return None
            limit = float(total)
        amount = float(done) if limit is None else min(float(done), limit)
        text = None
        if isinstance(message, str) and message.strip():
            text = _CONTROL.sub(" ", message).strip()[:MAX_MESSAGE_CHARS]
        return cls(done=amount, total=limit, message=text)


def parse_line(line: str) -> Progress | None:
    """One line of a progress file; None when it is not a valid report."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return Progress.from_dict(document)


def read_latest(path: Path) -> Progress | None:
    """The last valid report in a progress file (its last TAIL_BYTES only); None when there is none (yet)."""
    text = _tail(path)
    if not text:
        return None
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # the writer is in the middle of this line
    for line in reversed(lines):
        found = parse_line(line) if line.strip() else None
        if found is not None:
            return found
    return None


def povray_progress(log_tail: str) -> Progress | None:
    """The last "Rendered N of M pixels" of POV-Ray's output, as progress in pixels; None before rendering starts."""
    matches = POVRAY_RENDERED.findall(log_tail)
    if not matches:
        return None
    done, total = (int(value) for value in matches[-1])
    if total <= 0:
        return None
    return Progress(done=float(min(done, total)), total=float(total), message="rendering")


def _tail(path: Path) -> str:
    try:
        return read_tail(path, TAIL_BYTES)
    except OSError:  # progress is best effort: a file that cannot be read reports none, and never fails the job
        return ""


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value
