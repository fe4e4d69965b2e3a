"""The launcher Lambda: one SQS work message per uploaded object, then just enough Fargate workers to drain the queue.

Lambda loads this file as the top-level module ``app`` (the template's handler is ``app.handler``, ``CodeUri:
launcher/``), while tests and tools import it as ``launcher.app``. A sibling module could not be imported the same
way from both places, so the whole launcher is this one module, in sections: settings, event parsing, message
building, enqueue, scaling, orchestration, handler. ``handler`` only wires settings and clients; ``launch`` and
the functions it calls take their clients and a frozen ``Settings`` as arguments.

Events accepted:

* S3 event notifications, every record (``s3:TestEvent`` is skipped and logged);
* EventBridge ``Object Created`` events from ``aws.s3``;
* the scheduled reconcile event (``aws.events`` / ``Scheduled Event``), which only runs the scaling step.

Anything else raises ``UnsupportedEvent``, so Lambda's retries and on-failure destination keep the event.

Keys: S3 URL-encodes keys in its notifications (``+`` for a space, ``%XX`` otherwise; moto also encodes ``/``).
The AWS documentation of S3's EventBridge events does not say whether their keys are encoded; Powertools'
``S3EventBridgeNotificationObject.key`` decodes them with ``unquote_plus``, and so do we, so both sources decode
the same way. The work message carries the key re-encoded as S3 sends it (see docs/ARCHITECTURE.md).

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

import functools
import json
import math
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote_plus, unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_ecs.type_defs import RunTaskRequestTypeDef
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

logger = Logger()
tracer = Tracer()
metrics = Metrics()

STARTED_BY: Final = "lew-launcher"
CONFIGURATION_ID: Final = "lew-launcher"
DEFAULT_METRICS_NAMESPACE: Final = "lew"
SQS_BATCH_SIZE: Final = 10  # SendMessageBatch takes at most 10 entries
RUN_TASK_MAX_COUNT: Final = 10  # RunTask starts at most 10 tasks per call
DESCRIBE_TASKS_MAX: Final = 100  # DescribeTasks takes at most 100 ARNs
# Task states in which a task is (or is about to be) a worker draining the queue.
ACTIVE_TASK_STATES: Final = frozenset({"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"})
# How long a task we started counts as active while ECS does not list or describe it yet.
LAUNCH_MEMORY_SECONDS: Final = 120.0

_T = TypeVar("_T")
_Choice = TypeVar("_Choice", bound=StrEnum)


# ---------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------


class ConfigurationError(ValueError):
    """One or more environment variables are missing or invalid; the message names each of them."""


class CapacityProvider(StrEnum):
    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"


class AssignPublicIp(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


# Defaults of the optional variables (the template's parameter defaults, see docs/ARCHITECTURE.md).
ENV_DEFAULTS: Final[Mapping[str, str]] = {
    "CONTAINER_NAME": "worker",
    "SECURITY_GROUPS": "",
    "ASSIGN_PUBLIC_IP": "ENABLED",
    "SUFFIXES": ".zip,.tar,.tar.gz,.tgz",
    "INPUT_PREFIX": "incoming/",
    "RESULT_PREFIX": "results/",
    "MAX_WORKERS": "4",
    "MESSAGES_PER_WORKER": "5",
    "CAPACITY_PROVIDER": "FARGATE",
}


@dataclass(frozen=True)
class Settings:
    """The launcher's configuration, read once per invocation from the environment."""

    queue_url: str
    cluster: str
    task_definition: str
    container_name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: AssignPublicIp
    suffixes: tuple[str, ...]  # lower-case; empty accepts every key
    input_prefix: str  # empty accepts every key outside RESULT_PREFIX
    result_prefix: str
    max_workers: int
    messages_per_worker: int
    capacity_provider: CapacityProvider

    @property
    def task_family(self) -> str:
        """The task definition's family, whichever form TASK_DEFINITION takes."""
        return task_family(self.task_definition)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every variable; raise one ConfigurationError that lists all problems."""
        problems: list[str] = []

        def text(name: str) -> str:
            value = environ.get(name, ENV_DEFAULTS.get(name, "")).strip()
            if not value and name not in ENV_DEFAULTS:
                problems.append(f"{name} is required and is not set")
            return value

        def listing(name: str) -> tuple[str, ...]:
            return tuple(item.strip() for item in text(name).split(",") if item.strip())

        def integer(name: str, minimum: int) -> int:
            raw = text(name)
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be a whole number, got {raw!r}")
                return minimum
            if value < minimum:
                problems.append(f"{name} must be at least {minimum}, got {value}")
            return value

        def choice(name: str, allowed: type[_Choice]) -> _Choice:
            raw = text(name).upper()
            try:
                return allowed(raw)
            except ValueError:
                problems.append(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
                return next(iter(allowed))

        task_definition = text("TASK_DEFINITION")
        if task_definition and not task_family(task_definition):
            problems.append(f"TASK_DEFINITION {task_definition!r} names no task definition family")
        container_name = text("CONTAINER_NAME")
        if not container_name:
            problems.append("CONTAINER_NAME must not be empty")
        input_prefix, result_prefix = text("INPUT_PREFIX"), text("RESULT_PREFIX")
        if not result_prefix:
            problems.append("RESULT_PREFIX must not be empty: it keeps the launcher from processing its own outputs")
        elif input_prefix.startswith(result_prefix):
            problems.append(
                f"INPUT_PREFIX {input_prefix!r} lies under RESULT_PREFIX {result_prefix!r}, so every upload would be "
                "skipped; use separate prefixes"
            )
        settings = cls(
            queue_url=text("QUEUE_URL"),
            cluster=text("CLUSTER"),
            task_definition=task_definition,
            container_name=container_name,
            subnets=listing("SUBNETS"),
            security_groups=listing("SECURITY_GROUPS"),
            assign_public_ip=choice("ASSIGN_PUBLIC_IP", AssignPublicIp),
            suffixes=tuple(suffix.lower() for suffix in listing("SUFFIXES")),
            input_prefix=input_prefix,
            result_prefix=result_prefix,
            max_workers=integer("MAX_WORKERS", minimum=0),
            messages_per_worker=integer("MESSAGES_PER_WORKER", minimum=1),
            capacity_provider=choice("CAPACITY_PROVIDER", CapacityProvider),
        )
        if problems:
            raise ConfigurationError("invalid launcher configuration: " + "; ".join(problems))
        return settings


def task_family(task_definition: str) -> str:
    """The family of a task definition given as an ARN, ``family:revision`` or ``family``."""
    name = task_definition.rsplit("task-definition/", 1)[-1] if task_definition.startswith("arn:") else task_definition
    return name.split(":", 1)[0].strip()


# ---------------------------------------------------------------------------------------------------------------
# Event parsing
# ---------------------------------------------------------------------------------------------------------------


class UnsupportedEvent(ValueError):  # noqa: N818  # the name says what it is, an event we do not handle
    """The event is not one the launcher handles; raised so that Lambda keeps it (retries, on-failure destination)."""


class EventKind(StrEnum):
    S3_NOTIFICATION = "s3-notification"
    S3_TEST = "s3-test-event"
    EVENTBRIDGE = "eventbridge-object-created"
    RECONCILE = "scheduled-reconcile"


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

    @property
    def created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")


@dataclass(frozen=True)
class ParsedEvent:
    kind: EventKind
    objects: tuple[ObjectNotice, ...] = ()


# EventBridge's "reason" for an Object Created event, in the eventName notation S3 uses for notifications.
_EVENTBRIDGE_REASONS: Final = {
    "PutObject": "ObjectCreated:Put",
    "POST Object": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}


def decode_key(raw_key: str) -> str:
    """Decode a key as S3 notifications encode it: ``+`` is a space, ``%XX`` any other byte (``%2F`` too)."""
    return unquote_plus(raw_key)


def encode_key(key: str) -> str:
    """Encode a key the way S3 does in its notifications (``/`` kept), so that ``decode_key`` restores it."""
    return quote_plus(key, safe="/")


def parse_event(event: object) -> ParsedEvent:
    """Recognise the event and return its objects; raise UnsupportedEvent naming what was seen."""
    if not isinstance(event, Mapping):
        raise UnsupportedEvent(f"unsupported event: expected a JSON object, got {type(event).__name__}")
    if "Records" in event:
        return ParsedEvent(EventKind.S3_NOTIFICATION, _parse_s3_records(event))
    if event.get("Event") == "s3:TestEvent":
        return ParsedEvent(EventKind.S3_TEST)
    source, detail_type = event.get("source"), event.get("detail-type")
    if source == "aws.events" and detail_type == "Scheduled Event":
        return ParsedEvent(EventKind.RECONCILE)
    if source == "aws.s3" and isinstance(detail_type, str):
        return ParsedEvent(EventKind.EVENTBRIDGE, (_parse_eventbridge(event),))
    seen = ", ".join(sorted(str(name) for name in event)[:12]) or "no keys"
    raise UnsupportedEvent(
        f"unsupported event (top-level keys: {seen}; source={source!r}, detail-type={detail_type!r}); the launcher "
        "accepts S3 notifications, EventBridge 'Object Created' events from aws.s3 and the scheduled reconcile event"
    )


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
        key=decode_key(_text(s3_object.get("key"), "EventBridge detail.object.key")),
        event_name=event_name,
        event_time=str(bridge.get("time") or ""),
        region=str(bridge.get("region") or ""),
        size=_size(s3_object.get("size"), "EventBridge detail.object.size"),
        etag=_optional_text(s3_object.get("etag"), "EventBridge detail.object.etag"),
        version_id=_optional_text(s3_object.get("version-id"), "EventBridge detail.object.version-id"),
        sequencer=_optional_text(s3_object.get("sequencer"), "EventBridge detail.object.sequencer"),
        bucket_arn=resources[0] if resources else None,
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
        return int(value)
    except ValueError:
        raise UnsupportedEvent(f"{what} must be a whole number, got {value!r}") from None


def matches_suffix(key: str, suffixes: Sequence[str]) -> bool:
    """True if the key ends with one of the (lower-case) suffixes, ignoring case; an empty list accepts all."""
    return not suffixes or key.lower().endswith(tuple(suffixes))


def skip_reason(notice: ObjectNotice, settings: Settings) -> str | None:
    """Why the launcher ignores this object, or None when it becomes a work message."""
    key = notice.key
    checks = (
        (not notice.created, f"event {notice.event_name!r} is not an object creation"),
        (key.startswith(settings.result_prefix), f"key is under RESULT_PREFIX {settings.result_prefix!r}"),
        (not key.startswith(settings.input_prefix), f"key is outside INPUT_PREFIX {settings.input_prefix!r}"),
        (key.endswith("/"), "key is a folder marker (ends with '/')"),
        (not matches_suffix(key, settings.suffixes), f"suffix is not one of SUFFIXES {','.join(settings.suffixes)!r}"),
        (notice.size == 0, "object is empty (0 bytes)"),
    )
    return next((reason for applies, reason in checks if applies), None)


# ---------------------------------------------------------------------------------------------------------------
# Message building
# ---------------------------------------------------------------------------------------------------------------


def message_body(notice: ObjectNotice) -> str:
    """The work message: an S3 event notification holding exactly this object, in the shape S3 sends to SQS."""
    s3_object: dict[str, Any] = {"key": encode_key(notice.key)}
    if notice.size is not None:
        s3_object["size"] = notice.size
    optional = {"eTag": notice.etag, "versionId": notice.version_id, "sequencer": notice.sequencer}
    s3_object.update({name: value for name, value in optional.items() if value is not None})
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": notice.region,
        "eventTime": notice.event_time,
        "eventName": notice.event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": CONFIGURATION_ID,
            "bucket": {"name": notice.bucket, "arn": notice.bucket_arn or f"arn:aws:s3:::{notice.bucket}"},
            "object": s3_object,
        },
    }
    return json.dumps({"Records": [record]}, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------------------
# Enqueue
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; ``sleep`` is injectable so tests run fast."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 4.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random  # jitter spreads retries; it needs no cryptographic randomness

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the given (0-based) failed attempt."""
        return self.jitter() * min(self.max_delay, self.base_delay * 2.0**attempt)


