"""Job failures, and the one rule that says which are permanent (settle now) and which are transient (retry)."""

# ruff: noqa: N818 - these names are the `error.type` of failure manifests: short and plain, like UnsafeArchive

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from worker.archive import ArchiveError

# S3 answers for an object that no longer exists (or a bucket that does not): retrying cannot help.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "NotFound"})


class JobError(Exception):
    """A job failed for a reason we understand; `permanent` decides whether a retry could help."""

    permanent = True

    def __init__(self, message: str, *, processor_log: str | None = None) -> None:
        super().__init__(message)
        self.processor_log = processor_log


class SourceGone(JobError):
    """The uploaded object was deleted (or its bucket) before the worker got to it."""


class ArchiveTooLarge(JobError):
    """The object is bigger than MAX_ARCHIVE_BYTES."""


class IncompleteDownload(JobError):
    """The archive's body ended short of its Content-Length: a broken connection, so another attempt may pass."""

    permanent = False


class ResultKeyTooLong(JobError):
    """A result key would be longer than S3's 1024-byte limit, so the result cannot be stored under its name."""


class UnsupportedInput(JobError):
    """The key has no archive suffix the worker can unpack."""


class ProcessorRejected(JobError):
    """The processor says the input is bad (exit code 3, a scene that does not parse, no outputs)."""


class ProcessorTimeout(JobError):
    """The processor ran past JOB_TIMEOUT and its process tree was killed.

    Permanent on purpose: a job that overran once will overrun again, and retrying it maxReceiveCount
    times would burn hours of compute before the uploader learns anything. The failure manifest says why.
    """


class ProcessorRetry(JobError):
    """The processor failed in a way that may pass on another attempt (command exit codes other than 0 and 3)."""

    permanent = False


class JobAborted(Exception):
    """The worker is stopping and the job could not finish within STOP_GRACE_SECONDS."""


class ClaimLost(Exception):
    """Another worker took over this job's claim (it went unrefreshed for a whole lease): stop, let that one finish."""


def is_permanent(error: BaseException) -> bool:
    """True when retrying the job cannot help; unknown errors are transient, so that nothing is lost."""
    if isinstance(error, JobError):
        return error.permanent
    if isinstance(error, ArchiveError):
        return True
    if isinstance(error, ClientError):
        return error_code(error) in GONE_CODES
    if isinstance(error, BotoCoreError):
        return False  # connection errors, timeouts, retries exhausted
    return False


def error_code(error: ClientError) -> str:
    """The error code of a botocore ClientError ('' when there is none)."""
    return str(error.response.get("Error", {}).get("Code", ""))
