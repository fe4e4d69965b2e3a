"""Recognising the launcher's events and the objects they announce.

Events accepted:

* S3 event notifications, every record (``s3:TestEvent`` is skipped and logged);
* EventBridge ``Object Created`` events from ``aws.s3``;
* either of those delivered through SNS (the function subscribed to a topic that S3 or an EventBridge rule
  publishes to): ``Records[].EventSource == "aws:sns"``, the S3 event is the JSON string ``Records[].Sns.Message``;
* the scheduled reconcile event (``aws.events`` / ``Scheduled Event``), which only runs the scaling step;
* ECS ``Task State Change`` events (``aws.ecs``) of a stopped task, which the template's rule sends only for worker
  tasks that stopped without ever running (``TaskStop``; see ``start_failures``);
* a scheduled job's event (``lew.schedule`` / ``Scheduled Job``, see ``schedule``): one object, one run.

Anything else raises ``UnsupportedEvent`` naming the shape it saw, so Lambda's retries and on-failure destination
keep the event.

Keys: S3 URL-encodes keys in its notifications (``+`` for a space, ``%XX`` otherwise; moto also encodes ``/``),
also when SNS carries them. EventBridge events carry the key as it is: AWS documents the encoding for
notifications only, and moto sends EventBridge keys unencoded. Decoding those too (as Powertools'
``S3EventBridgeNotificationObject.key`` does, with ``unquote_plus``) would turn a ``+`` in a key into a space and
lose the object, so EventBridge keys are taken as they are. The work message carries the key re-encoded as S3
sends it (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event, SNSEvent

from lew_launcher.keys import decode_key
from lew_launcher.schedule import ScheduledRun, ScheduleEventError, is_schedule_event, read_schedule_event


class UnsupportedEvent(ValueError):  # noqa: N818  # the name says what it is, an event we do not handle
    """The event is not one the launcher handles; raised so that Lambda keeps it (retries, on-failure destination)."""


class EventKind(StrEnum):
    S3_NOTIFICATION = "s3-notification"
    S3_TEST = "s3-test-event"
    EVENTBRIDGE = "eventbridge-object-created"
    SNS = "sns-notification"  # one of the S3 events above, delivered through an SNS topic
    RECONCILE = "scheduled-reconcile"
    TASK_STOPPED = "ecs-task-stopped"
    SCHEDULED_JOB = "scheduled-job"


@dataclass(frozen=True)
class ObjectNotice:
    """One object an event tells us about, with its key decoded."""

    bucket: str
    key: str
    event_name: str  # in S3's notation, e.g. "ObjectCreated:Put"
    event_time: str
    region: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    bucket_arn: str | None = None
    run: ScheduledRun | None = None  # a scheduled job's run: the object is processed again, into the run's folder

    @property
    def created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")


@dataclass(frozen=True)
class TaskStop:
    """A task from an ECS ``Task State Change`` event's ``detail`` (fields ECS may omit are None).

    The template's rule sends only stopped tasks; another ``last_status`` comes from a rule set up by hand.
    """

    task_arn: str
    last_status: str  # STOPPED for every event the template's rule sends
    cluster_arn: str
    task_definition_arn: str
    stop_code: str | None  # e.g. TaskFailedToStart, SpotInterruption, EssentialContainerExited, UserInitiated
    stopped_reason: str
    container_reasons: tuple[str, ...]  # "<container>: <reason>", e.g. "worker: CannotPullContainerError: ..."
    started_at: str | None  # absent when the task never ran
    capacity_provider: str | None  # FARGATE or FARGATE_SPOT
    started_by: str | None

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def reason(self) -> str:
        """The task's stopped reason followed by its containers' reasons (each once): what to tell the operator."""
        parts = [self.stopped_reason, *self.container_reasons]
        return "; ".join(dict.fromkeys(part for part in parts if part)) or "no reason given"


@dataclass(frozen=True)
class ParsedEvent:
    kind: EventKind
    objects: tuple[ObjectNotice, ...] = ()
    test_events: int = 0  # s3:TestEvents (S3 sends one when a notification is configured): nothing to enqueue
    task_stop: TaskStop | None = None


# EventBridge's "reason" for an Object Created event, in the eventName notation S3 uses for notifications.
_EVENTBRIDGE_REASONS: Final = {
    "PutObject": "ObjectCreated:Put",
    "POST Object": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}


def parse_event(event: object) -> ParsedEvent:
    """Recognise the event and return its objects; raise UnsupportedEvent naming what was seen."""
    if not isinstance(event, Mapping):
        raise UnsupportedEvent(f"unsupported event: expected a JSON object, got {type(event).__name__}")
    if _is_sns_event(event):
        return _parse_sns_event(event)
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return ParsedEvent(EventKind.RECONCILE)
    if event.get("source") == "aws.ecs" and event.get("detail-type") == "ECS Task State Change":
        return ParsedEvent(EventKind.TASK_STOPPED, task_stop=_parse_task_stop(event))
    if is_schedule_event(event):
        return ParsedEvent(EventKind.SCHEDULED_JOB, (_parse_scheduled_job(event),))
    parsed = _parse_s3_event(event)
    if parsed is None:
        raise UnsupportedEvent(
            f"unsupported event ({describe_shape(event)}); the launcher accepts S3 notifications and EventBridge "
            "'Object Created' events from aws.s3, directly or through SNS, the scheduled reconcile event, ECS "
            "'Task State Change' events of stopped tasks and scheduled jobs (source lew.schedule)"
        )
    return parsed


def describe_shape(document: object) -> str:
    """A few words on what a document looks like, for the error that refuses it."""
    if not isinstance(document, Mapping):
        return f"JSON {type(document).__name__}"
    seen = ", ".join(sorted(str(name) for name in document)[:12]) or "no keys"
    return f"top-level keys: {seen}; source={document.get('source')!r}, detail-type={document.get('detail-type')!r}"


def _parse_s3_event(document: Mapping[str, Any]) -> ParsedEvent | None:
    """An S3 event in a shape S3 sends it (notification, test event, EventBridge event), or None for another shape."""
    if "Records" in document:
        return ParsedEvent(EventKind.S3_NOTIFICATION, _parse_s3_records(document))
    if document.get("Event") == "s3:TestEvent":
        return ParsedEvent(EventKind.S3_TEST, test_events=1)
    if document.get("source") == "aws.s3" and isinstance(document.get("detail-type"), str):
        return ParsedEvent(EventKind.EVENTBRIDGE, (_parse_eventbridge(document),))
    return None


def _parse_scheduled_job(event: Mapping[str, Any]) -> ObjectNotice:
    try:
        bucket, key, run = read_schedule_event(event)
    except ScheduleEventError as error:
        raise UnsupportedEvent(f"scheduled job: {error}") from None
    # The worker processes the key's current version at run time: no size, ETag or version is known here.
    return ObjectNotice(
        bucket=bucket,
        key=key,
        event_name="ObjectCreated:Put",
        event_time=run.scheduled_time,
        region=str(event.get("region") or ""),
        run=run,
    )


def _is_sns_event(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and isinstance(records[0], Mapping)
        and records[0].get("EventSource") == "aws:sns"
    )


def _parse_sns_event(event: Mapping[str, Any]) -> ParsedEvent:
    """The S3 events that SNS records carry as their Message, every record."""
    objects: list[ObjectNotice] = []
    test_events = 0
    for index, record in enumerate(SNSEvent(dict(event)).records):
        where = f"SNS record {index}"
        if not isinstance(record.raw_event, dict) or record.raw_event.get("EventSource") != "aws:sns":
            raise UnsupportedEvent(f"{where} is not an SNS record (EventSource 'aws:sns'), unlike record 0")
        sns = record.raw_event.get("Sns")
        if not isinstance(sns, dict):
            raise UnsupportedEvent(f"{where} has no 'Sns' object")
        where = f"{where} (topic {sns.get('TopicArn')!r})"
        message = sns.get("Message")
        if not isinstance(message, str):
            raise UnsupportedEvent(f"{where}: an SNS notification whose Message is not a string: {message!r}")
        try:
            document = json.loads(message)
        except ValueError:
            raise UnsupportedEvent(
                f"{where}: an SNS notification whose Message is not an S3 event: not JSON ({message[:80]!r})"
            ) from None
        try:
            parsed = _parse_s3_event(document) if isinstance(document, Mapping) else None
        except UnsupportedEvent as error:
            raise UnsupportedEvent(f"{where}: {error}") from error
        if parsed is None:
            raise UnsupportedEvent(
                f"{where}: an SNS notification whose Message is not an S3 event ({describe_shape(document)})"
            )
        objects += parsed.objects
        test_events += parsed.test_events
    return ParsedEvent(EventKind.SNS, tuple(objects), test_events)


def _parse_s3_records(event: Mapping[str, Any]) -> tuple[ObjectNotice, ...]:
    records = event["Records"]
    if not isinstance(records, list) or not records:
        raise UnsupportedEvent("unsupported S3 notification: 'Records' must be a non-empty list")
    notices = []
    for index, record in enumerate(S3Event(dict(event)).records):
        where = f"S3 notification record {index}"
        if not isinstance(record.raw_event, dict):
            raise UnsupportedEvent(f"{where} is not a JSON object")
        source = record.get("eventSource")
        if source != "aws:s3":
            raise UnsupportedEvent(
                f"{where} has eventSource {source!r}, not 'aws:s3' (is it wrapped in another event?)"
            )
        try:
            s3_object = record.s3.get_object
            notices.append(
                ObjectNotice(
                    bucket=_text(record.s3.bucket.name, f"{where}: s3.bucket.name"),
                    key=decode_key(_text(s3_object.key, f"{where}: s3.object.key")),
                    event_name=_text(record.event_name, f"{where}: eventName"),
                    event_time=str(record.get("eventTime") or ""),
                    region=str(record.get("awsRegion") or ""),
                    size=_size(s3_object.get("size"), f"{where}: s3.object.size"),
                    etag=_optional_text(s3_object.get("eTag"), f"{where}: s3.object.eTag"),
                    version_id=_optional_text(s3_object.version_id, f"{where}: s3.object.versionId"),
                    sequencer=_optional_text(s3_object.get("sequencer"), f"{where}: s3.object.sequencer"),
                    bucket_arn=_optional_text(record.s3.bucket.get("arn"), f"{where}: s3.bucket.arn"),
                )
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise UnsupportedEvent(f"{where} lacks a field the launcher needs: {error}") from error
    return tuple(notices)


def _parse_eventbridge(event: Mapping[str, Any]) -> ObjectNotice:
    bridge = EventBridgeEvent(dict(event))
    detail = bridge.get("detail")
    if not isinstance(detail, dict):
        raise UnsupportedEvent("EventBridge event from aws.s3 has no 'detail' object")
    bucket, s3_object = detail.get("bucket"), detail.get("object")
    if not isinstance(bucket, dict) or not isinstance(s3_object, dict):
        raise UnsupportedEvent("EventBridge event from aws.s3 lacks detail.bucket or detail.object")
    if bridge.detail_type == "Object Created":
        reason = str(detail.get("reason") or "")
        event_name = _EVENTBRIDGE_REASONS.get(reason, f"ObjectCreated:{reason or 'Put'}")
    else:  # e.g. "Object Deleted": reported, then skipped as not a creation
        event_name = bridge.detail_type
    resources = [arn for arn in bridge.get("resources") or [] if isinstance(arn, str) and arn.startswith("arn:")]
    return ObjectNotice(
        bucket=_text(bucket.get("name"), "EventBridge detail.bucket.name"),
        key=_text(s3_object.get("key"), "EventBridge detail.object.key"),  # not URL-encoded (see the docstring)
        event_name=event_name,
        event_time=str(bridge.get("time") or ""),
        region=str(bridge.get("region") or ""),
        size=_size(s3_object.get("size"), "EventBridge detail.object.size"),
        etag=_optional_text(s3_object.get("etag"), "EventBridge detail.object.etag"),
        version_id=_optional_text(s3_object.get("version-id"), "EventBridge detail.object.version-id"),
        sequencer=_optional_text(s3_object.get("sequencer"), "EventBridge detail.object.sequencer"),
        bucket_arn=resources[0] if resources else None,
    )


def _parse_task_stop(event: Mapping[str, Any]) -> TaskStop:
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise UnsupportedEvent("ECS Task State Change event has no 'detail' object")
    containers = detail.get("containers") or []
    if not isinstance(containers, list):
        raise UnsupportedEvent("ECS Task State Change detail.containers must be a list")
    # A container's reason that only repeats the task's stopped reason adds nothing to what the operator reads.
    container_reasons = tuple(
        f"{container.get('name', '?')}: {container['reason']}"
        for container in containers
        if isinstance(container, dict)
        and isinstance(container.get("reason"), str)
        and container["reason"]
        and container["reason"] != detail.get("stoppedReason")
    )
    return TaskStop(
        task_arn=_text(detail.get("taskArn"), "ECS Task State Change detail.taskArn"),
        last_status=_text(detail.get("lastStatus"), "ECS Task State Change detail.lastStatus"),
        cluster_arn=_text(detail.get("clusterArn"), "ECS Task State Change detail.clusterArn"),
        task_definition_arn=_text(detail.get("taskDefinitionArn"), "ECS Task State Change detail.taskDefinitionArn"),
        stop_code=_optional_text(detail.get("stopCode"), "ECS Task State Change detail.stopCode"),
        stopped_reason=_optional_text(detail.get("stoppedReason"), "ECS Task State Change detail.stoppedReason") or "",
        container_reasons=container_reasons,
        started_at=_optional_text(detail.get("startedAt"), "ECS Task State Change detail.startedAt"),
        capacity_provider=_optional_text(
            detail.get("capacityProviderName"), "ECS Task State Change detail.capacityProviderName"
        ),
        started_by=_optional_text(detail.get("startedBy"), "ECS Task State Change detail.startedBy"),
    )


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise UnsupportedEvent(f"{what} must be a non-empty string, got {value!r}")
    return value


def _optional_text(value: object, what: str) -> str | None:
    # These fields travel on to the worker, which refuses a message whose fields have the wrong type:
    # refuse them here, where the event can still go to the on-failure destination, not later as poison.
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnsupportedEvent(f"{what} must be a string when present, got {value!r}")
    return value


def _size(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UnsupportedEvent(f"{what} must be a whole number, got {value!r}")
    try:
        size = int(value)
    except ValueError:
        raise UnsupportedEvent(f"{what} must be a whole number, got {value!r}") from None
    if size < 0:  # the worker would refuse the work message as poison; refuse the event here instead
        raise UnsupportedEvent(f"{what} must be a byte count (0 or more), got {value!r}")
    return size