DEFAULT_RETRY = RetryPolicy()


class EnqueueError(RuntimeError):
    """Some work messages could not be sent; raised so that Lambda retries the invocation."""


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@tracer.capture_method(capture_response=False)
def enqueue(sqs: SQSClient, queue_url: str, notices: Sequence[ObjectNotice], retry: RetryPolicy) -> int:
    """Send one message per object with SendMessageBatch, retrying failed entries; return how many were sent."""
    for batch in chunks(notices, SQS_BATCH_SIZE):
        pending: dict[str, ObjectNotice] = {str(index): notice for index, notice in enumerate(batch)}
        for attempt in range(retry.attempts):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": entry_id, "MessageBody": message_body(notice)} for entry_id, notice in pending.items()
            ]
            failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
            problems = [
                f"{pending[item['Id']].key!r}: {item['Code']} {item.get('Message', '')}".strip() for item in failed
            ]
            if any(item["SenderFault"] for item in failed):
                raise EnqueueError(f"SQS rejected work messages (not retried): {'; '.join(problems)}")
            pending = {item["Id"]: pending[item["Id"]] for item in failed}
            if not pending:
                break
            if attempt + 1 == retry.attempts:
                raise EnqueueError(
                    f"{len(pending)} work message(s) still failing after {retry.attempts} attempts: "
                    + "; ".join(problems)
                )
            logger.warning("Retrying failed SendMessageBatch entries", extra={"failed": problems, "attempt": attempt})
            retry.sleep(retry.delay(attempt))
    return len(notices)


