"""Worker tasks that stopped without ever running: log why, count it, fall back from Spot, and replace them now.

The template's EventBridge rule invokes the launcher with the ECS ``Task State Change`` event of every worker task
of the stack's cluster that stopped with ``stopCode`` ``TaskFailedToStart``, or stopped without a ``startedAt``
for any reason but a deliberate stop (``UserInitiated``, ``ServiceSchedulerInitiated``): image pulls
(``CannotPullContainerError``), network interfaces and secrets (``ResourceInitializationError``), no capacity
(``Capacity is unavailable at this time``), Spot reclaiming a task before it ran. Per event the launcher:

1. ignores the event, with a log line, if the task is not one of its workers, has not stopped, or ran (a rule set
   up by hand may send such events);
2. logs ``Worker task failed to start`` with the stop code and the task's and containers' reasons;
3. publishes ``TaskStartFailures`` (dimensions ``service`` + ``Cluster``, and ``service`` + ``Cluster`` +
   ``StopCode``), which the template's alarm watches;
4. with ``CAPACITY_PROVIDER=FARGATE_SPOT`` and a capacity failure (no capacity, or a Spot interruption before the
   task ran), records a fallback to FARGATE for ``SPOT_FALLBACK_SECONDS`` on the cluster (see ``spot_fallback``);
   any other failure lengthens the start-failure streak (see ``holdoff``);
5. runs the scaling step at once, so the work does not wait for the next reconcile tick.

A RunTask failure in step 5 is logged, not raised: the messages wait on the queue and the reconcile schedule starts
workers for them, while a retried invocation would only count the same failure twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from lew_launcher.events import EventKind, TaskStop
from lew_launcher.observability import DEFAULT_METRICS_NAMESPACE, logger, metrics
from lew_launcher.retry import RetryPolicy
from lew_launcher.scaling import LaunchMemory, RunTaskError, is_capacity_failure, scale_workers
from lew_launcher.settings import CapacityProvider, Settings, cluster_name, task_family
from lew_launcher.spot_fallback import ClusterFallback, begin_fallback
from lew_launcher.stops import failed_to_start

if TYPE_CHECKING:
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_sqs.client import SQSClient

START_FAILURE_METRIC: Final = "TaskStartFailures"
SPOT_INTERRUPTION: Final = "SpotInterruption"


def is_start_failure(stop: TaskStop) -> bool:
    """The task stopped without ever running (or ECS says it failed to start), and nobody chose to stop it."""
    return failed_to_start(stop.stop_code, started=stop.started_at is not None)


def is_capacity_stop(stop: TaskStop) -> bool:
    """Fargate had no capacity for the task, or Spot reclaimed it before it ran."""
    return stop.stop_code == SPOT_INTERRUPTION or is_capacity_failure(stop.reason)


def is_our_worker(stop: TaskStop, settings: Settings) -> bool:
    """The task belongs to the configured cluster and worker task family."""
    return cluster_name(stop.cluster_arn) == cluster_name(settings.cluster) and (
        task_family(stop.task_definition_arn) == settings.task_family
    )


def publish_start_failure(stop_code: str, cluster: str) -> None:
    """Flush one ``TaskStartFailures`` data point now, in its own EMF document.

    Its own document, because a ``StopCode`` dimension added to the shared ``metrics`` would be given to every other
    metric of the invocation. Two dimension sets: per cluster (the alarm's) and per cluster and stop code.
    """
    failures = EphemeralMetrics(namespace=metrics.namespace or DEFAULT_METRICS_NAMESPACE)
    failures.add_dimension(name="Cluster", value=cluster)
    failures.add_dimensions(service=failures.service or "service_undefined", Cluster=cluster, StopCode=stop_code)
    failures.add_metric(name=START_FAILURE_METRIC, unit=MetricUnit.Count, value=1)
    failures.flush_metrics()


def handle_task_stop(
    stop: TaskStop,
    *,
    settings: Settings,
    sqs: SQSClient,
    ecs: ECSClient,
    retry: RetryPolicy,
    memory: LaunchMemory,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Handle one stopped task's event (see the module's docstring); return the launcher summary."""
    summary: dict[str, Any] = {
        "event": EventKind.TASK_STOPPED.value,
        "task": stop.task_id,
        "stop_code": stop.stop_code,
        "start_failure": False,
    }
    with logger.append_context_keys(task_arn=stop.task_arn, stop_code=stop.stop_code):
        if not is_our_worker(stop, settings):
            logger.info(
                "Ignored stopped task: not a worker of this launcher",
                extra={"cluster_arn": stop.cluster_arn, "task_definition_arn": stop.task_definition_arn},
            )
        elif stop.last_status != "STOPPED":
            logger.info("Ignored task state change: the task has not stopped", extra={"last_status": stop.last_status})
        elif not is_start_failure(stop):
            logger.info("Ignored stopped task: it ran, or was stopped on purpose", extra={"reason": stop.reason})
        else:
            summary |= _replace_failed_start(stop, settings, sqs=sqs, ecs=ecs, retry=retry, memory=memory, now=now)
    logger.info("Launcher summary", extra={"summary": summary})
    return summary


def _replace_failed_start(
    stop: TaskStop,
    settings: Settings,
    *,
    sqs: SQSClient,
    ecs: ECSClient,
    retry: RetryPolicy,
    memory: LaunchMemory,
    now: datetime | None,
) -> dict[str, Any]:
    capacity = is_capacity_stop(stop)
    logger.warning(
        "Worker task failed to start",
        extra={"reason": stop.reason, "capacity_failure": capacity, "capacity_provider": stop.capacity_provider},
    )
    publish_start_failure(stop.stop_code or "Unknown", cluster_name(settings.cluster))
    fields: dict[str, Any] = {"start_failure": True, "reason": stop.reason}
    fallback: ClusterFallback | None = None
    spot = settings.capacity_provider is CapacityProvider.FARGATE_SPOT and settings.spot_fallback_seconds > 0
    if capacity and spot and stop.capacity_provider != CapacityProvider.FARGATE.value:
        until = begin_fallback(ecs, stop.cluster_arn, settings.spot_fallback_seconds, now or datetime.now(UTC))
        fallback = ClusterFallback(stop.cluster_arn, until)
        metrics.add_metric(name="SpotFallbacks", unit=MetricUnit.Count, value=1)
        logger.warning(
            "FARGATE_SPOT has no capacity: starting workers on FARGATE until the cool-down ends",
            extra={"fallback_until": until.isoformat()},
        )
    else:
        # The replacement's start would meet the same fault: starts slow down while failures continue.
        fields["start_failure_streak"] = memory.start_failures.record(stop.task_arn)
    try:
        scale = scale_workers(settings, sqs=sqs, ecs=ecs, retry=retry, memory=memory, fallback=fallback)
    except RunTaskError as error:
        logger.warning("Could not replace the task now; the reconcile schedule will", extra={"error": str(error)})
        return fields | {"tasks_started": error.started, "scale_error": str(error)}
    return fields | scale.summary()
