"""`lew schedule fire`: run a stack's scheduled job now, through the launcher, as its schedule would.

A run is started exactly as EventBridge Scheduler starts one (docs/deploy.md, "Scheduled jobs"): the launcher is
invoked asynchronously with the schedule's event (lew_launcher.schedule), for one scheduled time. On the local stack
the event goes to the local Lambda runtime's inbox, so the same launcher code, with the same retries, handles it; on a
deployed stack lew invokes the launcher function (`<stack>-launcher`, InvocationType Event) with your credentials.

The run id is the scheduled time in ISO 8601's basic format. Scheduler's times are whole seconds; a fire on demand
keeps milliseconds, so two fires a moment apart are two runs (and a fire never reuses a tick's run id).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from lew.errors import LewError
from lew_launcher.schedule import ScheduleEventError, run_id, schedule_event
from worker.paths import manifest_key, results_key_problem

if TYPE_CHECKING:
    from lew.target import Target

# rate(value unit) as Scheduler writes it: the local stack's clock runs these; cron() and at() only on demand.
_RATE: Final = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
LOCAL_SCHEDULE_ARN: Final = "lew-local-schedule"
ACCEPTED: Final = 202  # Lambda's status code for an accepted asynchronous invocation


@dataclass(frozen=True)
class FiredRun:
    """A run that was started: the object, the run id, and where its manifest will be."""

    bucket: str
    key: str
    run: str
    scheduled_time: str
    manifest_key: str


def rate_seconds(expression: str) -> float | None:
    """The period of a `rate(N unit)` expression in seconds; None for cron(), at() or anything else."""
    matched = _RATE.fullmatch(expression.strip())
    if matched is None:
        return None
    return int(matched.group(1)) * _UNIT_SECONDS[matched.group(2).removesuffix("s")]


def scheduled_time_text(moment: datetime) -> str:
    """An aware time as the event's scheduledTime (UTC, milliseconds when it has any)."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def fire(target: Target, key: str | None = None, *, at: datetime | None = None) -> FiredRun:
    """Start one run of the scheduled job: of `key`, else of the stack's ScheduleObjectKey, for time `at` (now).

    Raises LewError in one line when the stack has no schedule and no key is given, when the object does not exist,
    when its results could not be stored (key too long), or when the launcher cannot be invoked.
    """
    chosen = key or target.schedule_key
    if not chosen:
        raise LewError(
            f"{target.description} has no scheduled job (ScheduleObjectKey is empty): name the object, e.g. "
            "`lew schedule fire schedules/etl.zip`"
        )
    if target.launcher_function and chosen != target.schedule_key and not chosen.startswith(target.input_prefix):
        # The template lets the worker task role read InputPrefix and ScheduleObjectKey, nothing else.
        raise LewError(
            f"{chosen}: a deployed worker may read only {target.input_prefix}* and ScheduleObjectKey "
            f"({target.schedule_key or 'not set'}), so this run could only fail; deploy with ScheduleObjectKey={chosen}"
        )
    _check_object(target, chosen)
    scheduled_time = scheduled_time_text(at or datetime.now(UTC))
    try:
        run = run_id(scheduled_time)
    except ScheduleEventError as error:
        raise LewError(str(error)) from None
    problem = results_key_problem(chosen, target.input_prefix, target.result_prefix, run)
    if problem is not None:
        raise LewError(problem)
    event = schedule_event(target.bucket, chosen, scheduled_time, target.schedule_arn or LOCAL_SCHEDULE_ARN)
    if target.launcher_inbox_url:
        target.sqs.send_message(QueueUrl=target.launcher_inbox_url, MessageBody=json.dumps(event))
    elif target.launcher_function:
        _invoke(target, event)
    else:
        raise LewError(f"{target.description}: lew does not know its launcher, so it cannot fire a run")
    return FiredRun(
        target.bucket,
        chosen,
        run,
        scheduled_time,
        manifest_key(chosen, target.input_prefix, target.result_prefix, run),
    )


def _check_object(target: Target, key: str) -> None:
    try:
        target.s3.head_object(Bucket=target.bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise LewError(
                f"s3://{target.bucket}/{key}: no such object; upload the scheduled archive first: "
                f"`lew schedule upload FILE {key}`"
            ) from None
        raise


def _invoke(target: Target, event: dict[str, object]) -> None:
    """Invoke the deployed launcher asynchronously, as Scheduler does (its retries and on-failure queue apply)."""
    answer = target.client("lambda").invoke(
        FunctionName=target.launcher_function, InvocationType="Event", Payload=json.dumps(event).encode()
    )
    if answer.get("StatusCode") != ACCEPTED:
        raise LewError(f"the launcher {target.launcher_function} did not accept the event: {answer.get('StatusCode')}")
