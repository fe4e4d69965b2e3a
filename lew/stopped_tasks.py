"""Worker tasks that stopped recently, with their stop codes and reasons: the answer to "why is nothing running?".

ECS keeps a stopped task for about an hour (ListTasks ``desiredStatus=STOPPED``, then DescribeTasks); `lew status`
lists those of the worker family, the ones that failed to start first, and the Spot fallback when one is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lew.ui import print_table
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

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def failed_to_start(self) -> bool:
        return failed_to_start(self.stop_code, self.started)


@dataclass(frozen=True)
class StoppedTasksReport:
    """The worker family's recently stopped tasks (failed starts first, then newest first) and the Spot fallback."""

    tasks: list[StoppedTask]
    spot_fallback_until: datetime | None

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
    stopped_at = task.get("stoppedAt")
    return StoppedTask(
        task_arn=str(task.get("taskArn", "")),
        stop_code=task.get("stopCode"),
        reason="; ".join(part for part in parts if part) or "no reason given",
        started=task.get("startedAt") is not None,
        stopped_at=stopped_at if isinstance(stopped_at, datetime) else None,
        capacity_provider=task.get("capacityProviderName"),
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


def stopped_tasks_report(ecs: ECSClient, cluster: str, family: str) -> StoppedTasksReport:
    """Recently stopped worker tasks, and the end of the FARGATE_SPOT -> FARGATE fallback if it is on."""
    fallback = read_fallback(ecs, cluster)
    until = fallback.until if fallback is not None and fallback.active(datetime.now(UTC)) else None
    return StoppedTasksReport(stopped_tasks(ecs, cluster, family), until)


def print_stopped_tasks(report: StoppedTasksReport, *, limit: int) -> None:
    """The report as `lew status` prints it: a table of at most ``limit`` tasks, and what was left out."""
    if report.spot_fallback_until is not None:
        until = report.spot_fallback_until.strftime("%H:%M:%SZ")
        print(f"Spot fallback: workers start on FARGATE until {until} (FARGATE_SPOT had no capacity)")
    if not report.tasks:
        print("worker tasks stopped in the last hour: none")
        return
    title = f"worker tasks stopped in the last hour: {len(report.tasks)}, {report.failed_starts} failed to start"
    print_table(title, ["task", "stop code", "ran", "stopped", "reason"], _rows(report.tasks[:limit]))
    if len(report.tasks) > limit:
        print(f"... and {len(report.tasks) - limit} more (--limit {len(report.tasks)} shows them)")


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
