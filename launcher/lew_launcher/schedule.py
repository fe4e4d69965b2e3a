"""Scheduled jobs: the event an EventBridge Scheduler schedule sends, and the run it starts.

The template's `JobSchedule` (docs/deploy.md, "Scheduled jobs") invokes the launcher with this event, Scheduler
filling in the `<aws.scheduler.*>` context attributes at each tick:

    {"source": "lew.schedule", "detail-type": "Scheduled Job",
     "detail": {"bucket": "...", "key": "schedules/etl.zip",
                "scheduledTime": "2026-11-30T03:00:00Z", "schedule": "arn:aws:scheduler:...:schedule/default/..."}}

`lew schedule fire` sends the same event (the local stack's launcher runs the same code). Each tick is a run, named
by its scheduled time in ISO 8601's basic format (`20261130T030000Z`): the run's results folder, its claim and its
manifest are its own (worker/runs.py, worker/paths.py), so a run is never skipped as "already processed", and a
retried invocation of the same tick names the same run (a duplicate the worker skips).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

SOURCE: Final = "lew.schedule"
DETAIL_TYPE: Final = "Scheduled Job"
# What Scheduler writes in place of `<aws.scheduler.scheduled-time>`; left as it is, the event was not sent by
# Scheduler (a copy of the template's Input, a `sam local invoke` of it).
_PLACEHOLDER_MARK: Final = "<aws.scheduler."


class ScheduleEventError(ValueError):
    """A scheduled-job event that cannot start a run; the message names the field."""


@dataclass(frozen=True)
class ScheduledRun:
    """One run of a schedule: its id (the results folder's name), when it was scheduled for, which schedule."""

    id: str
    scheduled_time: str
    schedule: str | None

    def to_dict(self) -> dict[str, str | None]:
        """The run as the `queued` job event records it: {"id", "scheduled_time", "schedule"}."""
        return {"id": self.id, "scheduled_time": self.scheduled_time, "schedule": self.schedule}

    def message_block(self) -> dict[str, str]:
        """The work message's `lew` block that names the run (worker/runs.py reads it)."""
        block = {"run": self.id, "scheduledTime": self.scheduled_time}
        return block | ({"schedule": self.schedule} if self.schedule else {})


def is_schedule_event(event: Mapping[str, Any]) -> bool:
    return event.get("source") == SOURCE and event.get("detail-type") == DETAIL_TYPE


def run_id(scheduled_time: str) -> str:
    """The run id of a scheduled time: `2026-11-30T03:00:00Z` -> `20261130T030000Z` (UTC; fraction kept).

    Raises ScheduleEventError when the time is not an ISO 8601 date and time.
    """
    if _PLACEHOLDER_MARK in scheduled_time:
        raise ScheduleEventError(
            f"detail.scheduledTime is {scheduled_time!r}, a Scheduler placeholder: only EventBridge Scheduler fills "
            "it in; to run the schedule by hand use `lew schedule fire`"
        )
    try:
        moment = datetime.fromisoformat(scheduled_time)
    except ValueError:
        raise ScheduleEventError(
            f"detail.scheduledTime {scheduled_time!r} is not an ISO 8601 time like 2026-11-30T03:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise ScheduleEventError(f"detail.scheduledTime {scheduled_time!r} has no time zone (Scheduler sends UTC, Z)")
    moment = moment.astimezone(UTC)
    fraction = ""
    if moment.microsecond:
        digits = f"{moment.microsecond:06d}"
        fraction = "." + (digits[:3] if digits.endswith("000") else digits)
    return moment.strftime("%Y%m%dT%H%M%S") + fraction + "Z"


def read_schedule_event(event: Mapping[str, Any]) -> tuple[str, str, ScheduledRun]:
    """The bucket, key and run of a scheduled-job event; raises ScheduleEventError naming a missing or bad field."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise ScheduleEventError("a scheduled-job event without a 'detail' object")
    bucket, key, scheduled_time = (_text(detail, name) for name in ("bucket", "key", "scheduledTime"))
    schedule = detail.get("schedule")
    if schedule is not None and not isinstance(schedule, str):
        raise ScheduleEventError(f"detail.schedule {schedule!r} is not a string")
    if schedule and _PLACEHOLDER_MARK in schedule:
        schedule = None  # a hand-made copy of the template's Input: the schedule is not known
    return bucket, key, ScheduledRun(run_id(scheduled_time), scheduled_time, schedule or None)


def schedule_event(bucket: str, key: str, scheduled_time: str, schedule: str | None = None) -> dict[str, Any]:
    """The event the template's schedule sends, for one scheduled time (what `lew schedule fire` sends)."""
    detail: dict[str, Any] = {"bucket": bucket, "key": key, "scheduledTime": scheduled_time}
    if schedule:
        detail["schedule"] = schedule
    return {"source": SOURCE, "detail-type": DETAIL_TYPE, "detail": detail}


def _text(detail: Mapping[str, Any], name: str) -> str:
    value = detail.get(name)
    if not isinstance(value, str) or not value:
        raise ScheduleEventError(f"detail.{name} of a scheduled-job event is {value!r}, not a non-empty string")
    return value
