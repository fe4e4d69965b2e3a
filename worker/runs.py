"""Scheduled runs: a job that processes a fixed object once per schedule tick (docs/deploy.md, "Scheduled jobs").

The launcher turns a schedule's event into a work message whose record carries a `lew` block:

    "lew": {"run": "20261130T030000Z", "scheduledTime": "2026-11-30T03:00:00Z", "schedule": "arn:aws:scheduler:..."}

The run id is the scheduled time in ISO 8601's basic format (fractional seconds kept, as `lew schedule fire` gives
them): it names the run's results folder (worker/paths.py), so it is checked here against that one shape, and a
message whose run id is anything else is poison. Each run is a job of its own: never skipped because another run or
an upload of the same key was processed, only because this very run already has its outcome (a redelivery).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

# 20261130T030000Z, 20261130T030000.123Z: digits, a T, digits, an optional fraction, Z. Nothing that a path or a
# shell could read as anything else.
RUN_ID: Final = re.compile(r"\d{8}T\d{6}(\.\d{1,6})?Z")


@dataclass(frozen=True)
class Run:
    """One scheduled run: its id, the time it was scheduled for (ISO 8601), and the schedule that fired it."""

    id: str
    scheduled_time: str | None = None
    schedule: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The run as manifests and events record it: {"id", "scheduled_time", "schedule"}."""
        return {"id": self.id, "scheduled_time": self.scheduled_time, "schedule": self.schedule}


def run_time(run_id: str) -> datetime:
    """The scheduled time a run id names (UTC); ValueError, naming the id, when it is not a run id of a real time."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"{run_id!r} is not a run id like 20261130T030000Z")
    whole, _, fraction = run_id.removesuffix("Z").partition(".")
    try:
        moment = datetime.strptime(whole, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{run_id!r} is not a run id of a real time (YYYYMMDDTHHMMSSZ, UTC)") from None
    return moment.replace(microsecond=int(fraction.ljust(6, "0")) if fraction else 0)


def scheduled_time_of(run_id: str) -> str:
    """The scheduledTime a run id was made from, in ISO 8601's extended format (`20261130T030000Z` ->
    `2026-11-30T03:00:00Z`; a fraction kept as it was written). ValueError as `run_time`."""
    moment = run_time(run_id)
    fraction = run_id.removesuffix("Z").partition(".")[2]
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


# What the S3 answers table (worker/errors.py) tells an uploader, and what it means for a scheduled run instead.
_RUN_WORDS: Final = (
    ("the object was deleted before the worker got to it", "there was no object at the key when the run started"),
    ("the object version was deleted before the worker got to it", "the object version was gone when the run started"),
)


def advice_for_run(message: str, key: str, run_id: str) -> str:
    """A failure's message as a scheduled run's manifest says it: what to do names the run, not a new upload.

    `lew rerun KEY` becomes `lew rerun <key> --run <id>` (a plain re-run would process the key as an upload), and
    "upload it again" becomes putting the object with `lew schedule upload` and re-running the run.
    """
    rerun = f"`lew rerun {key} --run {run_id}`"
    for upload_words, run_words in _RUN_WORDS:
        message = message.replace(upload_words, run_words)
    message = message.replace("`lew rerun KEY`", rerun)
    message = message.replace("to do: upload it again", f"to do: `lew schedule upload FILE {key}`, then {rerun}")
    if rerun not in message:
        message += f"; once fixed, {rerun} runs this scheduled run again"
    return message


def run_environment(run: Run | None) -> dict[str, str]:
    """What a scheduled run tells its command: LEW_RUN_ID and LEW_SCHEDULED_TIME (ISO 8601, UTC as Scheduler
    sends it), the run's logical date for an ETL script; nothing for an upload's job."""
    if run is None:
        return {}
    return {"LEW_RUN_ID": run.id, "LEW_SCHEDULED_TIME": run.scheduled_time or ""}


def run_from_block(block: Mapping[str, Any]) -> Run | None:
    """The run a record's `lew` block names, or None when it names none.

    Raises ValueError (TypeError) naming the field when the block names a run in another shape or of a time that
    does not exist (the message is then poison).
    """
    run_id = block.get("run")
    if run_id is None:
        return None
    if not isinstance(run_id, str):
        raise TypeError(f"lew.run {run_id!r} is not a run id like 20261130T030000Z")
    try:
        run_time(run_id)
    except ValueError as error:
        raise ValueError(f"lew.run {error}") from None
    return Run(run_id, _optional_text(block, "scheduledTime"), _optional_text(block, "schedule"))


def _optional_text(block: Mapping[str, Any], name: str) -> str | None:
    value = block.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"lew.{name} is not a string")
    return value or None
