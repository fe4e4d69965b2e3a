"""One job, start to finish: idempotency → size check → one streamed GET → unpack → process → publish → manifest."""

from __future__ import annotations

import dataclasses
import enum
import functools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from worker import events
from worker.archive import UnpackLimits, archive_suffix, unpack
from worker.cancel import CancelRequest, cancel_key, clear_cancel, pending_cancel
from worker.claims import CLAIMS_FOLDER, Busy, Claim, HeldClaims, Holder, acquire, claim_key
from worker.commands import read_tail
from worker.errors import (
    ArchiveTooLarge,
    ClaimLost,
    JobAborted,
    JobError,
    ProcessorRejected,
    UnsupportedInput,
    describe_error,
    is_permanent,
    s3_rule,
)
from worker.events import JobEvents
from worker.log import get_logger
from worker.manifest import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    Manifest,
    Source,
    error_record,
    iso_time,
    read_manifest,
    records_cancel,
    records_claim,
    records_success,
    utcnow,
    write_manifest,
)
from worker.messages import Job, event_time
from worker.metadata import TaskIdentity
from worker.parameters import Value, declared_parameters, validate
from worker.paths import MANIFEST_NAME, OUTSIDE_FOLDER, RUNS_FOLDER, folder_name, manifest_key, results_folder
from worker.pipes import PipesRequest, pipes_session
from worker.processors import Processor, ProcessorContext, prepare_output_dir, run_processor
from worker.progress import Progress, read_latest
from worker.publish import open_source, save_body, upload_outputs
from worker.retries import RetryRecord, record_retry, retry_key
from worker.runs import advice_for_run
from worker.settings import Settings
from worker.versions import parse_sequencer, plan, sequencer_to_record
from worker.watch import JobWatch

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


ARCHIVE_STEM = "source"  # the downloaded archive is <job folder>/source<suffix>
PIPES_FOLDER_NAME = ".lew-pipes"  # <job folder>/.lew-pipes: the Pipes context and messages files


class Outcome(enum.Enum):
    """How a job ended, which decides what happens to its message."""

    SUCCEEDED = "succeeded"  # outputs and a success manifest are written: delete
    FAILED = "failed"  # a permanent failure, with a failure manifest: delete
    SKIPPED = "skipped"  # already done for this ETag: delete
    DEFERRED = "deferred"  # another worker holds the claim: hide the message until that job should be over
    RETRY = "retry"  # a transient failure: keep the message, with a backoff
    ABORTED = "aborted"  # the worker is stopping: release the message at once
    DEAD = "dead"  # a permanent failure no manifest can record (bucket gone, results refused): to the DLQ, with reason
    CANCELLED = "cancelled"  # `lew cancel` asked for it: a cancelled manifest is written: delete


@dataclass(frozen=True)
class JobRuntime:
    """What every job needs, built once per process."""

    s3: S3Client
    settings: Settings
    processor: Processor
    identity: TaskIdentity = field(default_factory=TaskIdentity)
    abort: threading.Event = field(default_factory=threading.Event)
    claims: HeldClaims = field(default_factory=HeldClaims)  # the heartbeat refreshes these (pass it to Heartbeat)
    # The work queue's maxReceiveCount (worker/redrive.py): the last allowed attempt dead-letters with its reason.
    max_receive_count: int | None = None
    events: JobEvents = field(default_factory=JobEvents)  # job state-change events (worker/events.py)


@dataclass(frozen=True)
class _CancelKeys:
    """Where a cancelled job's manifest goes, and its cancel marker (deleted once honoured)."""

    manifest: str
    marker: str


@dataclass(frozen=True)
class JobResult:
    """A job's outcome, and the error behind it if any."""

    outcome: Outcome
    error: BaseException | None = None
    claim_remaining: float | None = None  # DEFERRED: the seconds left on the other worker's claim
    reason: str | None = None  # RETRY, DEAD: one line saying what failed and what to do (the DLQ's reason)


