"""Cancel requests: a small marker object next to the job's claim, written by `lew cancel`, read by the worker.

Only S3 is involved: `lew cancel` puts `<claim key without .claim.json>.cancel.json` naming the upload (its ETag
and version id) it cancels, and for a job no worker holds it also writes the `cancelled` manifest, which the worker
reads before every job anyway (so the happy path spends no request on cancels). The worker reads the marker when
that manifest says cancelled, and every few seconds while a job runs (the processor's process tree is then
killed); either way it completes the `cancelled` manifest, deletes the message and deletes the marker.
A marker for another ETag (an older upload of the same key) is ignored, so a cancel never reaches a later upload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.claims import beside_claims
from worker.log import get_logger
from worker.manifest import iso_time
from worker.messages import normalise_etag
from worker.s3json import get_json_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CANCEL_SUFFIX = ".cancel.json"


def cancel_key(result_prefix: str, folder: str) -> str:
    """The cancel marker of a results folder: its claim key with `.cancel.json` for `.claim.json` (sha256 when long)."""
    return beside_claims(result_prefix, folder, CANCEL_SUFFIX)


@dataclass(frozen=True)
class CancelRequest:
    """A request to cancel the upload with this ETag (and version id); `etag` None cancels whatever is there."""

    etag: str | None
    version_id: str | None
    requested_at: str
    requested_by: str | None = None

    def applies_to(self, etag: str | None, version_id: str | None) -> bool:
        """True when the request names this upload (a request made for an older upload of the key does not)."""
        if self.etag is not None and normalise_etag(self.etag) != normalise_etag(etag):
            return False
        return not (self.version_id and version_id and self.version_id != version_id)

    def error_record(self, *, before_start: bool = False) -> dict[str, Any]:
        """The `error` of the cancelled manifest: type JobCancelled, saying who asked and when (permanent)."""
        when = f" at {self.requested_at}" if self.requested_at else ""
        by = f" by {self.requested_by}" if self.requested_by else ""
        late = ", before a worker started it" if before_start else ""
        return {"type": "JobCancelled", "message": f"cancelled{by}{when} (lew cancel){late}", "permanent": True}

    def to_dict(self) -> dict[str, Any]:
        """The marker's JSON body."""
        return {
            "etag": self.etag,
            "version_id": self.version_id,
            "requested_at": self.requested_at,
            "requested_by": self.requested_by,
        }

    @classmethod
    def new(cls, etag: str | None, version_id: str | None, requested_by: str | None = None) -> CancelRequest:
        """A request made now."""
        return cls(normalise_etag(etag), version_id, iso_time(datetime.now(UTC)), requested_by)


def read_cancel(s3: S3Client, bucket: str, key: str) -> CancelRequest | None:
    """The cancel request at a marker key, or None when there is none. S3 errors other than 404 are raised."""
    found = get_json_object(s3, bucket, key)
    if found is None:
        return None
    # A damaged marker still means someone asked to cancel: it cancels whatever upload the key holds.
    document = found.document or {}
    etag, version_id = document.get("etag"), document.get("version_id")
    return CancelRequest(
        etag=etag if isinstance(etag, str) and etag else None,
        version_id=version_id if isinstance(version_id, str) and version_id else None,
        requested_at=str(document.get("requested_at") or ""),
        requested_by=str(document["requested_by"]) if document.get("requested_by") else None,
    )


def pending_cancel(
    s3: S3Client, bucket: str, key: str, etag: str | None, version_id: str | None
) -> CancelRequest | None:
    """The cancel request for this upload, if one was made; None otherwise, or when the marker cannot be read.

    A read that fails (network, access) is logged and counts as "no request": it is asked again on the next beat,
    and a cancel must never be what fails a job.
    """
    try:
        request = read_cancel(s3, bucket, key)
    except (BotoCoreError, ClientError) as error:
        get_logger().warning("could not read the cancel marker", extra={"marker": key, "error": str(error)})
        return None
    return request if request is not None and request.applies_to(etag, version_id) else None


def write_cancel(s3: S3Client, bucket: str, key: str, request: CancelRequest) -> None:
    """Put a cancel marker (what `lew cancel` does)."""
    body = json.dumps(request.to_dict()).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def clear_cancel(s3: S3Client, bucket: str, key: str) -> None:
    """Delete a cancel marker once honoured; a failure is logged (the marker names an ETag that is now done)."""
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as error:
        get_logger().warning("could not delete the cancel marker", extra={"marker": key, "error": str(error)})
