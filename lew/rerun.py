"""`lew rerun KEY...`: process uploads again, although their manifests record a success for their ETag.

The worker skips an upload whose manifest records a success for the object's ETag (re-uploading identical content
changes nothing). A re-run is a work message flagged `{"lew": {"rerun": true}}` in its record: the worker then
processes the key's current version again and replaces its results, and still takes the key's claim first, so a
re-run never runs beside another job of the same key. Nothing else starts a worker: on a deployed stack the launcher's
reconcile schedule does (`ReconcileSchedule`, every minute by default), on the local stack the launcher's reconcile
(every few seconds).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from botocore.exceptions import ClientError

from lew import ops
from lew.errors import LewError
from worker.errors import error_code
from worker.runs import run_time, scheduled_time_of
from worker.s3json import MISSING_KEY_CODES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from lew.target import Target


@dataclass(frozen=True)
class Rerun:
    """A queued re-run: the upload's key, its ETag now, the work message's id, and where its manifest will be."""

    key: str
    etag: str
    message_id: str
    manifest_key: str
    run: str | None = None  # the scheduled run re-run, None for an upload's job


def rerun_body(bucket: str, key: str, etag: str, size: int, run: str | None = None) -> str:
    """The work message of a re-run: one S3 event record (key encoded as S3 encodes it) flagged as a re-run.

    It carries no sequencer and no version id: the worker processes the key's current version. With `run`, it re-runs
    that scheduled run (worker/runs.py): into the run's folder, with its scheduled time.
    """
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "lew:rerun",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "eTag": etag, "size": size},
        },
        "lew": {"rerun": True} if run is None else {"rerun": True, "run": run, "scheduledTime": scheduled_time_of(run)},
    }
    return json.dumps({"Records": [record]})


def rerun(s3: S3Client, sqs: SQSClient, target: Target, keys: Sequence[str], *, run: str | None = None) -> list[Rerun]:
    """Queue a re-run of each upload (ops.resolve_key: a key, s3:// URL or name); refuse all if one does not exist.

    With `run` (a scheduled run's id), re-run that run of each key instead, into the run's own folder. Raises
    LewError naming the first key that is not an object in the bucket, or whose results could never be stored, or a
    run id that names no real time (nothing is queued then).
    """
    if run is not None:
        try:
            run_time(run)
        except ValueError as error:
            raise LewError(f"--run {error}") from None
    found: list[tuple[str, str, int]] = []
    for given in keys:
        key = ops.resolve_key(s3, target, given)
        ops.check_results_keys(target, [key], action="re-run", run=run)  # the worker could only dead-letter it again
        try:
            head = s3.head_object(Bucket=target.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in MISSING_KEY_CODES:
                raise LewError(f"s3://{target.bucket}/{key}: no such object; upload it with `lew submit`") from None
            raise
        found.append((key, head["ETag"].strip('"'), head["ContentLength"]))
    queued = []
    for key, etag, size in found:
        body = rerun_body(target.bucket, key, etag, size, run)
        sent = sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)
        queued.append(Rerun(key, etag, sent["MessageId"], ops.manifest_key(target, key, run), run))
    return queued
