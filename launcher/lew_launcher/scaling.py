"""Scaling: count the active workers and start just enough to drain the backlog.

Concurrency: every invocation counts the active tasks, then starts ``min(MAX_WORKERS, ceil(backlog /
MESSAGES_PER_WORKER)) - active`` more. Invocations running at the same time cannot see each other's tasks, so
with a reserved concurrency of R the fleet can overshoot ``MAX_WORKERS`` by at most ``(R - 1) * MAX_WORKERS``.
The template gives the launcher a reserved concurrency of 1 (parameter ``LauncherConcurrency``), which makes the
bound 0: during a burst, S3's invocations wait in Lambda's asynchronous queue and run one after another (each
takes well under a second), so enqueueing lags the burst by a few seconds at most. ECS lists a new task only
after a short delay, so the launcher also remembers the tasks it started in the last two minutes (the one warm
execution environment serves every invocation when R is 1) and counts them until ECS reports them stopped.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from lew_launcher.batches import DESCRIBE_TASKS_MAX, RUN_TASK_MAX_COUNT, chunks
from lew_launcher.holdoff import StartFailureStreak
from lew_launcher.observability import logger, metrics, tracer
from lew_launcher.retry import RetryPolicy
from lew_launcher.settings import CapacityProvider, Settings
from lew_launcher.spot_fallback import ClusterFallback, begin_fallback, read_fallback

if TYPE_CHECKING:
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_ecs.type_defs import RunTaskRequestTypeDef
    from mypy_boto3_sqs.client import SQSClient

STARTED_BY: Final = "lew-launcher"
# Task states in which a task is (or is about to be) a worker draining the queue.
ACTIVE_TASK_STATES: Final = frozenset({"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"})
# How long a task we started counts as active while ECS does not list or describe it yet.
LAUNCH_MEMORY_SECONDS: Final = 120.0


class RunTaskError(RuntimeError):
    """RunTask kept failing; raised so that Lambda retries (the messages are already safe on the queue)."""

    def __init__(self, message: str, started: int) -> None:
        super().__init__(message)
        self.started = started


@dataclass
class LaunchMemory:
    """Tasks this execution environment started recently, counted as active until ECS reports them stopped.

    ECS lists and describes a new task only after a short delay; without this, back-to-back invocations would
    each start MAX_WORKERS tasks.
    """

    ttl: float = LAUNCH_MEMORY_SECONDS
    clock: Callable[[], float] = time.monotonic
    _started: dict[str, float] = field(default_factory=dict)
    # Tasks that stopped without running since a task last started: they hold back new starts (see holdoff).
    start_failures: StartFailureStreak = field(default_factory=StartFailureStreak)

    def remember(self, task_arns: Iterable[str]) -> None:
        now = self.clock()
        self._started.update(dict.fromkeys(task_arns, now))

    def recent(self) -> set[str]:
        """The ARNs started less than ``ttl`` seconds ago (older ones are forgotten)."""
        cutoff = self.clock() - self.ttl
        self._started = {arn: at for arn, at in self._started.items() if at >= cutoff}
        return set(self._started)

    def clear(self) -> None:
        self._started.clear()
        self.start_failures.clear()


@dataclass(frozen=True)
class ScaleResult:
    backlog: int
    active_tasks: int | None  # None: not counted, because no worker is wanted
    desired_tasks: int
    tasks_started: int
    held_back_seconds: float = 0.0  # > 0: starts were held back this long after repeated start failures
    capacity_provider: CapacityProvider | None = None  # what RunTask used, when it started any
    fallback_until: datetime | None = None  # the end of the FARGATE_SPOT -> FARGATE fallback RunTask was under

    def summary(self) -> dict[str, Any]:
        """The launcher summary's scaling fields; the fallback and hold-off ones only when they applied."""
        fields: dict[str, Any] = {
            "backlog": self.backlog,
            "active_tasks": self.active_tasks,
            "desired_tasks": self.desired_tasks,
            "tasks_started": self.tasks_started,
        }
        if self.held_back_seconds:
            fields["starts_held_back_seconds"] = round(self.held_back_seconds, 1)
        if self.fallback_until is not None:
            fields["capacity_provider"] = str(self.capacity_provider)
            fields["spot_fallback_until"] = self.fallback_until.isoformat()
        return fields


@dataclass
class CapacityPlan:
    """The capacity provider RunTask uses, and how to fall back from FARGATE_SPOT when Spot has no capacity."""

    provider: CapacityProvider
    cluster_arn: str | None = None  # known when a fallback to FARGATE may be recorded
    fallback_seconds: int = 0
    fallback_until: datetime | None = None

    def fall_back(self, ecs: ECSClient, now: datetime) -> bool:
        """Switch from FARGATE_SPOT to FARGATE and record the cool-down on the cluster; False if it cannot."""
        if self.provider is not CapacityProvider.FARGATE_SPOT or not self.fallback_seconds or not self.cluster_arn:
            return False
        self.fallback_until = begin_fallback(ecs, self.cluster_arn, self.fallback_seconds, now)
        self.provider = CapacityProvider.FARGATE
        metrics.add_metric(name="SpotFallbacks", unit=MetricUnit.Count, value=1)
        logger.warning(
            "FARGATE_SPOT has no capacity: starting workers on FARGATE until the cool-down ends",
            extra={"fallback_until": self.fallback_until.isoformat()},
        )
        return True