def run_job(job: Job, attempt: int, runtime: JobRuntime, *, message_id: str = "") -> JobResult:
    """Run one job and write its manifest; never raises for a job's own failure (the outcome says what happened)."""
    settings = runtime.settings
    logger = get_logger()
    run_id = _run_id(job)
    folder = folder_name(job.key, settings.input_prefix, run_id)
    holder = Holder(
        message_id=message_id,
        task_arn=runtime.identity.task_arn,
        etag=job.etag,
        version_id=job.version_id,
        key=job.key,
    )
    manifest = manifest_key(job.key, settings.input_prefix, settings.result_prefix, run_id)
    claim = claim_key(settings.result_prefix, folder)

    def finished(nonce: str) -> bool:
        # Asked only about an existing claim: a job that wrote its manifest leaves its claim, named in it, behind.
        return records_claim(read_manifest(runtime.s3, job.bucket, manifest), nonce)

    try:
        acquired = acquire(
            runtime.s3,
            job.bucket,
            claim,
            holder,
            settings.visibility_timeout,
            abort=runtime.abort,
            finished=finished,
        )
    except JobAborted as error:
        logger.warning("job aborted", extra={"error": str(error)})
        return JobResult(Outcome.ABORTED, error, reason=f"the worker stopped before the job could start: {error}")
    except Exception as error:  # noqa: BLE001 - without a claim the job must not run; retried, never lost
        reason = describe_error(error, f"claim s3://{job.bucket}/{claim}")
        if is_permanent(error):
            # The claim is the first write under RESULT_PREFIX: refused for good, no manifest could be written either.
            logger.warning("could not claim the upload, for good: dead-lettering the message", extra={"error": reason})
            return JobResult(Outcome.DEAD, error, reason=reason)
        logger.warning(_kept("could not claim the upload", runtime, attempt), extra={"error": reason})
        return JobResult(Outcome.RETRY, error, reason=reason)
    if isinstance(acquired, Busy):
        logger.info(
            "another worker is processing this upload: deferring the message",
            extra={"claim_remaining": round(acquired.remaining, 1), **acquired.holder},
        )
        other = acquired.holder
        reason = (
            f"another worker (task {other.get('holder_task_arn')}, message {other.get('holder_message_id')}) "
            f"held the claim s3://{job.bucket}/{claim}"
        )
        return JobResult(Outcome.DEFERRED, claim_remaining=acquired.remaining, reason=reason)
    runtime.claims.add(acquired)
    try:
        return _run_claimed(job, attempt, runtime, acquired, folder, message_id=message_id)
    finally:
        # Deleted after a skip, a retry or an abort; left in place when the manifest written names it.
        runtime.claims.release(acquired)


