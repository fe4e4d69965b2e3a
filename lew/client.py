"""The typed Python API over a lew stack (local or deployed): submit, wait, cancel, status, events.

The `lew` subcommands are thin layers over this module, and so are the orchestrator integrations. Everything
goes through S3 and SQS with the caller's credentials; no lew service runs anywhere but the stack itself.

    from lew.client import Client
    client = Client.connect()                      # the running `lew local up`, or Client.connect(stack="lew")
    upload = client.submit(Path("scene.zip"))
    outcome = client.wait(upload, timeout=600, on_update=print)
    if outcome.status == "succeeded": ...

    outcome = client.wait(client.rerun(["scene.zip"])[0])   # processed again, waiting for the new manifest
    outcome = client.wait(client.fire_schedule())           # a run of the stack's scheduled job, now
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lew import dead_letters, ops
from lew.errors import LewError
from lew.job_parameters import ParameterValue, parameter_texts
from lew.local.processor_parameters import check_job_parameters
from lew.rerun import replaced_by_rerun
from lew.rerun import rerun as rerun_uploads
from lew.schedule import fire, in_the_future, key_problem, run_time_of
from lew.target import Target, resolve_target
from worker.cancel import CancelRequest, cancel_key, read_cancel, write_cancel
from worker.claims import CLAIM_SUFFIX, CLAIMS_FOLDER, claim_key
from worker.errors import error_code
from worker.manifest import CANCELLED, FAILED, SUCCEEDED, Manifest, Source, iso_time, write_manifest
from worker.messages import normalise_etag
from worker.parameters import parameter_metadata, parameters_from_metadata
from worker.paths import folder_name, manifest_key, run_of_folder
from worker.progress import Progress
from worker.retries import RetryRecord, read_retry, retry_key
from worker.runs import Run
from worker.s3json import MISSING_KEY_CODES, read_json_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Job states as `wait` and `status` report them: queued and running are not final (nor "timed out", wait's own).
QUEUED, RUNNING, RETRYING = "queued", "running", "retrying"
DEAD_LETTERED, TIMED_OUT = "dead-lettered", "timed out"
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED, DEAD_LETTERED)
POLL_SECONDS = 2.0
# S3 allows 2 KB of user-defined metadata per object: names and values, in bytes.
S3_METADATA_LIMIT_BYTES = 2048
# The DLQ is looked at less often than the manifest: a receive there is a request, and dead letters are rare.
DLQ_POLL_SECONDS = 10.0
# A claim not refreshed for this long is not listed by `running_jobs` (a claim is refreshed at least every
# VisibilityTimeout/3, and every few seconds while progress changes).
RUNNING_CLAIM_WINDOW_SECONDS = 3600


class JobFinishedError(LewError):
    """`cancel` of a job that already has its outcome: nothing to cancel."""


@dataclass(frozen=True)
class Upload:
    """One upload: the object and the version of it that a job processes (`etag` bare, `version_id` or None)."""

    bucket: str
    key: str
    etag: str | None
    version_id: str | None = None
    # A manifest finished before this (UTC, YYYY-MM-DDTHH:MM:SSZ) is an earlier run's: `rerun` sets it.
    not_before: str | None = None
    # The job parameters the upload carries (its lew-param-* metadata, by name); None when not known.
    parameters: dict[str, str] | None = None
    # A scheduled run of the key (its run id, e.g. 20261130T030000Z): its own results folder, claim and manifest.
    run: str | None = None
    # When S3 last wrote the object (its LastModified, YYYY-MM-DDTHH:MM:SSZ); None when not known. A failed or
    # cancelled manifest finished before it belongs to an earlier upload of the same bytes, which the worker runs
    # again (a success is the outcome of any upload of those bytes: the worker skips them).
    uploaded_at: str | None = None

    @property
    def uri(self) -> str:
        """s3://bucket/key."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class JobState:
    """What is known about one upload's job at one moment.

    `status`: queued, running, retrying, succeeded, failed, cancelled, dead-lettered, or "timed out" (`wait` gave
    up). `manifest` is set for succeeded, failed and cancelled; `error` is one line for failed, cancelled,
    dead-lettered and retrying (the last attempt's error); `attempt` is the last failed attempt while retrying (of
    `max_attempts`, the queue's maxReceiveCount, when known); `progress` and `task_arn` while running; `age` is
    seconds since the job started (running) or the seconds it took (finished, from its manifest), None when unknown.
    """

    upload: Upload
    status: str
    manifest: ops.ManifestSummary | None = None
    progress: Progress | None = None
    task_arn: str | None = None
    age: float | None = None
    error: str | None = None
    attempt: int | None = None
    max_attempts: int | None = None

    @property
    def finished(self) -> bool:
        """True for an outcome (succeeded, failed, cancelled, dead-lettered)."""
        return self.status in FINAL_STATES

    @property
    def manifest_key(self) -> str | None:
        """The key of the manifest behind this state, if any."""
        return self.manifest.key if self.manifest is not None else None


