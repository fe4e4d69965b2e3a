"""Parse SQS message bodies into jobs: S3 events in the envelopes real set-ups deliver them in.

A body is one of:

* an S3 event notification (``Records[]``, S3 -> SQS, or SNS -> SQS with raw message delivery, or the launcher's
  work message), or S3's ``s3:TestEvent``;
* an EventBridge event from ``aws.s3`` (S3 -> EventBridge -> SQS): ``Object Created`` is a job, the other
  detail-types (``Object Deleted``...) are ignored records;
* an SNS notification (S3 or EventBridge -> SNS -> SQS without raw message delivery) whose ``Message`` is one of
  the above as a JSON string.

Keys: S3 URL-encodes the keys of its notifications (also when SNS carries them), so they are decoded with
``unquote_plus``; EventBridge events carry keys as they are, so those are taken unchanged (decoding them would
turn a ``+`` into a space). Anything else is poison, with a reason that says what shape was seen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSMessage

from worker.runs import Run, run_from_block


@dataclass(frozen=True)
class Job:
    """One S3 object to process, as a notification record describes it (the key is decoded)."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    event_name: str = "ObjectCreated:Put"
    # S3's per-key ordering token (hex; compare equal-length values): s3.object.sequencer in a notification,
    # detail.object.sequencer in an EventBridge event; None when it has none (docs/worker.md, "Versions and order").
    sequencer: str | None = None
    rerun: bool = False  # `lew rerun`: process again even when the manifest records a success for this ETag
    run: Run | None = None  # a scheduled run (worker/runs.py): results in the run's own folder
    # When S3 says the object was created (a record's eventTime, an EventBridge event's time), None when not given:
    # it tells a new upload of the same bytes from a redelivery of a cancelled one (worker/job.py).
    event_time: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Received:
    """One message as received from the queue."""

    message_id: str
    receipt_handle: str
    body: str
    attempt: int  # ApproximateReceiveCount: 1 on the first delivery
    received_at: float = field(default_factory=time.monotonic, compare=False)  # visibility: at most 12 h from here


@dataclass(frozen=True)
class TestEvent:
    """The `s3:TestEvent` S3 sends when a notification is configured: nothing to do but delete it."""

    __test__ = False  # not a pytest test class, whatever its name


@dataclass(frozen=True)
class Poison:
    """A body that cannot be parsed; retrying it can never succeed."""

    reason: str


@dataclass(frozen=True)
class Jobs:
    """The jobs in a body: one per ObjectCreated record (other records are ignored, and listed)."""

    jobs: tuple[Job, ...]
    ignored: tuple[str, ...] = ()


ParsedBody = Jobs | TestEvent | Poison


def normalise_etag(etag: str | None) -> str | None:
    """ETags come quoted from HEAD and bare from notifications; compare them bare."""
    return etag.strip('"') if etag else None


# Top-level keys that make a JSON object an SNS notification as SNS delivers it to SQS (without raw delivery).
SNS_NOTIFICATION_KEYS: Final = frozenset({"Type", "MessageId", "TopicArn", "Message"})
EVENTBRIDGE_CREATED: Final = "Object Created"