# ---------------------------------------------------------------------------------------------------------------
# Scaling
# ---------------------------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class ScaleResult:
    backlog: int
    active_tasks: int | None  # None: not counted, because no worker is wanted
    desired_tasks: int
    tasks_started: int


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


def run_task_request(settings: Settings, count: int, client_token: str) -> RunTaskRequestTypeDef:
    """The RunTask parameters for ``count`` (≤ 10) workers."""
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
    if settings.capacity_provider is CapacityProvider.FARGATE_SPOT:
        request["capacityProviderStrategy"] = [{"capacityProvider": CapacityProvider.FARGATE_SPOT.value, "weight": 1}]
    else:
        request["launchType"] = "FARGATE"
    return request  # type: ignore[return-value]  # built as a plain dict; the keys above are RunTask's


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
def start_tasks(ecs: ECSClient, settings: Settings, count: int, retry: RetryPolicy, memory: LaunchMemory) -> int:
    """Start ``count`` workers, at most 10 per RunTask call, retrying throttling and capacity failures."""
    started = 0
    while started < count:
        wanted = min(RUN_TASK_MAX_COUNT, count - started)
        started += _run_task_with_retries(ecs, settings, wanted, retry=retry, memory=memory, started_before=started)
    return started


def _run_task_with_retries(
    ecs: ECSClient, settings: Settings, wanted: int, *, retry: RetryPolicy, memory: LaunchMemory, started_before: int
) -> int:
    started = 0
    # One token per distinct request: a retry after an exception may repeat a call ECS did run, and must not
    # double-launch; a retry of the shortfall after reported failures is a new request, so it gets a new token.
    client_token = str(uuid.uuid4())
    for attempt in range(retry.attempts):
        try:
            response = ecs.run_task(**run_task_request(settings, wanted - started, client_token))
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
) -> ScaleResult:
    """Start workers until ``min(MAX_WORKERS, ceil(backlog / MESSAGES_PER_WORKER))`` are active."""
    # ApproximateNumberOfMessages lags behind SendMessage; the messages we just sent are waiting for sure.
    backlog = max(queue_backlog(sqs, settings.queue_url), just_enqueued)
    desired = desired_workers(backlog, settings.max_workers, settings.messages_per_worker)
    # With nothing waiting there is nothing to start, so the tasks need not be counted.
    active = count_active_tasks(ecs, settings, memory) if desired else None
    to_start = max(0, desired - (active or 0))
    started = start_tasks(ecs, settings, to_start, retry, memory) if to_start else 0
    return ScaleResult(backlog=backlog, active_tasks=active, desired_tasks=desired, tasks_started=started)