@dataclass(frozen=True)
class RunningJob:
    """A job a worker is running now, from its claim: the key, the worker, how long, and how far."""

    key: str
    stem: str
    etag: str | None
    task_arn: str | None
    age: float | None  # seconds since the claim was taken
    progress: Progress | None
    claim_key: str
    run: str | None = None  # a scheduled run's id, None for an upload's job


@dataclass(frozen=True)
class CancelResult:
    """What `cancel` did: the marker written, and the state the job was in (queued or running)."""

    upload: Upload
    state: str
    marker_key: str


@dataclass
class Client:
    """Operations on one stack; every method uses only S3 and SQS (and ECS for `status`)."""

    target: Target
    poll_seconds: float = POLL_SECONDS
    dlq_poll_seconds: float = DLQ_POLL_SECONDS
    _s3: S3Client | None = field(default=None, repr=False)

    @classmethod
    def connect(cls, *, endpoint: str | None = None, stack: str | None = None, region: str | None = None) -> Client:
        """A client for a deployed stack (`stack`), a local endpoint, or the running `lew local up`.

        Raises LewError when none can be found (the message says how to start one).
        """
        return cls(resolve_target(endpoint=endpoint, stack=stack, region=region))

    @property
    def s3(self) -> S3Client:
        """The S3 client (made once)."""
        if self._s3 is None:
            self._s3 = self.target.s3
        return self._s3

    # -- submit ---------------------------------------------------------------------------------------------------

    def submit(
        self,
        path: Path,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
    ) -> Upload:
        """Upload a file as `<input prefix><name or file name>` (multipart when large) and return the upload.

        A cancel request left for an upload of the same content is removed first, so the new upload runs.
        `metadata` becomes the object's user metadata (x-amz-meta-NAME: VALUE), which the worker reads with the
        object (Dagster Pipes, worker/pipes.py); `parameters` (name -> text or number) go with it as the job's
        parameters for the processor (lew-param-NAME; docs/worker.md, "Job parameters"). Raises LewError for a
        missing file, a suffix the stack would skip, metadata and parameters over S3's 2 KB (counted together), or
        a key whose results S3 could not hold (ops.results_key_problem).
        """
        ops.check_uploadable([path], self.target.suffixes)
        key = f"{self.target.input_prefix}{name or path.name}"
        ops.check_results_keys(self.target, [key])  # a key whose results S3 cannot hold is refused, not dead-lettered
        with contextlib.suppress(ClientError):  # without the right to delete it, a marker only for this ETag stays
            self.s3.delete_object(Bucket=self.target.bucket, Key=self._cancel_key(key))
        self._put(path, key, metadata=metadata, parameters=parameters)
        return self.upload(key)

    def upload_scheduled(
        self, path: Path, key: str | None = None, *, parameters: Mapping[str, ParameterValue] | None = None
    ) -> str:
        """Put the scheduled job's archive at `key`, else the stack's ScheduleObjectKey; return the key.

        Every later run processes it, with these job `parameters` (as `submit` sends them). No run starts: the
        schedule, or `fire_schedule`, starts one. Raises LewError when there is no key, or for a file `submit`
        would refuse (missing, empty, an archive suffix the stack does not process).
        """
        chosen = key or self.target.schedule_key
        if not chosen:
            raise LewError(
                f"{self.target.description} has no scheduled job (ScheduleObjectKey is empty): give the key to "
                "upload to, e.g. schedules/etl.zip"
            )
        ops.check_uploadable([path], ())
        refused = key_problem(chosen, suffixes=self.target.suffixes, result_prefix=self.target.result_prefix)
        if refused is not None:
            raise LewError(refused)
        self._put(path, chosen, parameters=parameters)
        return chosen

    def _put(
        self,
        path: Path,
        key: str,
        *,
        metadata: Mapping[str, str] | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
    ) -> None:
        texts = parameter_texts(parameters)
        self._check_job_parameters(texts)
        entries = {**(check_metadata(metadata) if metadata else {}), **parameter_metadata(texts)}
        check_metadata(entries)  # the two together within S3's 2 KB, refused before anything is uploaded
        extra = {"Metadata": entries} if entries else None
        self.s3.upload_file(str(path), self.target.bucket, key, ExtraArgs=extra)

    def _rerun_since(self, summary: ops.ManifestSummary, upload: Upload) -> bool:
        """True when a re-run was asked for after this manifest was written (`lew rerun`, by any process): the
        manifest is the previous job's, and the re-run's outcome is still to come."""
        return replaced_by_rerun(self.s3, self.target, summary.document, upload.key, upload.run)

    def _check_job_parameters(self, texts: Mapping[str, str]) -> None:
        """Refuse, in one line, job parameters the stack's processor would refuse (the worker's own rules), when lew
        knows the processor; a command processor with no ProcessParameters keeps its image's, which lew cannot see."""
        processor, declarations = self.target.processor, self.target.process_parameters
        if not texts or not processor or (processor == "command" and not declarations):
            return
        check_job_parameters(processor, declarations, texts, option="--param")

    def upload(self, key: str) -> Upload:
        """The current upload at a key (a HEAD), resolved by ops.resolve_key: a key, a name, or an s3:// URL.

        Raises LewError when there is no such object.
        """
        resolved = ops.resolve_key(self.s3, self.target, key)
        try:
            head = self.s3.head_object(Bucket=self.target.bucket, Key=resolved)
        except ClientError as error:
            if error_code(error) in MISSING_KEY_CODES:
                raise LewError(f"no upload s3://{self.target.bucket}/{resolved}") from None
            raise
        return Upload(
            self.target.bucket,
            resolved,
            normalise_etag(head.get("ETag")),
            head.get("VersionId"),
            parameters=parameters_from_metadata(head.get("Metadata") or {}),
            uploaded_at=_stamp(head.get("LastModified")),
        )

    def rerun(self, keys: Sequence[str], *, run: str | None = None) -> list[Upload]:
        """Process uploads again though their manifests record a success (lew.rerun: one flagged work message each);
        with `run`, that scheduled run of each key (a failed tick, once its cause is fixed).

        Returns the uploads, whose `wait` counts only a manifest written from now on. Raises LewError naming the
        first key that is not an object in the bucket, or a bad run id (nothing is queued then).
        """
        since = iso_time(datetime.now(UTC))
        queued = rerun_uploads(self.s3, self.target.sqs, self.target, keys, run=run)
        return [
            Upload(self.target.bucket, item.key, None if run else normalise_etag(item.etag), not_before=since, run=run)
            for item in queued
        ]

    def fire_schedule(self, key: str | None = None, *, at: datetime | None = None) -> Upload:
        """Start a run of the scheduled job now (lew.schedule.fire): of `key`, else of the stack's ScheduleObjectKey.

        `at` is the run's scheduled time (default now; it names the run). Returns the run as an Upload whose `run`
        is set, for `wait`, `state` and `cancel`. Raises LewError when there is no schedule or no such object.
        """
        fired = fire(self.target, key, at=at)
        return Upload(fired.bucket, fired.key, None, run=fired.run)

    def run_of(self, key: str, run: str) -> Upload:
        """A scheduled run of an object, by its id (as `fire_schedule` or the schedule named it), for `wait`/`cancel`.

        `key` is the stack's ScheduleObjectKey as given (whether or not the object is there now), else resolved as
        for uploads (ops.resolve_key). Raises LewError when `run` is not a run id like 20261130T030000Z.
        """
        run_time_of(run)
        scheduled = self.target.schedule_key
        known = bool(scheduled) and key in (scheduled, f"s3://{self.target.bucket}/{scheduled}")
        resolved = scheduled if known else ops.resolve_key(self.s3, self.target, key)
        return Upload(self.target.bucket, resolved, None, run=run)

    # -- one job's state ------------------------------------------------------------------------------------------

    def state(self, upload: Upload, *, check_dlq: bool = False) -> JobState:
        """The job's state now: its manifest for this upload, else its live claim, else (check_dlq) a dead letter.

        An upload whose results cannot be stored (ops.results_key_problem) is dead-lettered at once, with that line.
        """
        unstorable = ops.results_key_problem(self.target, upload.key, run=upload.run)
        if unstorable is not None:
            return JobState(upload, DEAD_LETTERED, error=unstorable)
        summary = ops.read_manifest(
            self.s3, upload.bucket, self._manifest_key(upload.key, upload.run), self.target.result_prefix
        )
        if summary is not None and _records(summary.document, upload) and not self._rerun_since(summary, upload):
            return JobState(upload, summary.status, manifest=summary, age=summary.seconds, error=summary.error)
        claim = self._read_claim(self._claim_key(upload.key, upload.run))
        # A claim the manifest names is its finished job's, left behind (docs/worker.md, "Concurrent duplicates").
        finished = claim is not None and summary is not None and summary.document.get("claim") == claim.get("nonce")
        if claim is not None and not finished and _claim_names(claim, upload) and _claim_live(claim):
            return JobState(
                upload,
                RUNNING,
                progress=Progress.from_dict(claim.get("progress")),
                task_arn=claim.get("task_arn") if isinstance(claim.get("task_arn"), str) else None,
                age=_age(claim.get("claimed_at")),
            )
        if check_dlq:
            reason = self.dead_letter_reason(upload)
            if reason is not None:
                return JobState(upload, DEAD_LETTERED, error=reason)
        retry = read_retry(self.s3, upload.bucket, self._retry_key(upload.key, upload.run))
        if retry is not None and _retry_names(retry, upload):
            return JobState(upload, RETRYING, error=retry.error, attempt=retry.attempt, max_attempts=retry.max_attempts)
        return JobState(upload, QUEUED)

    def wait(
        self,
        upload: Upload,
        *,
        timeout: float | None = None,
        on_update: Callable[[JobState], None] | None = None,
    ) -> JobState:
        """Poll until the upload's job has an outcome, or `timeout` seconds (None: forever) have passed.

        Returns the final JobState (succeeded, failed, cancelled, dead-lettered), or one with status "timed out".
        `on_update` is called with every state seen (about every `poll_seconds`). S3/SQS errors are raised.
        """
        return self.wait_all([upload], timeout=timeout, on_update=on_update)[0]

    def wait_all(
        self,
        uploads: Sequence[Upload],
        *,
        timeout: float | None = None,
        on_update: Callable[[JobState], None] | None = None,
    ) -> list[JobState]:
        """`wait` for several uploads at once, under one overall `timeout` (s); their states, in the same order."""
        deadline = None if timeout is None else time.monotonic() + timeout
        next_dlq = time.monotonic() + self.dlq_poll_seconds
        final: dict[int, JobState] = {}
        while True:
            check_dlq = bool(self.target.dlq_url) and time.monotonic() >= next_dlq
            if check_dlq:
                next_dlq = time.monotonic() + self.dlq_poll_seconds
            latest: dict[int, JobState] = {}
            for index, upload in enumerate(uploads):
                if index in final:
                    continue
                current = self.state(upload, check_dlq=check_dlq)
                latest[index] = current
                if on_update is not None:
                    on_update(current)
                if current.finished:
                    final[index] = current
            if len(final) == len(uploads):
                return [final[index] for index in range(len(uploads))]
            if deadline is not None and time.monotonic() >= deadline:
                # What was last seen goes with it: a retrying job's last error says why it had no outcome in time.
                return [
                    final.get(index) or dataclasses.replace(latest[index], status=TIMED_OUT)
                    for index, upload in enumerate(uploads)
                ]
            pause = self.poll_seconds if deadline is None else min(self.poll_seconds, deadline - time.monotonic())
            time.sleep(max(0.0, pause))

    def download(self, state: JobState, dest: Path) -> list[Path]:
        """Download a finished job's outputs and manifest into `dest/<stem>/`; the files written."""
        if state.manifest is None:
            raise LewError(f"{state.upload.uri} has no manifest to download ({state.status})")
        return ops.download_results(self.s3, self.target, state.manifest, dest)

    def dead_letter_reason(self, upload: Upload) -> str | None:
        """The reason a DLQ message about this upload gives, or None when the DLQ holds none.

        Looks through the whole DLQ, leaving every message in it (lew.dead_letters.find: one receive per 10
        messages, as deep as the DLQ is when it starts, stopping at the first match).
        """
        if not self.target.dlq_url:
            return None
        job = (upload.bucket, upload.key, upload.run)
        letter = dead_letters.find(self.target.sqs, self.target.dlq_url, [job]).get(job)
        return letter.reason if letter is not None else None

    # -- cancel ---------------------------------------------------------------------------------------------------

    def cancel(self, upload: Upload, *, requested_by: str | None = None) -> CancelResult:
        """Ask the workers to cancel an upload's job: a queued job is not run, a running one is stopped.

        Writes the cancel marker next to the job's claim (docs/worker.md, "Cancel") and, for a queued job or one
        waiting for its next attempt, its `cancelled` manifest; the worker completes that manifest, or writes it for
        a running job, and deletes the message. Raises JobFinishedError when the job already has its outcome;
        LewError for a scheduled run whose time has not come (no such run can be queued yet), or for the stack's
        scheduled object named without a run (its jobs are runs: there is no upload job of it to cancel).
        """
        if upload.run is not None and in_the_future(run_time_of(upload.run)):
            raise LewError(f"run {upload.run} of {upload.key} is in the future: no such run is queued yet")
        if upload.run is None and upload.key == self.target.schedule_key:
            raise LewError(
                f"{upload.key} is the scheduled job's object: name the run to cancel, `lew cancel {upload.key} --run "
                f"ID` (`lew results {upload.key}` lists its runs)"
            )
        state = self.state(upload)
        if state.finished:
            told = f"manifest {state.manifest_key}" if state.manifest_key else state.error
            raise JobFinishedError(f"{upload.uri} already {state.status}: nothing to cancel ({told})")
        marker = self._cancel_key(upload.key, upload.run)
        request = CancelRequest.new(upload.etag, upload.version_id, requested_by)
        write_cancel(self.s3, upload.bucket, marker, request)
        if state.status in (QUEUED, RETRYING):
            # The worker reads the manifest before it starts a job anyway: a cancelled manifest there stops a queued
            # job (or a retrying one: its next attempt is queued) without a request of its own on every job's path
            # (the marker tells the worker who asked, and stops the job within a beat if a worker claimed it meanwhile).
            write_manifest(
                self.s3,
                upload.bucket,
                self._manifest_key(upload.key, upload.run),
                _queued_cancel_manifest(upload, request),
            )
        return CancelResult(upload, state.status, marker)

    def cancel_requested(self, upload: Upload) -> bool:
        """True when a cancel request for this upload waits for a worker."""
        request = read_cancel(self.s3, upload.bucket, self._cancel_key(upload.key, upload.run))
        return request is not None and request.applies_to(upload.etag, upload.version_id)

    # -- the whole stack ------------------------------------------------------------------------------------------

    def running_jobs(self) -> list[RunningJob]:
        """Jobs that workers are running now (live claims with no manifest naming them), oldest first."""
        prefix = f"{self.target.result_prefix}{CLAIMS_FOLDER}"
        now = datetime.now(UTC)
        running = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.target.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith(CLAIM_SUFFIX):
                    continue
                if (now - item["LastModified"]).total_seconds() > RUNNING_CLAIM_WINDOW_SECONDS:
                    continue
                job = self._running_job(item["Key"])
                if job is not None:
                    running.append(job)
        return sorted(running, key=lambda job: -(job.age or 0.0))

    def status(self, *, limit: int = 10) -> tuple[ops.StatusReport, list[RunningJob]]:
        """Queue depths, active tasks and the `limit` most recent manifests, and the running jobs."""
        target = self.target
        return ops.status(self.s3, target.sqs, target.ecs, target, limit=limit), self.running_jobs()

    def events(self, *, follow: bool = True, wait_seconds: int = 5) -> Iterator[dict[str, Any]]:
        """Job state-change events, oldest first, as EventBridge delivers them (docs/job-event.schema.json).

        Reads (and deletes) them from the stack's events queue: the local stack has one; for a deployed stack,
        subscribe your own queue with a rule (README, "Job events") and point `Target.events_queue_url` at it.
        With `follow=False` it stops at the first empty receive. Raises LewError when there is no queue.
        """
        queue_url = self.target.events_queue_url
        if not queue_url:
            raise LewError(
                f"{self.target.description} has no events queue to read: job events go to the event bus "
                f"{self.target.event_bus or '(EventBusName output)'}; subscribe a rule to it (see README, 'Job events')"
            )
        sqs = self.target.sqs
        while True:
            received = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
            if not received and not follow:
                return
            batch = []
            for message in received:
                try:
                    event = json.loads(message.get("Body", ""))
                except ValueError:
                    event = None
                if isinstance(event, dict):
                    batch.append(event)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            yield from sorted(batch, key=lambda event: str(event.get("detail", {}).get("time", "")))

    # -- keys: every one through worker/paths.py and worker/claims.py, never spelled here ---------------------------

    def manifest_key(self, upload: Upload) -> str:
        """Where the manifest of this upload's job (or of its run) is, or will be."""
        return self._manifest_key(upload.key, upload.run)

    def _manifest_key(self, key: str, run: str | None = None) -> str:
        return manifest_key(key, self.target.input_prefix, self.target.result_prefix, run)

    def _claim_key(self, key: str, run: str | None = None) -> str:
        return claim_key(self.target.result_prefix, self._folder(key, run))

    def _retry_key(self, key: str, run: str | None = None) -> str:
        return retry_key(self.target.result_prefix, self._folder(key, run))

    def _cancel_key(self, key: str, run: str | None = None) -> str:
        return cancel_key(self.target.result_prefix, self._folder(key, run))

    def _folder(self, key: str, run: str | None = None) -> str:
        """The key's (or its run's) results folder name (worker/paths.py), which names its claim and cancel marker."""
        return folder_name(key, self.target.input_prefix, run)

    def _read_claim(self, key: str) -> dict[str, Any] | None:
        # A damaged claim is no running job here (the worker, which must not run twice, still honours it).
        return read_json_object(self.s3, self.target.bucket, key, absent=MISSING_KEY_CODES)

    def _running_job(self, key: str) -> RunningJob | None:
        claim = self._read_claim(key)
        if claim is None or not _claim_live(claim):
            return None
        found = claim.get("source")
        source: dict[str, Any] = found if isinstance(found, dict) else {}
        source_key = source.get("key") if isinstance(source.get("key"), str) else None
        stem = key[len(f"{self.target.result_prefix}{CLAIMS_FOLDER}") : -len(CLAIM_SUFFIX)]
        if source_key is not None:
            # A job that wrote its manifest leaves its claim behind, named by the manifest: not running.
            summary = ops.read_manifest(
                self.s3,
                self.target.bucket,
                self._manifest_key(source_key, run_of_folder(stem)),
                self.target.result_prefix,
            )
            if summary is not None and summary.document.get("claim") == claim.get("nonce"):
                return None
        task_arn = claim.get("task_arn")
        return RunningJob(
            key=source_key or stem,
            stem=stem,
            etag=source.get("etag") if isinstance(source.get("etag"), str) else None,
            task_arn=task_arn if isinstance(task_arn, str) else None,
            age=_age(claim.get("claimed_at")),
            progress=Progress.from_dict(claim.get("progress")),
            claim_key=key,
            run=run_of_folder(stem),
        )


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """User metadata for an upload, checked as S3 would: printable ASCII names, at most 2 KB in all (LewError)."""
    size = 0
    for name, value in metadata.items():
        if not name or not name.isascii() or not name.replace("-", "").replace("_", "").isalnum():
            raise LewError(f"metadata name {name!r}: use letters, digits, '-' and '_'")
        if not value.isascii() or not value.isprintable():
            raise LewError(f"metadata {name}: the value must be printable ASCII")
        size += len(name) + len(value)
    if size > S3_METADATA_LIMIT_BYTES:
        raise LewError(f"metadata of {size} bytes is more than S3's {S3_METADATA_LIMIT_BYTES} bytes of user metadata")
    return dict(metadata)