def parse_body(body: str) -> ParsedBody:
    """Classify a message body: jobs, a test event, or poison (with a reason naming the shape seen)."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, TypeError) as error:
        return Poison(f"body is not JSON: {error}")
    if _is_sns_notification(document):
        return _parse_sns_notification(document)
    return _parse_s3_event(document) or Poison(f"{describe_shape(document)}: {NOT_AN_S3_EVENT}")


NOT_AN_S3_EVENT: Final = (
    "not an S3 event notification ('Records'), an EventBridge event from aws.s3 or an SNS notification of one"
)


def describe_shape(document: object) -> str:
    """A few words on what a JSON document looks like, for a poison reason."""
    if not isinstance(document, Mapping):
        return f"body is JSON {type(document).__name__}, not an object"
    if not document:
        return "body is an empty JSON object with no 'Records'"
    keys = ", ".join(sorted(str(name) for name in document)[:12])
    details = [f"{name}={document[name]!r}" for name in ("source", "detail-type", "Type") if name in document]
    return f"body is a JSON object with no 'Records' (keys: {keys}{'; ' if details else ''}{', '.join(details)})"


def without_results(parsed: Jobs, result_prefix: str) -> Jobs:
    """The jobs less those whose key is under RESULT_PREFIX (the worker's own outputs, manifests and claims).

    Those are listed as ignored records. An event source not filtered on INPUT_PREFIX (an EventBridge rule on the
    bucket, an SNS topic the whole bucket notifies) announces the worker's results too; processing them would
    feed the worker its own results, each making more, for ever.
    """
    own = [job for job in parsed.jobs if job.key.startswith(result_prefix)]
    if not own:
        return parsed
    ignored = [f"{job.event_name} s3://{job.bucket}/{job.key} (under RESULT_PREFIX: the worker's own)" for job in own]
    return Jobs(tuple(job for job in parsed.jobs if job not in own), parsed.ignored + tuple(ignored))


def _parse_s3_event(document: object) -> ParsedBody | None:
    """An S3 event in a shape S3 sends it (notification, test event, EventBridge event); None for any other shape."""
    if not isinstance(document, Mapping):
        return None
    if document.get("Event") == "s3:TestEvent":
        return TestEvent()
    if "Records" in document:
        return _parse_records(document["Records"])
    if document.get("source") == "aws.s3" and "detail-type" in document:
        return _parse_eventbridge(document)
    if "source" in document and "detail-type" in document:
        return Poison(
            f"an EventBridge event from {document.get('source')!r} ({document.get('detail-type')!r}), not an S3 "
            "event from aws.s3"
        )
    return None


def _parse_records(records: object) -> Jobs | Poison:
    if not isinstance(records, list) or not records:
        return Poison("an S3 event notification with no 'Records': the list is empty or not a list")
    jobs: list[Job] = []
    ignored: list[str] = []
    for index, record in enumerate(records):
        try:
            job = _job_from_record(record)
        except (KeyError, TypeError, ValueError) as error:
            return Poison(f"record {index} is not an S3 event record: {_describe(error)}")
        if job.event_name.startswith("ObjectCreated"):
            jobs.append(job)
        else:
            ignored.append(f"{job.event_name} s3://{job.bucket}/{job.key}")
    return Jobs(tuple(jobs), tuple(ignored))


def _is_sns_notification(document: object) -> bool:
    return isinstance(document, Mapping) and document.keys() >= SNS_NOTIFICATION_KEYS


def _parse_sns_notification(document: Mapping[str, Any]) -> ParsedBody:
    """The S3 event an SNS notification carries as its Message (SNS -> SQS without raw message delivery)."""
    notification = SNSMessage(dict(document))
    message = _notification_message(notification)
    if isinstance(message, Poison):
        return message
    what = f"an SNS notification from topic {notification.get('TopicArn')!r} whose Message is not an S3 event"
    try:
        inner = json.loads(message)
    except json.JSONDecodeError:
        return Poison(f"{what}: not JSON ({message[:80]!r})")
    parsed = None if _is_sns_notification(inner) else _parse_s3_event(inner)
    if parsed is None:
        return Poison(f"{what}: {describe_shape(inner).removeprefix('body ')}")
    if isinstance(parsed, Poison):
        return Poison(f"{what}: {parsed.reason}")
    return parsed


def _notification_message(notification: SNSMessage) -> str | Poison:
    """The Message of an SNS Notification, or why the SNS message carries none."""
    what = f"an SNS {notification.get('Type')!r} message from topic {notification.get('TopicArn')!r}"
    if notification.get("Type") == "SubscriptionConfirmation":
        # SNS asks a queue of another account to confirm its subscription before it delivers anything.
        return Poison(f"{what}, not an S3 event: confirm the queue's subscription by visiting its SubscribeURL")
    if notification.get("Type") != "Notification":
        return Poison(f"{what}, not a Notification carrying an S3 event")
    message = notification.get("Message")
    if not isinstance(message, str):
        return Poison(f"{what} whose Message is not a string: {message!r}"[:300])
    return message


def _parse_eventbridge(document: Mapping[str, Any]) -> Jobs | Poison:
    """An EventBridge event from aws.s3: 'Object Created' is one job; other detail-types are ignored records."""
    event = S3EventBridgeNotificationEvent(dict(document))
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        detail = {}
    bucket, s3_object = detail.get("bucket"), detail.get("object")
    if not isinstance(bucket, Mapping) or not isinstance(s3_object, Mapping):
        return Poison(f"an EventBridge event from aws.s3 ({event.detail_type!r}) without detail.bucket or .object")
    try:
        job = Job(
            bucket=_required_text(bucket.get("name"), "detail.bucket.name"),
            # Not S3Event...Object.key: that one decodes with unquote_plus, and EventBridge keys are not encoded.
            key=_required_text(s3_object.get("key"), "detail.object.key"),
            size=_byte_count(s3_object.get("size"), "detail.object.size"),
            etag=normalise_etag(_optional_text(s3_object, "etag", "detail.object")),
            version_id=_optional_text(s3_object, "version-id", "detail.object"),
            event_name=_eventbridge_event_name(event.detail_type, detail.get("reason")),
            sequencer=_optional_text(s3_object, "sequencer", "detail.object"),
            event_time=event_time(event.get("time")),
        )
    except (TypeError, ValueError) as error:
        return Poison(f"an EventBridge event from aws.s3 that is not an S3 event: {error}")
    if not job.event_name.startswith("ObjectCreated"):
        return Jobs((), (f"{job.event_name} s3://{job.bucket}/{job.key}",))
    return Jobs((job,))


def _eventbridge_event_name(detail_type: object, reason: object) -> str:
    """``ObjectCreated:<reason>`` (e.g. ``ObjectCreated:PutObject``) for Object Created; else the detail-type."""
    if not isinstance(detail_type, str):
        raise TypeError(f"detail-type {detail_type!r} is not a string")
    if detail_type != EVENTBRIDGE_CREATED:
        return detail_type
    return f"ObjectCreated:{reason if isinstance(reason, str) and reason else 'PutObject'}"


def _job_from_record(record: Any) -> Job:
    s3 = record["s3"]
    bucket = s3["bucket"]["name"]
    obj = s3["object"]
    raw_key = obj["key"]
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("s3.bucket.name is not a non-empty string")
    if not isinstance(raw_key, str) or not raw_key:
        raise ValueError("s3.object.key is not a non-empty string")
    size = _byte_count(obj.get("size"), "s3.object.size")
    event_name = record.get("eventName", "ObjectCreated:Put")
    if not isinstance(event_name, str):
        raise TypeError("eventName is not a string")
    return Job(
        bucket=bucket,
        # S3 sends keys URL-encoded with '+' for spaces; a local emulator also encodes '/' as %2F.
        key=unquote_plus(raw_key),
        size=size,
        etag=normalise_etag(_optional_text(obj, "eTag")),
        version_id=_optional_text(obj, "versionId"),
        event_name=event_name,
        sequencer=_optional_text(obj, "sequencer"),
        rerun=_rerun_flag(record),
        run=_run(record),
        event_time=event_time(record.get("eventTime")),
    )


def event_time(value: object) -> datetime | None:
    """An event's ISO 8601 time (`2026-11-21T19:30:00.000Z`) as an aware datetime; None when absent or unreadable
    (it is a hint, never a reason to refuse a message)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rerun_flag(record: Mapping[str, Any]) -> bool:
    """The `lew` block `lew rerun` adds to its record: {"lew": {"rerun": true}}."""
    block = record.get("lew")
    return isinstance(block, dict) and block.get("rerun") is True


def _run(record: Mapping[str, Any]) -> Run | None:
    """The scheduled run the launcher's `lew` block names (worker/runs.py), or None."""
    block = record.get("lew")
    return run_from_block(block) if isinstance(block, dict) else None


def _required_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} is not a non-empty string")
    return value


def _byte_count(size: object, what: str) -> int | None:
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ValueError(f"{what} {size!r} is not a byte count")
    return size


def _optional_text(obj: Mapping[str, Any], name: str, where: str = "s3.object") -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"{where}.{name} {value!r} is not a string")
    return value


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error)