def capacity_plan(
    ecs: ECSClient, settings: Settings, now: datetime, fallback: ClusterFallback | None = None
) -> CapacityPlan:
    """FARGATE_SPOT unless the cluster's fallback tag says FARGATE until a later time (read only with Spot)."""
    if settings.capacity_provider is not CapacityProvider.FARGATE_SPOT or not settings.spot_fallback_seconds:
        return CapacityPlan(settings.capacity_provider)
    fallback = fallback or read_fallback(ecs, settings.cluster)
    if fallback is None:
        return CapacityPlan(settings.capacity_provider)
    if fallback.active(now):
        return CapacityPlan(CapacityProvider.FARGATE, fallback.cluster_arn, fallback_until=fallback.until)
    return CapacityPlan(settings.capacity_provider, fallback.cluster_arn, settings.spot_fallback_seconds)


def desired_workers(backlog: int, max_workers: int, messages_per_worker: int) -> int:
    """``min(max_workers, ceil(backlog / messages_per_worker))``, never negative."""
    return max(0, min(max_workers, math.ceil(max(0, backlog) / messages_per_worker)))


def queue_backlog(sqs: SQSClient, queue_url: str) -> int:
    """ApproximateNumberOfMessages: the messages waiting for a worker (in-flight ones already have one)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))


def count_active_tasks(ecs: ECSClient, settings: Settings, memory: LaunchMemory) -> int:
    """Tasks of this family that are provisioning, pending or running and whose worker container has not exited."""
    recent = memory.recent()
    arns = set(recent)
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=settings.cluster, family=settings.task_family, desiredStatus="RUNNING"
    )
    for page in pages:
        arns.update(page.get("taskArns", []))
    active = 0
    described: set[str] = set()
    for batch in chunks(sorted(arns), DESCRIBE_TASKS_MAX):
        for task in ecs.describe_tasks(cluster=settings.cluster, tasks=list(batch)).get("tasks", []):
            described.add(task.get("taskArn", ""))
            active += _is_active(task, settings.container_name)
            memory.start_failures.saw_start(task.get("startedAt"))
    # A task we just started that ECS does not describe yet is still coming up.
    return active + len(recent - described)


def _is_active(task: Mapping[str, Any], container_name: str) -> bool:
    if task.get("lastStatus") not in ACTIVE_TASK_STATES or task.get("desiredStatus") == "STOPPED":
        return False
    # A worker that exited when the queue went idle leaves its task RUNNING for a few seconds; it takes no work.
    return not any(
        container.get("name") == container_name and container.get("lastStatus") == "STOPPED"
        for container in task.get("containers", [])
    )


def run_task_request(
    settings: Settings, count: int, client_token: str, capacity_provider: CapacityProvider | None = None
) -> RunTaskRequestTypeDef:
    """The RunTask parameters for ``count`` (≤ 10) workers, on ``capacity_provider`` (default: the settings')."""
    network: dict[str, Any] = {"subnets": list(settings.subnets), "assignPublicIp": settings.assign_public_ip.value}
    if settings.security_groups:  # omitted, ECS uses the VPC's default security group
        network["securityGroups"] = list(settings.security_groups)
    request: dict[str, Any] = {
        "cluster": settings.cluster,
        "taskDefinition": settings.task_definition,
        "count": count,
        "startedBy": STARTED_BY,
        "clientToken": client_token,
        "networkConfiguration": {"awsvpcConfiguration": network},
    }
    if (capacity_provider or settings.capacity_provider) is CapacityProvider.FARGATE_SPOT:
        request["capacityProviderStrategy"] = [{"capacityProvider": CapacityProvider.FARGATE_SPOT.value, "weight": 1}]
    else:
        request["launchType"] = "FARGATE"
    return request  # type: ignore[return-value]  # built as a plain dict; the keys above are RunTask's


def is_capacity_failure(reason: str) -> bool:
    """Fargate (or Spot) has no capacity for the task right now."""
    return "capacity is unavailable" in reason.lower()


def is_retryable_failure(reason: str) -> bool:
    """RunTask ``failures`` reasons that clear up by themselves: no capacity right now, or throttling."""
    lowered = reason.lower()
    return (
        "capacity is unavailable" in lowered
        or reason.startswith("RESOURCE:")
        or "rate exceeded" in lowered
        or "throttl" in lowered
    )


def is_throttling(error: ClientError) -> bool:
    """ECS throttles with ThrottlingException, and sometimes with 'Rate exceeded' in an InvalidParameterException."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in {"ThrottlingException", "TooManyRequestsException"} or (
        code == "InvalidParameterException" and "rate exceeded" in message.lower()
    )


@tracer.capture_method(capture_response=False)
def start_tasks(
    ecs: ECSClient,
    settings: Settings,
    count: int,
    retry: RetryPolicy,
    memory: LaunchMemory,
    *,
    plan: CapacityPlan | None = None,
) -> int:
    """Start ``count`` workers, at most 10 per RunTask call, retrying throttling and capacity failures.

    With FARGATE_SPOT, a capacity failure switches ``plan`` to FARGATE (recording the cool-down) before the retry.
    """
    plan = plan or CapacityPlan(settings.capacity_provider)
    started = 0
    while started < count:
        wanted = min(RUN_TASK_MAX_COUNT, count - started)
        started += _run_task_with_retries(
            ecs, settings, wanted, retry=retry, memory=memory, started_before=started, plan=plan
        )
    return started


def _run_task_with_retries(
    ecs: ECSClient,
    settings: Settings,
    wanted: int,
    *,
    retry: RetryPolicy,
    memory: LaunchMemory,
    started_before: int,
    plan: CapacityPlan,
) -> int:
    started = 0
    # One token per distinct request: a retry after an exception may repeat a call ECS did run, and must not
    # double-launch; a retry of the shortfall after reported failures is a new request, so it gets a new token.
    client_token = str(uuid.uuid4())
    for attempt in range(retry.attempts):
        try:
            response = ecs.run_task(**run_task_request(settings, wanted - started, client_token, plan.provider))
        except ClientError as error:
            if not is_throttling(error):
                raise
            metrics.add_metric(name="RunTaskFailures", unit=MetricUnit.Count, value=1)
            problem = f"throttled: {error}"
        else:
            tasks, failures = response.get("tasks", []), response.get("failures", [])
            memory.remember(task["taskArn"] for task in tasks if "taskArn" in task)
            started += len(tasks)
            if tasks:
                metrics.add_metric(name="TasksStarted", unit=MetricUnit.Count, value=len(tasks))
            if started >= wanted:
                return started
            reasons = [f"{item.get('reason', '?')} {item.get('detail', '')}".strip() for item in failures]
            metrics.add_metric(name="RunTaskFailures", unit=MetricUnit.Count, value=max(1, len(failures)))
            problem = "; ".join(reasons) if reasons else "RunTask returned no tasks and no failures"
            if any(not is_retryable_failure(reason) for reason in reasons):
                raise RunTaskError(
                    f"RunTask failed for a reason that retrying will not fix: {problem}", started_before + started
                )
            if any(is_capacity_failure(reason) for reason in reasons):
                plan.fall_back(ecs, datetime.now(UTC))
            client_token = str(uuid.uuid4())
        if attempt + 1 < retry.attempts:
            logger.warning("Retrying RunTask", extra={"problem": problem, "attempt": attempt, "started": started})
            retry.sleep(retry.delay(attempt))
    raise RunTaskError(
        f"RunTask started {started} of {wanted} worker(s) after {retry.attempts} attempts; last problem: {problem}. "
        "The messages stay on the queue; the reconcile schedule starts workers for them later",
        started_before + started,
    )


@tracer.capture_method(capture_response=False)
def scale_workers(
    settings: Settings,
    *,
    sqs: SQSClient,
    ecs: ECSClient,
    retry: RetryPolicy,
    memory: LaunchMemory,
    just_enqueued: int = 0,
    fallback: ClusterFallback | None = None,
) -> ScaleResult:
    """Start workers until ``min(MAX_WORKERS, ceil(backlog / MESSAGES_PER_WORKER))`` are active.

    Starts are held back while tasks keep failing to start (see ``holdoff``); with FARGATE_SPOT they go to FARGATE
    while the cluster's fallback lasts (``fallback``, when the caller has just recorded one, saves reading it).
    """
    # ApproximateNumberOfMessages lags behind SendMessage; the messages we just sent are waiting for sure.
    backlog = max(queue_backlog(sqs, settings.queue_url), just_enqueued)
    desired = desired_workers(backlog, settings.max_workers, settings.messages_per_worker)
    # With nothing waiting there is nothing to start, so the tasks need not be counted.
    active = count_active_tasks(ecs, settings, memory) if desired else None
    to_start = max(0, desired - (active or 0))
    held = memory.start_failures.remaining_hold() if to_start else 0.0
    if held:
        logger.warning(
            "Holding back worker starts: tasks keep failing to start",
            extra={"start_failures": memory.start_failures.failures, "seconds": round(held, 1), "wanted": to_start},
        )
        to_start = 0
    started, provider, fallback_until = 0, None, None
    if to_start:
        plan = capacity_plan(ecs, settings, datetime.now(UTC), fallback)
        started = start_tasks(ecs, settings, to_start, retry, memory, plan=plan)
        provider, fallback_until = plan.provider, plan.fallback_until
    return ScaleResult(
        backlog=backlog,
        active_tasks=active,
        desired_tasks=desired,
        tasks_started=started,
        held_back_seconds=held,
        capacity_provider=provider,
        fallback_until=fallback_until,
    )