def _records(document: dict[str, Any], upload: Upload) -> bool:
    """True when a manifest is this upload's outcome (its ETag, and version id when both have one)."""
    source = document.get("source")
    if not isinstance(source, dict) or document.get("status") not in (SUCCEEDED, FAILED, CANCELLED):
        return False
    if upload.etag is not None and normalise_etag(source.get("etag")) != upload.etag:
        return False
    recorded_version = source.get("version_id")
    if upload.version_id and recorded_version and recorded_version != upload.version_id:
        return False
    # The same bytes uploaded again with other job parameters are another job. A manifest written before the GET read
    # them (a queued job's cancel) records none: only a success or recorded parameters are compared.
    recorded = document.get("parameters") or {}
    compared = recorded or document.get("status") == SUCCEEDED
    if upload.parameters is not None and compared and recorded != upload.parameters:
        return False
    finished = str(document.get("finished_at") or "")
    # A failure or cancel finished before the object was last written is an earlier upload's of the same bytes: the
    # worker runs this one (worker/job.py, "uploaded again after a cancel"). A success is any such upload's outcome.
    if document.get("status") != SUCCEEDED and upload.uploaded_at is not None and finished < upload.uploaded_at:
        return False
    # An earlier run's manifest (the same ETag) is not the outcome of a re-run queued after it.
    return upload.not_before is None or finished >= upload.not_before