def _run_claimed(  # noqa: PLR0911 - one return per way a job ends, each with its reason next to it
    job: Job, attempt: int, runtime: JobRuntime, claim: Claim, folder: str, *, message_id: str
) -> JobResult:
    settings = runtime.settings
    logger = get_logger()
    folder_key = results_folder(job.key, settings.input_prefix, settings.result_prefix, _run_id(job))
    manifest_key = folder_key + MANIFEST_NAME
    marker_key = cancel_key(settings.result_prefix, folder)
    keys = _CancelKeys(manifest=manifest_key, marker=marker_key)
    started_at = utcnow()
    timings: dict[str, float] = {}
    ignored: list[dict[str, str]] = []  # members unpack left out: in the failure manifest too, if a later phase fails
    source = Source(job.bucket, job.key, job.etag, job.version_id, job.size, parse_sequencer(job.sequencer))
    watch = JobWatch(
        s3=runtime.s3,
        job=job,
        claim=claim,
        cancel_key=marker_key,
        events=runtime.events,
        abort=runtime.abort,
        attempt=attempt,
        message_id=message_id,
    )
    emit = functools.partial(runtime.events.emit, job=job, attempt=attempt, message_id=message_id)
    parameters: dict[str, Value] | None = None  # validated after the GET: in every event from then on
    try:
        # Read under the claim: a duplicate whose job finished a moment ago is seen here, not processed again.
        existing = read_manifest(runtime.s3, job.bucket, manifest_key)
        versions = plan(job, existing)
        if versions.skip is not None:
            logger.info("an older version's event: skipping", extra={"manifest": manifest_key, "why": versions.skip})
        # A processor that takes parameters decides about a skip after the GET, which says what the upload carries:
        # the same bytes uploaded again with other parameters have the same ETag (in an unversioned bucket), and
        # are a new job, not a duplicate.
        takes_parameters = bool(declared_parameters(runtime.processor))
        done = _run_over(job, existing, manifest_key) or (
            not takes_parameters and _done_before(job, existing, job.etag, job.version_id, manifest_key)
        )
        if versions.skip is not None or done:
            emit(events.SKIPPED, manifest_key=manifest_key)
            return JobResult(Outcome.SKIPPED)
        cancelled = _cancelled_before_start(job, attempt, runtime, claim, existing, source=source, keys=keys)
        if cancelled is not None:
            return cancelled
        emit(events.STARTED)
        # An input that is not an archive costs no GET at all.
        suffix = _check_input(source, folder, settings)
        with _job_folder() as job_dir, watch.running():
            archive = job_dir / f"{ARCHIVE_STEM}{suffix}"
            _check_abort(runtime, claim, watch)
            with (
                _timed(timings, "download"),
                open_source(runtime.s3, job, pin_version=versions.pin_version) as opened,
            ):
                # From here on the manifest records the object the GET answered with, not the message's view of it.
                source = dataclasses.replace(opened.source, sequencer=sequencer_to_record(opened.source, job, existing))
                if _done_before(
                    job, existing, source.etag, source.version_id, manifest_key, parameters=source.parameters
                ):
                    emit(events.SKIPPED, manifest_key=manifest_key)
                    return JobResult(Outcome.SKIPPED)
                # The object was replaced since the message was sent (no version id to pin, or no sequencer to order
                # by: worker/versions.py): the current object is processed and its own ETag recorded. The newer
                # upload's message then finds a success for its ETag and skips: each version is processed at most once.
                _check_size(source, settings)  # before a byte of the body is read
                pipes = PipesRequest.from_metadata(opened.metadata, job.bucket, settings.result_prefix)
                # Also before the body: a bad parameter costs no download. InvalidParameter is permanent.
                parameters = watch.parameters = validate(
                    runtime.processor.name, declared_parameters(runtime.processor), dict(source.parameters or ())
                )
                save_body(opened, archive)
            manifest = _process(
                job,
                attempt,
                runtime,
                claim,
                source=source,
                archive=archive,
                folder_key=folder_key,
                timings=timings,
                ignored=ignored,
                watch=watch,
                pipes=pipes,
                parameters=parameters,
            )
        manifest.started_at, manifest.finished_at = started_at, utcnow()
        manifest.timings["total"] = (manifest.finished_at - started_at).total_seconds()
        _write_claimed_manifest(runtime.s3, job, manifest_key, manifest, claim)
        logger.info("job succeeded", extra={"manifest": manifest_key, "outputs": len(manifest.outputs)})
        emit(
            events.SUCCEEDED,
            manifest_key=manifest_key,
            outputs=len(manifest.outputs),
            durations=manifest.timings,
            parameters=parameters,
        )
        return JobResult(Outcome.SUCCEEDED)
    except JobAborted as error:
        if watch.cancel_request is not None:
            return _settle_cancel(
                job,
                attempt,
                runtime,
                claim,
                source=source,
                keys=keys,
                started_at=started_at,
                request=watch.cancel_request,
                timings=timings,
                parameters=parameters,
            )
        logger.warning("job aborted: the worker is stopping", extra={"error": str(error)})
        return JobResult(Outcome.ABORTED, error, reason=f"the worker stopped during the job: {error}")
    except ClaimLost as error:
        logger.warning("job stopped: another worker took over its claim", extra={"error": str(error)})
        return JobResult(
            Outcome.DEFERRED, error, claim_remaining=float(settings.visibility_timeout), reason=f"claim lost: {error}"
        )
    except Exception as error:  # noqa: BLE001 - every failure is classified; unknown ones are retried, not lost
        return _settle_failure(
            job,
            attempt,
            runtime,
            claim,
            source=source,
            manifest_key=manifest_key,
            started_at=started_at,
            timings=timings,
            ignored=ignored,
            error=error,
            message_id=message_id,
            parameters=parameters,
        )


