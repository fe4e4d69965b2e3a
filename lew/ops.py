"""Operations on a stack, local or deployed: upload checks, status, results, redrive. Clients come in as arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lew.errors import LewError
from lew.files import check_readable_file
from lew.queues import queue_arn, queue_depths
from lew.ui import plural
from worker import paths
from worker.errors import error_code
from worker.s3json import MISSING_KEY_CODES, get_json_object

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from lew.target import Target

MANIFEST_NAME = paths.MANIFEST_NAME
SQS_BATCH = 10


# -- before an upload ---------------------------------------------------------------------------------------------


def check_uploadable(files: Sequence[Path], suffixes: Sequence[str]) -> None:
    """Refuse, before uploading anything, files that are missing or that the launcher would skip."""
    seen: dict[str, Path] = {}
    for path in files:
        # An empty object would only come back as a failed job (no archive is 0 bytes): refuse it now.
        check_readable_file(path, need_content=True)
        if suffixes and not any(path.name.lower().endswith(suffix) for suffix in suffixes):
            raise LewError(f"{path}: the stack only processes {', '.join(suffixes)} files")
        if path.name in seen:
            raise LewError(f"{path} and {seen[path.name]} would be uploaded to the same key; rename one")
        seen[path.name] = path


def results_key_problem(target: Target, key: str, *, uploaded: bool = True, run: str | None = None) -> str | None:
    """One line saying that no result of the upload `key` can ever be stored, or None when its results fit.

    The rule is the worker's (worker/paths.py, results_key_problem): a key with many folders fits S3 while its
    results folder, one segment with every `/` written `%2F`, does not. The line says what happens to an upload
    (the worker dead-letters it) or, with `uploaded=False`, what to do before uploading. `run` is a scheduled
    run's id (its results folder is `.lew-runs/<the whole key encoded>/<run>`).
    """
    if paths.results_key_problem(key, target.input_prefix, target.result_prefix, run) is None:
        return None
    size = len(paths.manifest_key(key, target.input_prefix, target.result_prefix, run).encode())
    outcome = "the worker dead-letters it (`lew dead-letters` shows it)" if uploaded else "shorten the key"
    return (
        f"its results cannot be stored: its manifest key would be {size} bytes, more than S3's limit of "
        f"{paths.S3_KEY_LIMIT_BYTES} (its results folder is named by the key with each / written %2F); {outcome}"
    )


def shown_key(key: str, *, limit: int = 100) -> str:
    """A key for a one-line message: whole when short, else its start and end around its length in bytes."""
    if len(key) <= limit:
        return key
    return f"{key[: limit - 40]}...{key[-30:]} ({len(key.encode())} bytes)"


def check_results_keys(target: Target, keys: Sequence[str], *, action: str = "upload", run: str | None = None) -> None:
    """Refuse, before anything is uploaded or queued, keys whose results could never be stored (LewError naming
    the first, in one line: `refusing to <action> s3://BUCKET/KEY: its results cannot be stored: ...`); `run` is a
    scheduled run's id (its folder differs)."""
    for key in keys:
        problem = results_key_problem(target, key, uploaded=False, run=run)
        if problem is not None:
            raise LewError(f"refusing to {action} s3://{target.bucket}/{shown_key(key)}: {problem}")


# -- manifests and results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestSummary:
    """The fields of a manifest that the status and results tables show; `folder` is its results folder's name."""

    folder: str
    key: str
    status: str
    source_key: str
    run: str | None  # a scheduled run's id (its folder's last segment), None for an upload's job
    outputs: tuple[str, ...]
    seconds: float | None
    error: str | None
    last_modified: datetime | None
    parameters: dict[str, str]  # the job parameters the upload carried, as the worker recorded them (name -> text)
    document: dict[str, Any] = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """The input it is the outcome of: its key (or folder), and the run of a scheduled run."""
        named = self.source_key or self.folder
        return named if self.run is None else f"{named} (run {self.run})"


def summarize(
    document: dict[str, Any], key: str, result_prefix: str, last_modified: datetime | None
) -> ManifestSummary:
    """Read a manifest defensively: a manifest from another version may lack fields."""
    error = document.get("error") or None
    timings = document.get("timings") or {}
    total = timings.get("total") if isinstance(timings, dict) else None
    return ManifestSummary(
        folder=paths.folder_of_manifest(key, result_prefix) or key.removeprefix(result_prefix),
        key=key,
        status=str(document.get("status", "unknown")),
        source_key=str((document.get("source") or {}).get("key", "")),
        run=paths.run_of_folder(paths.folder_of_manifest(key, result_prefix) or ""),
        outputs=tuple(str(item.get("key", "")) for item in document.get("outputs") or [] if isinstance(item, dict)),
        seconds=float(total) if isinstance(total, int | float) else None,
        error=f"{error.get('type', 'Error')}: {error.get('message', '')}" if isinstance(error, dict) else None,
        last_modified=last_modified,
        parameters=_parameters(document.get("parameters")),
        document=document,
    )


