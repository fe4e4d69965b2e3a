"""One invocation end to end: recognise the event, skip what is not work, enqueue the rest, then scale.

A stopped worker task's event goes to ``start_failures.handle_task_stop`` instead. A scheduled job's event is one
object like an upload's, with a run (``schedule``), enqueued and scaled for the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from lew_launcher import job_events
from lew_launcher.enqueue import enqueue
from lew_launcher.events import EventKind, ObjectNotice, UnsupportedEvent, parse_event
from lew_launcher.observability import logger, metrics
from lew_launcher.retry import DEFAULT_RETRY, RetryPolicy
from lew_launcher.scaling import LaunchMemory, scale_workers
from lew_launcher.settings import Settings
from lew_launcher.skips import skip_reason
from lew_launcher.start_failures import handle_task_stop

if TYPE_CHECKING:
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_sqs.client import SQSClient


def launch(
    event: object,
    *,
    settings: Settings,
    sqs: SQSClient,
    ecs: ECSClient,
    retry: RetryPolicy | None = None,
    memory: LaunchMemory | None = None,
) -> dict[str, Any]:
    """Enqueue one work message per accepted object, then scale the workers; return a summary."""
    retry = retry or DEFAULT_RETRY
    memory = memory if memory is not None else LaunchMemory()
    parsed = parse_event(event)
    if parsed.task_stop is not None:
        return handle_task_stop(parsed.task_stop, settings=settings, sqs=sqs, ecs=ecs, retry=retry, memory=memory)
    accepted: list[ObjectNotice] = []
    skipped = 0
    for _ in range(parsed.test_events):
        skipped += 1
        logger.info("Skipped object", extra={"reason": "s3:TestEvent (sent when a notification is configured)"})
    for notice in parsed.objects:
        with logger.append_context_keys(bucket=notice.bucket, key=notice.key):
            reason = skip_reason(notice, settings)
            if reason and notice.run is not None:
                # Nobody watches a schedule's skips: a run that cannot be a job fails the invocation, so the
                # LauncherFailureAlarm and the on-failure queue tell the operator (docs/deploy.md, "Scheduled jobs").
                raise UnsupportedEvent(
                    f"scheduled job for s3://{notice.bucket}/{notice.key} refused: {reason} (fix ScheduleObjectKey)"
                )
            if reason:
                skipped += 1
                logger.info("Skipped object", extra={"reason": reason})
            else:
                accepted.append(notice)
                run = notice.run.id if notice.run is not None else None
                logger.info("Accepted object", extra={"size": notice.size, "event_name": notice.event_name, "run": run})
    metrics.add_metric(name="ObjectsAccepted", unit=MetricUnit.Count, value=len(accepted))
    metrics.add_metric(name="ObjectsSkipped", unit=MetricUnit.Count, value=skipped)
    enqueued = enqueue(sqs, settings.queue_url, accepted, retry) if accepted else 0
    if enqueued:
        job_events.publish_queued(accepted, bus_name=settings.event_bus_name)
    summary: dict[str, Any] = {"event": parsed.kind.value, "accepted": len(accepted), "skipped": skipped}
    summary |= {"enqueued": enqueued, "backlog": None, "active_tasks": None, "desired_tasks": None, "tasks_started": 0}
    if enqueued or parsed.kind is EventKind.RECONCILE:
        scale = scale_workers(settings, sqs=sqs, ecs=ecs, retry=retry, memory=memory, just_enqueued=enqueued)
        summary |= scale.summary()
    logger.info("Launcher summary", extra={"summary": summary})
    return summary