def _cancelled_before_start(
    job: Job,
    attempt: int,
    runtime: JobRuntime,
    claim: Claim,
    existing: dict[str, Any] | None,
    *,
    source: Source,
    keys: _CancelKeys,
) -> JobResult | None:
    """The outcome of a queued job that `lew cancel` cancelled, or None when it was not cancelled.

    `lew cancel` writes the cancelled manifest of a queued job itself, so this check rides on the manifest the
    worker reads anyway: no request is spent on the happy path. The marker (read only in this rare case) says who
    asked; without one, the cancel was already settled and this delivery is a duplicate: a skip.
    """
    # A run's manifest is its own (one folder per run): a cancelled one is this run's, whatever the object's ETag.
    if job.run is not None:
        if job.rerun or not existing or existing.get("status") != CANCELLED:
            return None
    elif job.rerun or not records_cancel(existing, job.etag, job.version_id):
        return None
    if _uploaded_after(job, existing):
        # The same bytes uploaded again after the cancel (an unversioned bucket gives them the same ETag): a new
        # upload, which runs; only a redelivery of the cancelled upload's own event is a skip.
        get_logger().info("uploaded again after a cancel: running it", extra={"manifest": keys.manifest})
        return None
    request = pending_cancel(runtime.s3, job.bucket, keys.marker, job.etag, job.version_id)
    if request is None:
        get_logger().info("this upload was cancelled: skipping", extra={"manifest": keys.manifest})
        runtime.events.emit(
            events.SKIPPED, job, attempt=attempt, message_id=claim.holder.message_id, manifest_key=keys.manifest
        )
        return JobResult(Outcome.SKIPPED)
    return _settle_cancel(job, attempt, runtime, claim, source=source, keys=keys, started_at=utcnow(), request=request)


def _uploaded_after(job: Job, manifest: dict[str, Any] | None) -> bool:
    """True when the job's event says the object was created after the manifest's job finished.

    Times are S3's (eventTime) and the writer's clock (finished_at, whole seconds): an upload within the second of
    its cancel counts as the cancelled one.
    """
    finished = event_time((manifest or {}).get("finished_at"))
    return job.event_time is not None and finished is not None and job.event_time >= finished + timedelta(seconds=1)


def _settle_cancel(
    job: Job,
    attempt: int,
    runtime: JobRuntime,
    claim: Claim,
    *,
    source: Source,
    keys: _CancelKeys,
    started_at: datetime,
    request: CancelRequest,
    timings: dict[str, float] | None = None,
    parameters: Mapping[str, Value] | None = None,
) -> JobResult:
    """Write the cancelled manifest, delete the marker; the message is then deleted (retried if the write fails)."""
    logger = get_logger()
    manifest_key, marker_key = keys.manifest, keys.marker
    timings = dict(timings or {})
    error = request.error_record()
    manifest = _ended_manifest(
        CANCELLED, attempt, runtime, source=source, started_at=started_at, timings=timings, error=error
    )
    try:
        if records_success(read_manifest(runtime.s3, job.bucket, manifest_key), source.etag, source.version_id):
            logger.info("a success manifest exists for this ETag: not overwriting it with a cancellation")
        else:
            _write_claimed_manifest(runtime.s3, job, manifest_key, manifest, claim)
    except Exception as write_error:  # noqa: BLE001 - without its manifest the cancel is retried, not lost
        reason = describe_error(write_error, f"write s3://{job.bucket}/{manifest_key}")
        logger.warning("could not write the cancelled manifest; will retry", extra={"error": reason})
        return JobResult(Outcome.RETRY, write_error, reason=f"cancelled, but the manifest failed: {reason}")
    clear_cancel(runtime.s3, job.bucket, marker_key)
    logger.warning("job cancelled", extra={"manifest": manifest_key, "requested_at": request.requested_at})
    runtime.events.emit(
        events.CANCELLED,
        job,
        attempt=attempt,
        message_id=claim.holder.message_id,
        manifest_key=manifest_key,
        error=error,
        durations=timings,
        parameters=parameters,
    )
    return JobResult(Outcome.CANCELLED)


def _run_id(job: Job) -> str | None:
    return job.run.id if job.run is not None else None


def _run_over(job: Job, existing: dict[str, Any] | None, key: str) -> bool:
    """True when this job is a scheduled run whose manifest already records its outcome: a redelivery, skipped.

    A run's folder is its own, so any success or failure there is this run's (a cancelled one is settled by
    `_cancelled_before_start`, which also clears its marker). Another run, or an upload of the same key, never
    makes a run a skip.
    """
    if job.run is None or not existing or existing.get("status") not in (SUCCEEDED, FAILED):
        return False
    if job.rerun:
        get_logger().info("re-run requested: running this scheduled run again", extra={"manifest": key})
        return False
    get_logger().info("this scheduled run already has its outcome: skipping", extra={"manifest": key})
    return True


