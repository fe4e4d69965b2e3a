"""What the orchestrator integrations (lew.dagster, lew.prefect) share: one job per run, packed folders, state logs.

No orchestrator is imported here, so that each integration needs only its own library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from lew.client import TIMED_OUT, Client, JobFinishedError, JobState, Upload
from lew.errors import LewError
from worker.manifest import FAILED, SUCCEEDED

PROGRESS_LOG_SECONDS = 10.0  # progress goes to the run's log at most this often (state changes at once)
# Lines of the processor's output that go to the run's log: the end of it, where a program says how it went.
SUCCESS_LOG_LINES = 5
FAILURE_LOG_LINES = 20


def run_key_name(*parts: str) -> str:
    """The name under the input prefix of one run's upload: its parts joined by `/`, e.g. `dagster/<run>/<op>/x.zip`.

    A key per run, step and attempt makes each of them a job of its own: the same archive materialized twice is
    processed twice (the worker skips only an upload whose ETag already succeeded at that key), an orchestrator's
    retry is never answered by the failure it retries, and two runs never share a results folder.
    Raises LewError for an empty part or one holding `/`.
    """
    for part in parts:
        if not part or "/" in part or part in (".", ".."):
            raise LewError(f"{part!r} cannot name a folder of an upload's key")
    return "/".join(parts)


@contextmanager
def archive_of(path: Path) -> Iterator[Path]:
    """The archive to upload: `path` itself, or a folder zipped as `<folder name>.zip` (deleted afterwards).

    Raises LewError for a missing path or an empty folder. Symbolic links in a folder are stored as the files they
    point to, as `zip -r` does.
    """
    if not path.exists():
        raise LewError(f"{path}: no such file or folder")
    if not path.is_dir():
        yield path
        return
    files = sorted(item for item in path.rglob("*") if item.is_file())
    if not files:
        raise LewError(f"{path}: the folder holds no file to process")
    with tempfile.TemporaryDirectory(prefix="lew-pack-") as scratch:
        archive = Path(scratch) / f"{path.resolve().name}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for item in files:
                bundle.write(item, item.relative_to(path).as_posix())
        yield archive


class StateLog:
    """An `on_update` for Client.wait: logs each change of state at once, progress every PROGRESS_LOG_SECONDS.

    Any status is logged as it comes (queued, running, retrying, ...), with the last failed attempt and its error
    while the job has no outcome yet (`retrying after attempt 1 of 5: KeyError: 'amount'`); `last` is the latest
    state seen.
    """

    def __init__(self, log: Callable[[str], None], *, progress_seconds: float = PROGRESS_LOG_SECONDS) -> None:
        self.log = log
        self.progress_seconds = progress_seconds
        self.status: str | None = None
        self.last: JobState | None = None
        self._shown: tuple[str, str | None, object] | None = None
        self._progress_logged: float | None = None

    def __call__(self, state: JobState) -> None:
        self.last = state
        self.status = state.status
        shown = (state.status, None if state.finished else state.error, state.attempt)
        if shown != self._shown:
            self._shown = shown
            where = f" on {state.task_arn}" if state.task_arn else ""
            why = f": {state.error}" if state.error and not state.finished else ""
            self.log(f"[lew] {state.upload.uri}: {state.status}{_after_attempt(state)}{where}{why}")
        progress = state.progress
        now = time.monotonic()
        if progress is not None and (
            self._progress_logged is None or now - self._progress_logged >= self.progress_seconds
        ):
            self._progress_logged = now
            amount = f"{progress.fraction:.0%}" if progress.fraction is not None else f"{progress.done:g} done"
            message = f" ({progress.message})" if progress.message else ""
            self.log(f"[lew] {state.upload.uri}: {amount}{message}")

    def settled(self, state: JobState) -> JobState:
        """`state`, and for one `wait` gave up on ("timed out") without a reason, the last state seen as its error.

        E.g. `no outcome in time; last retrying after attempt 2 of 5: KeyError: 'amount'`, so that the failure says
        why.
        """
        last = self.last
        if state.status != TIMED_OUT or state.error or last is None or last.status == TIMED_OUT:
            return state
        why = f": {last.error}" if last.error else ""
        return dataclasses.replace(state, error=f"no outcome in time; last {last.status}{_after_attempt(last)}{why}")


def _after_attempt(state: JobState) -> str:
    """` after attempt 1 of 5` for a job between attempts (retrying), else ""."""
    if state.attempt is None or state.finished:
        return ""
    return f" after attempt {state.attempt}" + (f" of {state.max_attempts}" if state.max_attempts else "")


def parameters_line(parameters: Mapping[str, str]) -> str:
    """` with parameters width=320, height=240` for a log line, or "" when there are none."""
    if not parameters:
        return ""
    return " with parameters " + ", ".join(f"{name}={value}" for name, value in parameters.items())


def failure_line(state: JobState) -> str:
    """One line for a job without success: its status and the manifest's error (type: message), or the reason."""
    error = state.error
    document = state.manifest.document if state.manifest is not None else {}
    record = document.get("error")
    if isinstance(record, dict) and record.get("message"):
        error = f"{record.get('type')}: {record.get('message')}"
    return f"lew job {state.upload.uri} {state.status}: {error or 'no reason recorded'}"


