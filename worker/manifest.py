"""The manifest written last in a results folder (schema in docs/ARCHITECTURE.md), and the idempotency rule."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from worker.messages import normalise_etag
from worker.runs import Run
from worker.s3json import read_json_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"  # `lew cancel` stopped the job (worker/cancel.py); `error` says when


@dataclass(frozen=True)
class Source:
    """The object a job processed."""

    bucket: str
    key: str
    etag: str | None
    version_id: str | None
    size: int | None
    sequencer: str | None = None  # the S3 event's sequencer for this object, when known (worker/versions.py)
    # The job's parameters as the upload's metadata carried them (raw text, by name; worker/parameters.py);
    # None until the GET has answered.
    parameters: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class Output:
    """One uploaded output."""

    key: str
    size: int
    content_type: str


@dataclass
class Manifest:
    """What a job did; `to_json` gives the document of docs/ARCHITECTURE.md."""

    status: str
    source: Source
    processor: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    outputs: list[Output] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    task_arn: str | None = None
    log_stream: str | None = None
    processor_log: str | None = None
    error: dict[str, Any] | None = None
    claim: str | None = None  # the nonce of the claim this job ran under (docs/worker.md, "Concurrent duplicates")
    ignored: list[dict[str, str]] = field(default_factory=list)  # archive members left out: {"name", "rule"}
    warnings: list[str] = field(default_factory=list)  # what the uploader should know about a success
    run: Run | None = None  # the scheduled run this job was (worker/runs.py); None for an upload's job

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict, fields in the documented order."""
        return {
            "status": self.status,
            "source": {
                "bucket": self.source.bucket,
                "key": self.source.key,
                "etag": self.source.etag,
                "version_id": self.source.version_id,
                "size": self.source.size,
                "sequencer": self.source.sequencer,
            },
            "outputs": [{"key": o.key, "size": o.size, "content_type": o.content_type} for o in self.outputs],
            "processor": self.processor,
            "parameters": dict(self.source.parameters or ()),
            "timings": {name: round(seconds, 3) for name, seconds in self.timings.items()},
            "attempt": self.attempt,
            "task_arn": self.task_arn,
            "log_stream": self.log_stream,
            "processor_log": self.processor_log,
            "error": self.error,
            "started_at": iso_time(self.started_at),
            "finished_at": iso_time(self.finished_at),
            "claim": self.claim,
            "ignored": self.ignored,
            "warnings": self.warnings,
            "run": self.run.to_dict() if self.run is not None else None,
        }

    def to_json(self) -> bytes:
        """The manifest as UTF-8 JSON."""
        return (json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def error_record(error: BaseException, *, permanent: bool) -> dict[str, Any]:
    """The manifest's `error` field for an exception."""
    return {"type": type(error).__name__, "message": str(error), "permanent": permanent}


def read_manifest(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """The manifest at a key, or None when there is none (or it is not a JSON object)."""
    # A damaged manifest records nothing: the job runs again and replaces it.
    return read_json_object(s3, bucket, key)


def records_success(
    manifest: dict[str, Any] | None,
    etag: str | None,
    version_id: str | None,
    parameters: Iterable[tuple[str, str]] | None = None,
) -> bool:
    """True when a manifest records a success for this ETag (and version id, when the object has one).

    With `parameters` (name, value pairs), the manifest must also record exactly those job parameters (a manifest
    without the field recorded none): the same bytes with other parameters are another job.
    """
    if not _records_upload(manifest, SUCCEEDED, etag, version_id):
        return False
    return parameters is None or (manifest.get("parameters") or {}) == dict(parameters)


def records_cancel(manifest: dict[str, Any] | None, etag: str | None, version_id: str | None) -> bool:
    """True when a manifest records that this upload (ETag, and version id when the object has one) was cancelled."""
    return _records_upload(manifest, CANCELLED, etag, version_id)


def _records_upload(
    manifest: dict[str, Any] | None, status: str, etag: str | None, version_id: str | None
) -> TypeGuard[dict[str, Any]]:
    """True when a manifest has this status for this upload: the same ETag, and version id when the object has one.

    Without an ETag nothing can be matched: False.
    """
    if not manifest or manifest.get("status") != status or not etag:
        return False
    source = manifest.get("source")
    if not isinstance(source, dict) or normalise_etag(source.get("etag")) != normalise_etag(etag):
        return False
    return not version_id or source.get("version_id") == version_id


def records_claim(manifest: dict[str, Any] | None, nonce: str) -> bool:
    """True when a manifest names the claim with this nonce: the job that ran under that claim is over.

    A manifest from before the field existed names no claim: its upload's claim is then treated as before.
    """
    return manifest is not None and bool(nonce) and manifest.get("claim") == nonce


def write_manifest(s3: S3Client, bucket: str, key: str, manifest: Manifest) -> None:
    """Put the manifest (always the last object a job writes)."""
    s3.put_object(Bucket=bucket, Key=key, Body=manifest.to_json(), ContentType="application/json")


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def iso_time(moment: datetime) -> str:
    """A time as manifests, claims and lew's records write it: UTC, whole seconds, `2026-11-30T03:00:00Z`.

    One format, because lew compares these times as text (a manifest's finished_at with an upload's LastModified,
    a retry record's time, a re-run request's)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