def _parameters(recorded: Any) -> dict[str, str]:
    """A manifest's `parameters` as texts; {} for none, or for a shape another version might write."""
    if not isinstance(recorded, dict):
        return {}
    return {str(name): _text(value) for name, value in recorded.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as lew sends a boolean (lew.job_parameters.parameter_texts)
    return str(value)


def parameters_text(parameters: Mapping[str, str]) -> str:
    """`width=320 height=240`, as a command line would give them; "" for none."""
    return " ".join(f"{name}={value}" for name, value in sorted(parameters.items()))


def read_manifest(s3: S3Client, bucket: str, key: str, result_prefix: str) -> ManifestSummary | None:
    """One manifest, or None when it does not exist (yet); a missing bucket is raised (ClientError NoSuchBucket).

    Unlike the worker, which reads a damaged manifest as none (and runs the job again), this shows it: its status is
    "unreadable", with an InvalidManifest error naming the key.
    """
    found = get_json_object(s3, bucket, key, absent=MISSING_KEY_CODES)
    if found is None:
        return None
    document = found.document
    if document is None:
        message = f"{key} is not a JSON object"
        document = {"status": "unreadable", "error": {"type": "InvalidManifest", "message": message}}
    return summarize(document, key, result_prefix, found.response.get("LastModified"))


def list_manifests(s3: S3Client, target: Target, *, limit: int | None = None) -> list[ManifestSummary]:
    """Manifests under the result prefix, newest first.

    Only `RESULT_PREFIX<folder>/manifest.json` with a one-segment folder is a manifest (worker/paths.py): an output
    named `sub/manifest.json` is not.
    """
    found: list[tuple[datetime, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=target.result_prefix):
        for item in page.get("Contents", []):
            if paths.folder_of_manifest(item["Key"], target.result_prefix) is not None:
                found.append((item["LastModified"], item["Key"]))
    found.sort(reverse=True)
    chosen = found if limit is None else found[:limit]
    summaries = []
    for _, key in chosen:
        summary = read_manifest(s3, target.bucket, key, target.result_prefix)
        if summary is not None:
            summaries.append(summary)
    return summaries


def upload_key(target: Target, key: str) -> str:
    """A key under the input prefix as it is, else a name under it (`scene.zip`); for what a user types, resolve_key."""
    return key if key.startswith(target.input_prefix) else f"{target.input_prefix}{key}"


def resolve_key(s3: S3Client, target: Target, given: str) -> str:
    """The S3 key a user means, by one rule for `lew results`, `rerun`, `wait` and `cancel` (and lew.client).

    `s3://BUCKET/KEY` is KEY (a URL naming another bucket is refused); a key under the input prefix is as given; any
    other is as given when an object has that key (an upload outside the prefix, `staging/a.zip`), else a name under
    the input prefix (`scene.zip` -> `incoming/scene.zip`). Raises LewError for another bucket or an empty key; one
    HEAD at most, whose errors other than "not found" propagate.
    """
    if given.startswith("s3://"):
        bucket, _, key = given[len("s3://") :].partition("/")
        if bucket != target.bucket:
            raise LewError(f"{given}: not in this stack's bucket {target.bucket}")
        if not key:
            raise LewError(f"{given}: names no object (s3://{target.bucket}/KEY)")
        return key
    if not given:
        raise LewError("an empty key names no upload")
    if given.startswith(target.input_prefix) or not target.input_prefix:
        return given
    try:
        s3.head_object(Bucket=target.bucket, Key=given)
    except ClientError as error:
        if error_code(error) in MISSING_KEY_CODES | {"403"}:
            return upload_key(target, given)  # 403: without s3:ListBucket a missing object answers 403
        raise
    return given


def manifest_key(target: Target, key: str, run: str | None = None) -> str:
    """Where the worker writes the manifest of the upload `key`, or of its scheduled run `run` (worker/paths.py)."""
    return paths.manifest_key(key, target.input_prefix, target.result_prefix, run)


def manifests_of(
    s3: S3Client, target: Target, keys: Sequence[str], run: str | None = None
) -> list[tuple[str, ManifestSummary | None]]:
    """Each upload key with its manifest (or its scheduled run `run`'s), or None when it has none (yet)."""
    return [
        (key, read_manifest(s3, target.bucket, manifest_key(target, key, run), target.result_prefix)) for key in keys
    ]


def run_manifests(s3: S3Client, target: Target, key: str, *, limit: int | None = None) -> list[ManifestSummary]:
    """The manifests of a scheduled key's runs (`RESULT_PREFIX.lew-runs/<key>/<run>/`), newest run first."""
    prefix = f"{target.result_prefix}{paths.runs_folder(key)}"
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix):
        found += [
            item["Key"]
            for item in page.get("Contents", [])
            if paths.folder_of_manifest(item["Key"], target.result_prefix)
        ]
    found.sort(reverse=True)  # run ids are times in a fixed-width format: newest first
    summaries = (read_manifest(s3, target.bucket, key, target.result_prefix) for key in found[:limit])
    return [summary for summary in summaries if summary is not None]


def download_results(s3: S3Client, target: Target, manifest: ManifestSummary, dest: Path) -> list[Path]:
    """Download a job's outputs and manifest into `dest/<results folder name>/` (a scheduled run's into
    `dest/runs/<key>/<run>/`, not a hidden folder); keys never reach a path outside it."""
    local = manifest.folder
    if manifest.run is not None:
        local = "runs/" + local.removeprefix(f"{paths.RUNS_FOLDER}/")
    folder = (dest / local).resolve()
    root = dest.resolve()
    if folder == root or not folder.is_relative_to(root):
        raise LewError(f"refusing to download {manifest.key}: its name leads outside {dest}")
    prefix = f"{target.result_prefix}{manifest.folder}/"
    written = []
    for key in [*manifest.outputs, manifest.key]:
        relative = key[len(prefix) :] if key.startswith(prefix) else Path(key).name
        path = (folder / relative).resolve()
        if not path.is_relative_to(folder):
            raise LewError(f"refusing to download {key}: its name leads outside {folder}")
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(target.bucket, key, str(path))
        written.append(path)
    return written


# -- status -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    queued: int
    in_flight: int
    dead: int | None
    active_tasks: int | None
    manifests: list[ManifestSummary]


def active_tasks(ecs: ECSClient, cluster: str, family: str) -> int:
    """Tasks of the worker family that ECS has not stopped (listing paginated)."""
    count = 0
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, family=family, desiredStatus="RUNNING"):
        count += len(page.get("taskArns", []))
    return count


