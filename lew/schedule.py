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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from lew import ops, template
from lew.errors import LewError
from lew_launcher.schedule import run_id, schedule_event
from lew_launcher.skips import matches_suffix
from worker.errors import error_code
from worker.paths import manifest_key, results_key_problem
from worker.runs import run_time
from worker.s3json import MISSING_KEY_CODES

if TYPE_CHECKING:
    from lew.target import Target

LOCAL_SCHEDULE_ARN: Final = "lew-local-schedule"
ACCEPTED: Final = 202  # Lambda's status code for an accepted asynchronous invocation
# A run a little ahead of this machine's clock (another machine's) is still one that may exist; further ahead, no
# tick has made it yet.
FUTURE_RUN_SLACK: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class FiredRun:
    """A run that was started: the object, the run id, and where its manifest will be."""

    bucket: str
    key: str
    run: str
    scheduled_time: str
    manifest_key: str


def run_time_of(run: str) -> datetime:
    """The scheduled time a run id (`--run ID`) names; LewError in one line when it names no real time."""
    try:
        return run_time(run)
    except ValueError as error:
        raise LewError(f"--run {error}") from None


def in_the_future(moment: datetime) -> bool:
    """True when no tick can have made a run of this time yet (beyond FUTURE_RUN_SLACK of this machine's clock)."""
    return moment > datetime.now(UTC) + FUTURE_RUN_SLACK


def rate_seconds(expression: str) -> int | None:
    """The period of a `rate(N unit)` expression in seconds (the local stack's clock runs these); None for cron(),
    at() or anything else, which the local stack runs only on demand."""
    try:
        return template.rate_seconds(expression)
    except LewError:
        return None


def scheduled_time_text(moment: datetime) -> str:
    """An aware time as the event's scheduledTime (UTC, milliseconds when it has any)."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def fire(target: Target, key: str | None = None, *, at: datetime | None = None) -> FiredRun:
    """Start one run of the scheduled job: of `key`, else of the stack's ScheduleObjectKey, for time `at` (now).

    `key` may be an `s3://BUCKET/KEY` URL of the stack's bucket. Raises LewError in one line, before anything is
    sent, when the stack has no schedule and no key is given, when the launcher would refuse the key (its suffix, or
    under the result prefix), when the object does not exist, when the run (`at`) already has its outcome, when its
    results could not be stored (key too long), or when the launcher cannot be invoked.
    """
    chosen = _key_of(target, key) if key else target.schedule_key
    if not chosen:
        raise LewError(
            f"{target.description} has no scheduled job (ScheduleObjectKey is empty): name the object, e.g. "
            "`lew schedule fire schedules/etl.zip`"
        )
    refused = key_problem(chosen, suffixes=target.suffixes, result_prefix=target.result_prefix)
    if refused is not None:
        raise LewError(refused)
    if target.launcher_function and chosen != target.schedule_key and not chosen.startswith(target.input_prefix):
        # The template lets the worker task role read InputPrefix and ScheduleObjectKey, nothing else.
        raise LewError(
            f"{chosen}: a deployed worker may read only {target.input_prefix}* and ScheduleObjectKey "
            f"({target.schedule_key or 'not set'}), so this run could only fail; deploy with ScheduleObjectKey={chosen}"
        )
    if at is not None and in_the_future(at):
        raise LewError(
            f"--at {scheduled_time_text(at)} is in the future: that tick is the schedule's to run (run it with its "
            "archive as it is then); `lew schedule fire` without --at runs one now"
        )
    _check_object(target, chosen)
    scheduled_time = scheduled_time_text(at or datetime.now(UTC))
    run = run_id(scheduled_time)  # a time written here is always one (ScheduleEventError is for events received)
    problem = results_key_problem(chosen, target.input_prefix, target.result_prefix, run)
    if problem is not None:
        raise LewError(problem)
    manifest = manifest_key(chosen, target.input_prefix, target.result_prefix, run)
    earlier = ops.read_manifest(target.s3, target.bucket, manifest, target.result_prefix)
    if earlier is not None:  # only a run for an earlier time (`at`) can have one: a redelivery would skip it
        raise LewError(
            f"run {run} of {chosen} already {earlier.status} (s3://{target.bucket}/{manifest}): not run again; "
            f"`lew rerun {chosen} --run {run}` runs it again"
        )
    event = schedule_event(target.bucket, chosen, scheduled_time, target.schedule_arn or LOCAL_SCHEDULE_ARN)
    if target.launcher_inbox_url:
        target.sqs.send_message(QueueUrl=target.launcher_inbox_url, MessageBody=json.dumps(event))
    elif target.launcher_function:
        _invoke(target, event)
    else:
        raise LewError(f"{target.description}: lew does not know its launcher, so it cannot fire a run")
    return FiredRun(target.bucket, chosen, run, scheduled_time, manifest)


def key_problem(key: str, *, suffixes: Sequence[str], result_prefix: str) -> str | None:
    """Why the launcher would refuse every run of `key` (its skip rules for a scheduled job), or None.

    The same rules as lew_launcher.skips for a scheduled object, which may lie outside the input prefix.
    """
    if result_prefix and key.startswith(result_prefix):
        return f"{key} is under the result prefix {result_prefix}: the launcher refuses it (results are never inputs)"
    if key.endswith("/"):
        return f"{key} is a folder, not an archive"
    if not matches_suffix(key, tuple(suffix.lower() for suffix in suffixes)):
        return f"{key}: the stack only processes {', '.join(suffixes)} files, so the launcher would refuse every run"
    return None


def _key_of(target: Target, given: str) -> str:
    """A key as given, or the key of an `s3://BUCKET/KEY` URL of the stack's bucket (LewError for another)."""
    if not given.startswith("s3://"):
        return given
    bucket, _, key = given.removeprefix("s3://").partition("/")
    if bucket != target.bucket or not key:
        raise LewError(f"{given}: not an object of this stack's bucket {target.bucket} (s3://{target.bucket}/KEY)")
    return key


def _check_object(target: Target, key: str) -> None:
    try:
        target.s3.head_object(Bucket=target.bucket, Key=key)
    except ClientError as error:
        if error_code(error) in MISSING_KEY_CODES:
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