def _done_before(
    job: Job,
    existing: dict[str, object] | None,
    etag: str | None,
    version: str | None,
    key: str,
    *,
    parameters: tuple[tuple[str, str], ...] | None = None,
) -> bool:
    """True when the manifest records a success for this ETag (and version, and job parameters when they are known):
    a skip, unless a re-run is asked for."""
    if not records_success(existing, etag, version, parameters):
        return False
    if job.rerun:
        get_logger().info("re-run requested: processing again what the manifest records", extra={"manifest": key})
        return False
    get_logger().info("already processed: skipping", extra={"manifest": key, "etag": etag})
    return True


def _check_input(source: Source, folder: str, settings: Settings) -> str:
    """The archive suffix; a permanent failure when the key has none or its folder is one of the reserved ones."""
    if folder == CLAIMS_FOLDER.rstrip("/"):
        raise UnsupportedInput(
            f"{source.key} would put its results in {settings.result_prefix}{CLAIMS_FOLDER}, the worker's claims folder"
        )
    if folder == OUTSIDE_FOLDER:
        raise UnsupportedInput(
            f"{source.key} would put its results in {settings.result_prefix}{OUTSIDE_FOLDER}/, the folder of the "
            "results of keys outside INPUT_PREFIX"
        )
    if folder == RUNS_FOLDER:
        raise UnsupportedInput(
            f"{source.key} would put its results in {settings.result_prefix}{RUNS_FOLDER}/, the folder of the "
            "results of scheduled runs"
        )
    suffix = archive_suffix(source.key)
    if suffix is None:
        raise UnsupportedInput(f"{source.key} is not a .zip, .tar, .tar.gz or .tgz archive")
    # The size is not judged from the message: a late message about a replaced object carries the old size, and a
    # failure manifest written from it could replace the newer object's success. The GET's Content-Length decides.
    return suffix


def _check_size(source: Source, settings: Settings) -> None:
    if source.size is not None and source.size > settings.max_archive_bytes:
        raise ArchiveTooLarge(f"{source.size} bytes is more than MAX_ARCHIVE_BYTES ({settings.max_archive_bytes})")


def _process(
    job: Job,
    attempt: int,
    runtime: JobRuntime,
    claim: Claim,
    *,
    source: Source,
    archive: Path,
    folder_key: str,
    timings: dict[str, float],
    ignored: list[dict[str, str]],
    watch: JobWatch,
    pipes: PipesRequest | None = None,
    parameters: Mapping[str, Value] | None = None,
) -> Manifest:
    """Unpack the downloaded archive, run the processor, upload its outputs; the manifest to write."""
    settings = runtime.settings
    job_dir = archive.parent
    suffix = archive.name.removeprefix(ARCHIVE_STEM)
    input_dir = job_dir / "input"
    input_dir.mkdir()
    _check_abort(runtime, claim, watch)
    with _timed(timings, "unpack"):
        limits = UnpackLimits(max_members=settings.max_members, max_unpacked_bytes=settings.max_unpacked_bytes)
        unpacked = unpack(archive, input_dir, limits, suffix=suffix)
        archive.unlink()  # the disk is shared by the archive and what it unpacks to: free it early
    ignored.extend(member.to_dict() for member in unpacked.ignored)
    get_logger().info("unpacked", extra={"members": len(unpacked.members), "ignored": len(ignored)})
    output_dir = prepare_output_dir(input_dir, settings.output_dir)  # after unpack: the archive may hold it
    _check_abort(runtime, claim, watch)
    context = ProcessorContext(
        job=job,
        archive_name=PurePosixPath(job.key).name[: -len(suffix)],
        input_dir=input_dir,
        output_dir=output_dir,
        job_dir=job_dir,
        timeout=settings.job_timeout,
        cancel=watch.interrupt,  # set by the worker's stop or by a cancel request
        parameters=dict(parameters or {}),
    )
    watch.read_progress_with(_progress_reader(context, runtime.processor))
    # A job started from Dagster gives its processor a Pipes session (worker/pipes.py), outside its folders.
    with _timed(timings, "process"), pipes_session(runtime.s3, pipes, job_dir / PIPES_FOLDER_NAME) as environment:
        result = run_processor(runtime.processor, dataclasses.replace(context, environment=environment))
    watch.read_progress_with(None)
    _check_abort(runtime, claim, watch)
    with _timed(timings, "upload"):
        bases = (output_dir, input_dir, job_dir)
        _check_outputs(result.outputs, bases)
        outputs = upload_outputs(runtime.s3, job.bucket, folder_key, result.outputs, bases)
    return Manifest(
        status=SUCCEEDED,
        source=source,
        processor=runtime.processor.name,
        attempt=attempt,
        started_at=utcnow(),
        finished_at=utcnow(),
        outputs=outputs,
        timings=timings,
        task_arn=runtime.identity.task_arn,
        log_stream=runtime.identity.log_stream,
        processor_log=result.log,
        ignored=ignored,
        warnings=list(result.warnings),
    )