def retryable(state: JobState) -> bool:
    """Whether another attempt (a new job) may succeed where this job did not.

    No for a job whose manifest's error is permanent (the processor rejected the input, a bad parameter, an unsafe
    archive), a cancelled one (someone asked) and a dead-lettered one (lew's own retries are spent: fix the cause,
    then `lew redrive`); yes for a failure recorded as transient and for a job that overran the caller's timeout
    (a busy queue).
    """
    if state.status == TIMED_OUT:
        return True
    if state.status != FAILED:
        return False
    record = state.manifest.document.get("error") if state.manifest is not None else None
    return not (isinstance(record, dict) and record.get("permanent") is True)


def processor_log(state: JobState) -> list[str]:
    """The tail of the processor's output that the manifest keeps, as non-blank lines, for the run's log.

    At most SUCCESS_LOG_LINES lines for a job that succeeded (POV-Ray alone prints some 70 lines of statistics) and
    FAILURE_LOG_LINES for one that did not, after a line saying how many more the manifest holds.
    """
    if state.manifest is None:
        return []
    text = state.manifest.document.get("processor_log")
    lines = [line for line in text.splitlines() if line.strip()] if isinstance(text, str) else []
    limit = SUCCESS_LOG_LINES if state.status == SUCCEEDED else FAILURE_LOG_LINES
    if len(lines) <= limit:
        return lines
    where = f"s3://{state.upload.bucket}/{state.manifest.key}"
    skipped = len(lines) - limit
    return [f"processor output: {skipped} earlier lines in the manifest's processor_log ({where})", *lines[-limit:]]


def cancel_quietly(client: Client, upload: Upload, requested_by: str, log: Callable[[str], None]) -> None:
    """Cancel a job that may have just finished: a finished one, or a cancel S3 refuses, is logged, not raised."""
    try:
        client.cancel(upload, requested_by=requested_by)
    except JobFinishedError as finished:
        log(f"[lew] {finished}")
    except (ClientError, BotoCoreError, LewError) as error:
        log(f"[lew] could not cancel {upload.uri}: {error}")


def stop_reason(stopped: BaseException) -> str:
    """What ended a wait without the job's outcome, for the log: `KeyboardInterrupt`, `ClientError: ...`."""
    detail = str(stopped).strip().splitlines()
    return type(stopped).__name__ + (f": {detail[0]}" if detail else "")


@contextmanager
def cancel_on_stop(
    client: Client,
    key_name: str,
    requested_by: str,
    log: Callable[[str], None],
    *,
    shield: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Iterator[None]:
    """Cancel the job of `<input prefix><key_name>` when the block ends with any exception, then re-raise it.

    Covers the upload and the wait: an orchestrator's run that is interrupted (Ctrl-C), terminated or cancelled, or
    that fails while it waits, would otherwise leave its job running unobserved, and a retry would start a second
    one. An exception before the object exists cancels nothing. `shield` is entered around the cancel requests
    (Dagster's `capture_interrupts`, so that the second interrupt a terminated run receives cannot abort them).
    """
    try:
        yield
    except BaseException as stopped:
        with shield():
            try:
                upload = client.upload(f"{client.target.input_prefix}{key_name}")
            except (ClientError, BotoCoreError, LewError):
                upload = None  # nothing stored, or S3 unreachable: no job to cancel that we could reach
            if upload is not None:
                log(f"[lew] the run stopped ({stop_reason(stopped)}): cancelling the job {upload.uri}")
                with contextlib.suppress(Exception):  # what stopped the run is what the caller must see
                    cancel_quietly(client, upload, requested_by, log)
        raise
