"""Parse SQS message bodies (S3 event notification documents) into jobs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class Job:
    """One S3 object to process, as a notification record describes it (the key is decoded)."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    event_name: str = "ObjectCreated:Put"
    sequencer: str | None = None  # orders the events of one key (docs/worker.md, "Versions and order")
    rerun: bool = False  # `lew rerun`: process again even when the manifest records a success for this ETag


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


def parse_body(body: str) -> ParsedBody:
    """Classify a message body: jobs, a test event, or poison (with the reason)."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, TypeError) as error:
        return Poison(f"body is not JSON: {error}")
    if not isinstance(document, dict):
        return Poison(f"body is JSON {type(document).__name__}, not an S3 event notification object")
    if document.get("Event") == "s3:TestEvent":
        return TestEvent()
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        return Poison("body has no 'Records' list: not an S3 event notification")

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


def _job_from_record(record: Any) -> Job:
    s3 = record["s3"]
    bucket = s3["bucket"]["name"]
    obj = s3["object"]
    raw_key = obj["key"]
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("s3.bucket.name is not a non-empty string")
    if not isinstance(raw_key, str) or not raw_key:
        raise ValueError("s3.object.key is not a non-empty string")
    size = obj.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ValueError(f"s3.object.size {size!r} is not a byte count")
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
    )


def _rerun_flag(record: dict[str, Any]) -> bool:
    """The `lew` block `lew rerun` adds to its record: {"lew": {"rerun": true}}."""
    block = record.get("lew")
    return isinstance(block, dict) and block.get("rerun") is True


def _optional_text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"s3.object.{name} {value!r} is not a string")
    return value


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error)