def status(s3: S3Client, sqs: SQSClient, ecs: ECSClient, target: Target, *, limit: int = 10) -> StatusReport:
    """Queue depth, in flight, DLQ depth, active tasks and the most recent manifests."""
    queued, in_flight = queue_depths(sqs, target.queue_url)
    dead = queue_depths(sqs, target.dlq_url)[0] if target.dlq_url else None
    tasks = active_tasks(ecs, target.cluster, target.task_family) if target.cluster else None
    return StatusReport(queued, in_flight, dead, tasks, list_manifests(s3, target, limit=limit))


# -- redrive ------------------------------------------------------------------------------------------------------


def redrive(sqs: SQSClient, target: Target) -> str:
    """Move every DLQ message back to the work queue; StartMessageMoveTask where SQS has it."""
    if not target.dlq_url:
        raise LewError(f"{target.description} has no dead-letter queue (no DlqUrl output)")
    if target.endpoint_url:  # the local stack's moto has no StartMessageMoveTask
        moved = move_messages(sqs, target.dlq_url, target.queue_url)
        return f"moved {plural(moved, 'message')} from the DLQ to the work queue"
    source_arn = queue_arn(sqs, target.dlq_url)
    try:
        task = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=queue_arn(sqs, target.queue_url))
    except ClientError as error:
        code = error_code(error)
        status_code = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # moto (and other emulators) lack the API; anything else is a real error for the user to see.
        if "NotImplemented" not in code and "InvalidAction" not in code and status_code not in (404, 500, 501):
            raise
    else:
        return f"started a message move task ({task['TaskHandle'][:16]}...): SQS moves the messages in the background"
    moved = move_messages(sqs, target.dlq_url, target.queue_url)
    return f"moved {plural(moved, 'message')} from the DLQ to the work queue"


def move_messages(sqs: SQSClient, source_url: str, destination_url: str) -> int:
    """Receive, send, then delete in batches of 10: a message is deleted only after it is safely sent.

    It moves at most the messages the source held when it began. Without that bound a message that is still poison
    would chase its own tail: a worker moves it straight back to the DLQ, this loop picks it up again, and the redrive
    never ends. What lands in the source meanwhile stays there for the next redrive.
    """
    remaining = queue_depths(sqs, source_url)[0]
    moved = 0
    while remaining > 0:
        received = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=min(SQS_BATCH, remaining),
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return moved
        remaining -= len(received)
        entries: list[Any] = []
        for index, message in enumerate(received):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=destination_url, Entries=entries)
        sent_ids = {item["Id"] for item in sent.get("Successful", [])}
        to_delete: list[Any] = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(received)
            if str(index) in sent_ids
        ]
        if to_delete:
            sqs.delete_message_batch(QueueUrl=source_url, Entries=to_delete)
        moved += len(to_delete)
        if failed := sent.get("Failed", []):
            # Make the unsent ones visible again at once, so that a second redrive need not wait out the 60 s.
            sqs.change_message_visibility_batch(
                QueueUrl=source_url,
                Entries=[
                    {
                        "Id": item["Id"],
                        "ReceiptHandle": received[int(item["Id"])]["ReceiptHandle"],
                        "VisibilityTimeout": 0,
                    }
                    for item in failed
                ],
            )
            reasons = "; ".join(f"{item.get('Code')}: {item.get('Message', '')}" for item in failed)
            raise LewError(f"moved {moved}, but {len(failed)} could not be sent (they stay in the DLQ): {reasons}")
    return moved
