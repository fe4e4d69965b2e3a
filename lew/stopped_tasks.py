"""Worker tasks that stopped recently, with their stop codes and reasons: the answer to "why is nothing running?".

ECS keeps a stopped task for about an hour (ListTasks ``desiredStatus=STOPPED``, then DescribeTasks); `lew status`
lists those of the worker family, the ones that failed to start first, and the Spot fallback when one is on.

It also says when the launcher is holding starts back after repeated start failures (launcher/lew_launcher/
holdoff.py). The launcher keeps that streak in its execution environment's memory, where nothing outside can read
it, so `lew status` applies the launcher's own rule to what ECS shows: the tasks that failed to start since a task
last started, and the hold after the last of them. A cold start of the launcher forgets its streak (one more round
of starts); this reading does not, so it may announce a hold the launcher has just forgotten, never miss one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lew.ui import print_table
from lew_launcher.holdoff import HOLD_MAX_SECONDS, hold_seconds
from lew_launcher.spot_fallback import read_fallback
from lew_launcher.stops import failed_to_start

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

DESCRIBE_TASKS_MAX = 100  # DescribeTasks takes at most 100 ARNs
RECENT = timedelta(hours=1)  # about how long ECS keeps a stopped task


@dataclass(frozen=True)
class StoppedTask:
    """One stopped task as `lew status` shows it; ``stopped_at`` is None where ECS (or moto) gives no time."""

    task_arn: str
    stop_code: str | None
    reason: str  # the task's stopped reason, then each container's reason or exit code
    started: bool  # False: the task never ran
    stopped_at: datetime | None
    capacity_provider: str | None
    started_at: datetime | None = None

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def failed_to_start(self) -> bool:
        return failed_to_start(self.stop_code, self.started)


@dataclass(frozen=True)
class StartHold:
    """Starts held back by the launcher: `failures` tasks in a row failed to start, the last at `last_failure`."""

    failures: int
    last_failure: datetime
    seconds: float  # how long after the last failure the launcher waits (holdoff.hold_seconds)

    @property
    def until(self) -> datetime:
        return self.last_failure + timedelta(seconds=self.seconds)


def start_hold(tasks: Sequence[StoppedTask], running_started_at: Sequence[datetime]) -> StartHold | None:
    """The launcher's hold-off as its rule reads from ECS (holdoff.StartFailureStreak), or None when it holds none.

    The streak is the tasks that failed to start after the last task that started (stopped or still running); from
    the second one on, starts wait `hold_seconds(n)` after the last failure. Tasks with no stop time are not counted.
    """
    starts = [task.started_at for task in tasks if task.started_at is not None] + list(running_started_at)
    last_start = max(starts, default=None)
    failed = [
        task.stopped_at
        for task in tasks
        if task.failed_to_start and task.stopped_at is not None and (last_start is None or task.stopped_at > last_start)
    ]
    seconds = hold_seconds(len(failed))
    if not failed or seconds <= 0:
        return None
    return StartHold(len(failed), max(failed), seconds)


@dataclass(frozen=True)
class StoppedTasksReport:
    """The worker family's recently stopped tasks (failed starts first, then newest first), the Spot fallback, and
    the launcher's hold on starts after repeated start failures (None when it holds none)."""

    tasks: list[StoppedTask]
    spot_fallback_until: datetime | None
    start_hold: StartHold | None = None

    @property
    def failed_starts(self) -> int:
        return sum(task.failed_to_start for task in self.tasks)


def stopped_task(task: Mapping[str, Any]) -> StoppedTask:
    """A DescribeTasks task, read defensively (fields ECS leaves out are None or empty)."""
    parts = [str(task.get("stoppedReason") or "")]
    for container in task.get("containers") or []:
        if container.get("reason") and container["reason"] != task.get("stoppedReason"):
            parts.append(f"{container.get('name', '?')}: {container['reason']}")
        elif container.get("exitCode") is not None and task.get("startedAt"):
            parts.append(f"{container.get('name', '?')}: exit {container['exitCode']}")
    stopped_at, started_at = task.get("stoppedAt"), task.get("startedAt")
    return StoppedTask(
        task_arn=str(task.get("taskArn", "")),
        stop_code=task.get("stopCode"),
        reason="; ".join(part for part in parts if part) or "no reason given",
        started=task.get("startedAt") is not None,
        stopped_at=stopped_at if isinstance(stopped_at, datetime) else None,
        capacity_provider=task.get("capacityProviderName"),
        started_at=started_at if isinstance(started_at, datetime) else None,
    )