def _kept(what: str, runtime: JobRuntime, attempt: int) -> str:
    """The log line of a job whose message is kept: retried, or on its last allowed attempt dead-lettered.

    worker/dispatch.py moves a message kept on attempt maxReceiveCount to the DLQ: promising a retry would be wrong.
    """
    limit = runtime.max_receive_count
    if limit is not None and attempt >= limit:
        return f"{what} on its last allowed attempt; the message goes to the DLQ"
    return f"{what}; it will be retried"


def _settle_failure(
    job: Job,
    attempt: int,
    runtime: JobRuntime,
    claim: Claim,
    *,
    source: Source,
    manifest_key: str,
    started_at: datetime,
    timings: dict[str, float],
    ignored: list[dict[str, str]],
    error: Exception,
    message_id: str = "",
    parameters: Mapping[str, Value] | None = None,
) -> JobResult:
    logger = get_logger()
    reason = describe_error(error, f"a request of the job of s3://{job.bucket}/{job.key}")
    if not is_permanent(error):
        said = _kept("job failed", runtime, attempt)
        if isinstance(error, JobError):
            logger.warning(said, extra={"error": str(error), "type": type(error).__name__})
        else:
            logger.exception(said, extra={"type": type(error).__name__, "error": reason})
        _record_retry(job, attempt, runtime, source, reason)
        runtime.events.emit(
            events.RETRYING,
            job,
            attempt=attempt,
            message_id=message_id,
            error=error,
            durations=timings,
            parameters=parameters,
        )
        return JobResult(Outcome.RETRY, error, reason=reason)
    logger.warning("job failed permanently", extra={"error": str(error), "type": type(error).__name__})
    manifest = _ended_manifest(
        FAILED,
        attempt,
        runtime,
        source=source,
        started_at=started_at,
        timings=timings,
        error=error_record(error, permanent=True),
        processor_log=error.processor_log if isinstance(error, JobError) else None,
        ignored=ignored,
    )
    if manifest.error is not None and s3_rule(error) is not None:
        manifest.error["message"] = reason  # botocore's words, plus what the code means and what to do
    if manifest.error is not None and job.run is not None:
        manifest.error["message"] = advice_for_run(str(manifest.error["message"]), job.key, job.run.id)
    try:
        # Another delivery of the same upload may have succeeded meanwhile: never hide its results.
        # Parameters are compared when the GET read them: a success for other parameters is not this job's.
        existing = read_manifest(runtime.s3, job.bucket, manifest_key)
        if records_success(existing, source.etag, source.version_id, source.parameters):
            logger.info("a success manifest exists for this ETag: not overwriting it with a failure")
        else:
            _write_claimed_manifest(runtime.s3, job, manifest_key, manifest, claim)
    except Exception as write_error:  # noqa: BLE001 - without its manifest the failure must be retried, not deleted
        unwritten = describe_error(write_error, f"write s3://{job.bucket}/{manifest_key}")
        if is_permanent(write_error):
            # Bucket gone, results refused: no manifest can ever tell the uploader, so the DLQ's reason must.
            logger.warning("could not write the failure manifest, for good: dead-lettering", extra={"error": unwritten})
            return JobResult(Outcome.DEAD, write_error, reason=f"{reason}; and no manifest could say so: {unwritten}")
        logger.warning("could not write the failure manifest; will retry", extra={"error": unwritten})
        runtime.events.emit(
            events.RETRYING,
            job,
            attempt=attempt,
            message_id=message_id,
            error=write_error,
            durations=timings,
            parameters=parameters,
        )
        return JobResult(Outcome.RETRY, write_error, reason=f"{reason}; and the failure manifest failed: {unwritten}")
    runtime.events.emit(
        events.FAILED,
        job,
        attempt=attempt,
        message_id=message_id,
        manifest_key=manifest_key,
        outputs=0,
        error=manifest.error,
        durations=timings,
        parameters=parameters,
    )
    return JobResult(Outcome.FAILED, error)


