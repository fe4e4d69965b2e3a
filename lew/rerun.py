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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from botocore.exceptions import ClientError

from lew import ops
from lew.errors import LewError
from lew.schedule import in_the_future, run_time_of
from worker import paths
from worker.claims import beside_claims
from worker.errors import error_code
from worker.manifest import iso_time
from worker.runs import scheduled_time_of
from worker.s3json import MISSING_KEY_CODES, read_json_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from lew.target import Target


RERUN_SUFFIX = ".rerun.json"


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


def rerun_key(target: Target, key: str, run: str | None = None) -> str:
    """Where `lew rerun` records when it asked for a re-run of a job (beside its claim): a manifest finished before
    that is the previous job's, whichever process waits for the re-run (lew.client)."""
    folder = paths.folder_name(key, target.input_prefix, run)
    return beside_claims(target.result_prefix, folder, RERUN_SUFFIX)


def replaced_by_rerun(s3: S3Client, target: Target, manifest: dict[str, Any], key: str, run: str | None = None) -> bool:
    """True when `lew rerun` asked, after this manifest was written, for the job to run again: the manifest is the
    previous job's and the re-run's outcome is still to come. The request names the previous job's claim nonce;
    for a manifest that has none, its finished_at is compared with the request's time (whole seconds)."""
    request = read_json_object(s3, target.bucket, rerun_key(target, key, run), absent=MISSING_KEY_CODES)
    if request is None:
        return False
    previous, claim = request.get("previous_claim"), manifest.get("claim")
    if isinstance(previous, str) and isinstance(claim, str):
        return claim == previous
    requested = request.get("requested_at")
    return isinstance(requested, str) and str(manifest.get("finished_at") or "") < requested


def rerun(s3: S3Client, sqs: SQSClient, target: Target, keys: Sequence[str], *, run: str | None = None) -> list[Rerun]:
    """Queue a re-run of each upload (ops.resolve_key: a key, s3:// URL or name); refuse all if one does not exist.

    With `run` (a scheduled run's id), re-run that run of each key instead, into the run's own folder. Raises
    LewError naming the first key that is not an object in the bucket, or whose results could never be stored, or a
    run id that names no real time (nothing is queued then).
    """
    if run is not None and in_the_future(run_time_of(run)):
        raise LewError(f"--run {run} is in the future: no run of that time has been queued yet")
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
        # First the request record, so that no `lew wait` takes the previous manifest for the re-run's outcome: it
        # names that manifest's job by its claim nonce (unique per job), and the time for a manifest without one.
        previous = read_json_object(s3, target.bucket, ops.manifest_key(target, key, run), absent=MISSING_KEY_CODES)
        record = {
            "requested_at": iso_time(datetime.now(UTC)),
            "previous_claim": (previous or {}).get("claim"),
        }
        s3.put_object(Bucket=target.bucket, Key=rerun_key(target, key, run), Body=json.dumps(record).encode())
        body = rerun_body(target.bucket, key, etag, size, run)
        sent = sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)
        queued.append(Rerun(key, etag, sent["MessageId"], ops.manifest_key(target, key, run), run))
    return queued
