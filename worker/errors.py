"""Job failures, and the rules that say which are permanent (settle now) and which are transient (retry)."""

# ruff: noqa: N818 - these names are the `error.type` of failure manifests: short and plain, like UnsafeArchive

from __future__ import annotations

from dataclasses import dataclass

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from worker.archive import ArchiveError

# S3 answers for an object that no longer exists (or a bucket that does not): retrying cannot help.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "NotFound"})


@dataclass(frozen=True)
class S3Rule:
    """What an S3 error code means for a job: permanent or not, and what the uploader (or operator) should do."""

    permanent: bool
    meaning: str
    action: str


_RETRY = "nothing: the job is retried with backoff"
_GRANT = "grant the worker's task role access (or fix the bucket policy), then `lew rerun KEY`"
# The classification table of docs/worker.md ("S3 answers"): keep the two in step. Codes missing here are transient
# (`S3_UNKNOWN`): an unknown answer is retried, and on the last allowed attempt dead-lettered with it as the reason.
S3_RULES: dict[str, S3Rule] = {
    "NoSuchBucket": S3Rule(True, "the bucket does not exist", "check the bucket the event names; upload again"),
    "NoSuchKey": S3Rule(True, "the object was deleted before the worker got to it", "upload it again"),
    "404": S3Rule(True, "the object was deleted before the worker got to it", "upload it again"),
    "NotFound": S3Rule(True, "the object was deleted before the worker got to it", "upload it again"),
    "NoSuchVersion": S3Rule(True, "the object version was deleted before the worker got to it", "upload it again"),
    "InvalidObjectState": S3Rule(
        True,
        "the object is archived (GLACIER or DEEP_ARCHIVE storage class, or an Intelligent-Tiering archive tier)",
        "restore the object first (aws s3api restore-object), then `lew rerun KEY`",
    ),
    "AccessDenied": S3Rule(True, "access denied", _GRANT),
    "403": S3Rule(True, "access denied", _GRANT),
    "AllAccessDisabled": S3Rule(True, "all access to this object has been disabled", "contact AWS Support"),
    "InvalidRequest": S3Rule(
        True,
        "S3 refused the request as invalid (for example an object encrypted with a customer-provided key, SSE-C)",
        "upload it without SSE-C",
    ),
    "InternalError": S3Rule(False, "an S3 server error", _RETRY),
    "500": S3Rule(False, "an S3 server error", _RETRY),
    "ServiceUnavailable": S3Rule(False, "S3 is unavailable", _RETRY),
    "503": S3Rule(False, "S3 is unavailable", _RETRY),
    "SlowDown": S3Rule(False, "S3 asks to slow down (request rate)", _RETRY),
    "Throttling": S3Rule(False, "throttled", _RETRY),
    "ThrottlingException": S3Rule(False, "throttled", _RETRY),
    "RequestLimitExceeded": S3Rule(False, "throttled", _RETRY),
    "TooManyRequests": S3Rule(False, "throttled", _RETRY),
    "RequestTimeout": S3Rule(False, "the connection idled past S3's timeout", _RETRY),
    "RequestTimeTooSkewed": S3Rule(False, "the worker's clock is off", _RETRY),
    "ExpiredToken": S3Rule(False, "the task role's credentials expired", _RETRY),
    "OperationAborted": S3Rule(False, "a conflicting operation is in progress", _RETRY),
}
# SSE-KMS: S3 answers `KMS.<KMS error>` when it cannot use the object's (or the bucket's default) key.
KMS_TRANSIENT = frozenset(
    {
        "KMS.ThrottlingException",
        "KMS.LimitExceededException",
        "KMS.KMSInternalException",
        "KMS.DependencyTimeoutException",
    }
)
KMS_RULE = S3Rule(
    True,
    "S3 cannot use the KMS key the object (or the bucket's default encryption) is encrypted with",
    "enable the key, or allow the worker's task role kms:Decrypt and kms:GenerateDataKey on it, then `lew rerun KEY`",
)
KMS_TRANSIENT_RULE = S3Rule(False, "KMS is throttling or failing for now", _RETRY)
S3_UNKNOWN = S3Rule(False, "an unexpected S3 answer", _RETRY)
CONNECTION_RULE = S3Rule(False, "no answer from S3 (connection error or timeout, after botocore's retries)", _RETRY)


def s3_cause(error: BaseException) -> BaseException:
    """The S3 error behind an exception: boto3's upload_file wraps a ClientError in an S3UploadFailedError."""
    if isinstance(error, S3UploadFailedError) and isinstance(error.__context__, ClientError | BotoCoreError):
        return error.__context__
    return error


def s3_rule(error: BaseException) -> S3Rule | None:
    """The table's rule for an S3 error (a ClientError or a connection error), or None for other exceptions."""
    error = s3_cause(error)
    if isinstance(error, BotoCoreError):
        return CONNECTION_RULE
    if not isinstance(error, ClientError):
        return None
    code = error_code(error)
    if code.startswith("KMS."):
        return KMS_TRANSIENT_RULE if code in KMS_TRANSIENT else KMS_RULE
    rule = S3_RULES.get(code)
    if code in ("AccessDenied", "403") and "kms" in str(error).lower():
        return KMS_RULE  # denied the key, not the object: the message names kms:Decrypt
    if rule is None and str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")).startswith("5"):
        return S3_RULES["InternalError"]
    return rule or S3_UNKNOWN


def describe_s3_error(error: BaseException, what: str) -> str:
    """One line for an S3 error: what was asked, the code, what it means, and what to do."""
    rule = s3_rule(error) or S3_UNKNOWN
    error = s3_cause(error)
    code = error_code(error) if isinstance(error, ClientError) else type(error).__name__
    storage_class = error.response.get("Error", {}).get("StorageClass") if isinstance(error, ClientError) else None
    meaning = f"storage class {storage_class}: {rule.meaning}" if storage_class else rule.meaning
    return f"{what}: S3 answered {code} ({meaning}); to do: {rule.action}"


class JobError(Exception):
    """A job failed for a reason we understand; `permanent` decides whether a retry could help."""

    permanent = True

    def __init__(self, message: str, *, processor_log: str | None = None) -> None:
        super().__init__(message)
        self.processor_log = processor_log


class SourceGone(JobError):
    """The uploaded object was deleted (or its bucket) before the worker got to it."""


class SourceArchived(JobError):
    """The object is in an archived storage class (GLACIER, DEEP_ARCHIVE): the GET answers InvalidObjectState."""


class SourceUnreadable(JobError):
    """S3 refuses the worker the object for good (access denied, a KMS key it may not use, SSE-C...)."""


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
    rule = s3_rule(error)
    return rule is not None and rule.permanent


def describe_error(error: BaseException, what: str) -> str:
    """One line for any job error: the S3 table's words for an S3 error, else its type and message."""
    if s3_rule(error) is not None:
        return describe_s3_error(error, what)
    return f"{type(error).__name__}: {error}"


def error_code(error: ClientError) -> str:
    """The error code of a botocore ClientError ('' when there is none)."""
    return str(error.response.get("Error", {}).get("Code", ""))