def _retry_names(retry: RetryRecord, upload: Upload) -> bool:
    """True when a retry record is about this upload's job: its ETag, and made since the upload (or the re-run)."""
    if upload.etag is not None and retry.etag is not None and normalise_etag(retry.etag) != upload.etag:
        return False
    since = max(filter(None, (upload.uploaded_at, upload.not_before)), default="")
    return retry.at >= since


def _stamp(moment: Any) -> str | None:
    """An aware datetime as YYYY-MM-DDTHH:MM:SSZ (UTC), the manifests' format; None for anything else."""
    return iso_time(moment) if isinstance(moment, datetime) else None


def _claim_names(claim: dict[str, Any], upload: Upload) -> bool:
    source = claim.get("source")
    if not isinstance(source, dict):
        return True  # a claim from before the source was written: it is the key's job
    return upload.etag is None or source.get("etag") is None or normalise_etag(source.get("etag")) == upload.etag


def _claim_live(claim: dict[str, Any]) -> bool:
    expires = _parse_time(claim.get("expires_at"))
    return expires is None or expires > datetime.now(UTC)


def _age(stamp: Any) -> float | None:
    moment = _parse_time(stamp)
    return None if moment is None else max(0.0, (datetime.now(UTC) - moment).total_seconds())


def _parse_time(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _queued_cancel_manifest(upload: Upload, request: CancelRequest) -> Manifest:
    """The `cancelled` manifest `lew cancel` writes for a job no worker has started (the worker completes it)."""
    now = datetime.now(UTC)
    manifest = Manifest(
        status=CANCELLED,
        source=Source(upload.bucket, upload.key, upload.etag, upload.version_id, None),
        processor="",
        attempt=0,
        started_at=now,
        finished_at=now,
        error=request.error_record(before_start=True),
    )
    manifest.run = Run(upload.run) if upload.run is not None else None
    return manifest