# ---------------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------------


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
    accepted: list[ObjectNotice] = []
    skipped = 0
    if parsed.kind is EventKind.S3_TEST:
        skipped = 1
        logger.info("Skipped object", extra={"reason": "s3:TestEvent (sent when a notification is configured)"})
    for notice in parsed.objects:
        with logger.append_context_keys(bucket=notice.bucket, key=notice.key):
            reason = skip_reason(notice, settings)
            if reason:
                skipped += 1
                logger.info("Skipped object", extra={"reason": reason})
            else:
                accepted.append(notice)
                logger.info("Accepted object", extra={"size": notice.size, "event_name": notice.event_name})
    metrics.add_metric(name="ObjectsAccepted", unit=MetricUnit.Count, value=len(accepted))
    metrics.add_metric(name="ObjectsSkipped", unit=MetricUnit.Count, value=skipped)
    enqueued = enqueue(sqs, settings.queue_url, accepted, retry) if accepted else 0
    summary: dict[str, Any] = {"event": parsed.kind.value, "accepted": len(accepted), "skipped": skipped}
    summary |= {"enqueued": enqueued, "backlog": None, "active_tasks": None, "desired_tasks": None, "tasks_started": 0}
    if enqueued or parsed.kind is EventKind.RECONCILE:
        scale = scale_workers(settings, sqs=sqs, ecs=ecs, retry=retry, memory=memory, just_enqueued=enqueued)
        summary |= {
            "backlog": scale.backlog,
            "active_tasks": scale.active_tasks,
            "desired_tasks": scale.desired_tasks,
            "tasks_started": scale.tasks_started,
        }
    logger.info("Launcher summary", extra={"summary": summary})
    return summary


# ---------------------------------------------------------------------------------------------------------------
# Handler
# ---------------------------------------------------------------------------------------------------------------

# Kept across invocations of a warm execution environment (see LaunchMemory).
LAUNCH_MEMORY = LaunchMemory()


@functools.cache
def aws_clients() -> tuple[SQSClient, ECSClient]:
    """SQS and ECS clients, created on first use (never at import) and reused by warm invocations."""
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=15)
    return boto3.client("sqs", config=config), boto3.client("ecs", config=config)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: read the settings, then enqueue the event's objects and scale the workers."""
    # Without a namespace Powertools would fail the flush after the work is done, and Lambda would retry it.
    metrics.namespace = metrics.namespace or DEFAULT_METRICS_NAMESPACE
    settings = Settings.from_env(os.environ)
    sqs, ecs = aws_clients()
    return launch(event, settings=settings, sqs=sqs, ecs=ecs, memory=LAUNCH_MEMORY)