def stopped_tasks(
    ecs: ECSClient, cluster: str, family: str, *, within: timedelta = RECENT, now: datetime | None = None
) -> list[StoppedTask]:
    """The family's tasks that ECS reports stopped within ``within`` (ECS forgets them after about an hour)."""
    arns: list[str] = []
    pages = ecs.get_paginator("list_tasks").paginate(cluster=cluster, family=family, desiredStatus="STOPPED")
    for page in pages:
        arns.extend(page.get("taskArns", []))
    cutoff = (now or datetime.now(UTC)) - within
    found: list[StoppedTask] = []
    for start in range(0, len(arns), DESCRIBE_TASKS_MAX):
        described = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + DESCRIBE_TASKS_MAX])
        for task in described.get("tasks", []):
            if task.get("lastStatus") != "STOPPED":
                continue  # stopping, not stopped yet
            stopped = stopped_task(task)
            if stopped.stopped_at is None or stopped.stopped_at >= cutoff:
                found.append(stopped)
    newest = datetime.max.replace(tzinfo=UTC)  # tasks without a time (moto) keep ECS's order, before timed ones
    found.sort(key=lambda task: task.stopped_at or newest, reverse=True)
    found.sort(key=lambda task: not task.failed_to_start)  # stable: failed starts first, each group newest first
    return found


def running_started_at(ecs: ECSClient, cluster: str, family: str) -> list[datetime]:
    """When each of the family's running tasks started (tasks still starting have no time yet)."""
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, family=family, desiredStatus="RUNNING"):
        arns.extend(page.get("taskArns", []))
    found: list[datetime] = []
    for start in range(0, len(arns), DESCRIBE_TASKS_MAX):
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + DESCRIBE_TASKS_MAX]).get(
            "tasks", []
        ):
            started_at = task.get("startedAt")
            if isinstance(started_at, datetime):
                found.append(started_at)
    return found


def stopped_tasks_report(ecs: ECSClient, cluster: str, family: str) -> StoppedTasksReport:
    """Recently stopped worker tasks, the end of the FARGATE_SPOT -> FARGATE fallback if it is on, and the
    launcher's hold on starts after repeated start failures (start_hold)."""
    fallback = read_fallback(ecs, cluster)
    until = fallback.until if fallback is not None and fallback.active(datetime.now(UTC)) else None
    tasks = stopped_tasks(ecs, cluster, family)
    hold = (
        start_hold(tasks, running_started_at(ecs, cluster, family)) if any(t.failed_to_start for t in tasks) else None
    )
    return StoppedTasksReport(tasks, until, hold)


def print_stopped_tasks(report: StoppedTasksReport, *, limit: int) -> None:
    """The report as `lew status` prints it: a table of at most ``limit`` tasks, and what was left out."""
    if report.spot_fallback_until is not None:
        until = report.spot_fallback_until.strftime("%H:%M:%SZ")
        print(f"Spot fallback: workers start on FARGATE until {until} (FARGATE_SPOT had no capacity)")
    if report.start_hold is not None:
        print(describe_start_hold(report.start_hold, datetime.now(UTC)))
    if not report.tasks:
        print("worker tasks stopped in the last hour: none")
        return
    title = f"worker tasks stopped in the last hour: {len(report.tasks)}, {report.failed_starts} failed to start"
    print_table(title, ["task", "stop code", "ran", "stopped", "reason"], _rows(report.tasks[:limit]))
    if len(report.tasks) > limit:
        print(f"... and {len(report.tasks) - limit} more (--limit {len(report.tasks)} shows them)")


def describe_start_hold(hold: StartHold, now: datetime) -> str:
    """One line: how many tasks failed to start in a row, and how long the launcher holds new starts back."""
    if now < hold.until:
        left = f"until {_clock(hold.until)}, {round((hold.until - now).total_seconds())} s from now"
    else:
        left = f"{round(hold.seconds)} s, over since {_clock(hold.until)}: the next upload or reconcile starts a round"
    return (
        f"starts held back: {hold.failures} worker tasks in a row failed to start (the last at "
        f"{_clock(hold.last_failure)}), so the launcher waits {left}; each further failure doubles the wait, up to "
        f"{round(HOLD_MAX_SECONDS)} s: fix the cause below (read from ECS by the launcher's rule; the launcher keeps "
        "its count in memory, and a cold start forgets it)"
    )


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%SZ")


def _rows(tasks: Sequence[StoppedTask]) -> list[list[str]]:
    return [
        [
            task.task_id,
            task.stop_code or "-",
            "yes" if task.started else "no",
            task.stopped_at.strftime("%H:%M:%SZ") if task.stopped_at else "-",
            task.reason,
        ]
        for task in tasks
    ]
