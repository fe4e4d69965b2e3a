"""The retry record: what the last failed attempt of a job said, for `lew wait` and `lew status` to show.

A transient failure leaves no manifest (the message goes back to the queue and is tried again), and its claim is
deleted, so without this record a retrying job looks exactly like a queued one. On that path only (never on a
job that succeeds first time), the worker puts `RESULT_PREFIX.lew-claims/<folder>.retry.json`:

    {"etag": "...", "version_id": null, "attempt": 2, "max_attempts": 5, "error": "ProcessorRetry: ...",
     "at": "2026-11-30T19:30:00Z"}

It is not deleted: a later manifest of the same upload is its outcome, and a record naming another ETag, or
older than the upload, is another job's. Writing it never fails a job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.claims import beside_claims
from worker.log import get_logger
from worker.s3json import read_json_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RETRY_SUFFIX = ".retry.json"
ERROR_CHARACTERS = 1000  # one line, and the record stays small


@dataclass(frozen=True)
class RetryRecord:
    """The last failed attempt of an upload's job (or of a scheduled run): which object, which attempt, why."""

    etag: str | None
    version_id: str | None
    attempt: int
    max_attempts: int | None  # the queue's maxReceiveCount: the attempt after which the message is dead-lettered
    error: str
    at: str  # when it failed, ISO 8601 UTC (YYYY-MM-DDTHH:MM:SSZ)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RetryRecord | None:
        """The record a document holds, or None when it is not one (a damaged or foreign object)."""
        attempt, limit = document.get("attempt"), document.get("max_attempts")
        texts = [document.get(name) for name in ("error", "at")]
        if not isinstance(attempt, int) or not all(isinstance(text, str) for text in texts):
            return None
        etag, version = document.get("etag"), document.get("version_id")
        return cls(
            etag if isinstance(etag, str) else None,
            version if isinstance(version, str) else None,
            attempt,
            limit if isinstance(limit, int) else None,
            str(texts[0]),
            str(texts[1]),
        )


def retry_key(result_prefix: str, folder: str) -> str:
    """The retry record of a results folder, beside its claim (sha256-named when long, as claims are)."""
    return beside_claims(result_prefix, folder, RETRY_SUFFIX)


def record_retry(s3: S3Client, bucket: str, key: str, record: RetryRecord) -> None:
    """Put the retry record; a failure is logged and forgotten (the job's retry does not depend on it)."""
    document = asdict(record) | {"error": " ".join(record.error.split())[:ERROR_CHARACTERS]}
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json")
    except (BotoCoreError, ClientError) as error:
        get_logger().warning("could not write the retry record", extra={"record": key, "error": str(error)})


def read_retry(s3: S3Client, bucket: str, key: str) -> RetryRecord | None:
    """The retry record at a key, or None when there is none (or it is not a record)."""
    document = read_json_object(s3, bucket, key)
    return RetryRecord.from_dict(document) if document is not None else None