def _ended_manifest(
    status: str,
    attempt: int,
    runtime: JobRuntime,
    *,
    source: Source,
    started_at: datetime,
    timings: dict[str, float],
    error: dict[str, Any],
    processor_log: str | None = None,
    ignored: list[dict[str, str]] | None = None,
) -> Manifest:
    """The manifest of a job that ends with an error and no outputs (failed, cancelled): who ran it, when, for how long.

    Sets `timings["total"]` in place: the manifest keeps that dict, and the caller's job event reports it too.
    """
    finished_at = utcnow()
    timings["total"] = (finished_at - started_at).total_seconds()
    return Manifest(
        status=status,
        source=source,
        processor=runtime.processor.name,
        attempt=attempt,
        started_at=started_at,
        finished_at=finished_at,
        timings=timings,
        task_arn=runtime.identity.task_arn,
        log_stream=runtime.identity.log_stream,
        processor_log=processor_log,
        error=error,
        ignored=ignored if ignored is not None else [],
    )


def _record_retry(job: Job, attempt: int, runtime: JobRuntime, source: Source, error: str) -> None:
    """Leave the retry record that `lew wait` shows while the message waits for its next attempt (worker/retries.py)."""
    settings = runtime.settings
    folder = folder_name(job.key, settings.input_prefix, _run_id(job))
    record = RetryRecord(
        etag=source.etag,
        version_id=source.version_id,
        attempt=attempt,
        max_attempts=runtime.max_receive_count,
        error=error,
        at=iso_time(utcnow()),
    )
    record_retry(runtime.s3, job.bucket, retry_key(settings.result_prefix, folder), record)


def _write_claimed_manifest(s3: S3Client, job: Job, key: str, manifest: Manifest, claim: Claim) -> None:
    """Write the manifest naming the claim: once it is written, the claim is left for the next job to take over."""
    manifest.claim = claim.nonce
    manifest.run = job.run
    write_manifest(s3, job.bucket, key, manifest)
    claim.recorded = True


def _check_outputs(outputs: tuple[Path, ...], bases: tuple[Path, ...]) -> None:
    for base in bases[:2]:
        if base / MANIFEST_NAME in outputs:
            raise ProcessorRejected(f"an output is named {MANIFEST_NAME}, which would be replaced by the manifest")


def _progress_reader(context: ProcessorContext, processor: Processor) -> Callable[[], Progress | None]:
    """The job's latest progress: its LEW_PROGRESS file, else what the processor reads from its own output."""
    from_log = getattr(processor, "progress_from_log", None)

    def latest() -> Progress | None:
        reported = read_latest(context.progress_file)
        if reported is None and callable(from_log):
            found = from_log(read_tail(context.log_path))
            return found if isinstance(found, Progress) else None
        return reported

    return latest


def _check_abort(runtime: JobRuntime, claim: Claim, watch: JobWatch | None = None) -> None:
    if watch is not None and watch.cancelled:
        raise JobAborted("the job was cancelled")
    if runtime.abort.is_set():
        raise JobAborted("the stop grace period is over")
    if claim.lost:
        raise ClaimLost(f"s3://{claim.bucket}/{claim.key} now belongs to another worker")


@contextmanager
def _job_folder() -> Iterator[Path]:
    # Under TMPDIR (the task's scratch volume: the container's root file system is read-only).
    folder = Path(tempfile.mkdtemp(prefix="lew-job-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[phase] = time.monotonic() - started
