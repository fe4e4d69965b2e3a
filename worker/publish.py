"""Move bytes between S3 and the job's folder: one streamed GET per archive, multipart uploads with a content type."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from worker.errors import (
    GONE_CODES,
    IncompleteDownload,
    ResultKeyTooLong,
    SourceArchived,
    SourceGone,
    SourceUnreadable,
    describe_s3_error,
    error_code,
    s3_rule,
)
from worker.manifest import Output, Source
from worker.messages import Job, normalise_etag
from worker.parameters import parameters_from_metadata
from worker.paths import S3_KEY_LIMIT_BYTES, key_fits

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
# Big enough that the per-chunk Python overhead vanishes next to the copy, small enough that memory stays flat.
DOWNLOAD_CHUNK_BYTES = MIB
# Parts of 16 MiB: few requests for large renders, and a bounded amount of memory in flight.
TRANSFER_CONFIG = TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4)
EXTRA_TYPES = {".pov": "text/plain", ".ini": "text/plain", ".inc": "text/plain", ".log": "text/plain"}


@dataclass(frozen=True)
class OpenedSource:
    """An answered GET of a job's archive: what the object is, and its body, not read yet."""

    source: Source
    body: StreamingBody
    metadata: dict[str, str] = field(default_factory=dict)  # the object's user metadata (x-amz-meta-*)


@contextmanager
def open_source(s3: S3Client, job: Job, *, pin_version: bool = True) -> Iterator[OpenedSource]:
    """GET the job's object; the body is closed on exit, read or not.

    With `pin_version` the GET names the message's versionId (when it has one), otherwise it gets the current version
    (worker/versions.py decides). The answer's headers say what a HEAD would (ETag, version, size), so no HEAD is
    made. S3 errors the table of worker/errors.py calls permanent become SourceGone, SourceArchived or
    SourceUnreadable, whose message says what to do; transient ones are raised as they are.
    The job's parameters come from the same answer's user metadata (worker/parameters.py): no request of their own.
    """
    args: dict[str, Any] = {"Bucket": job.bucket, "Key": job.key}
    if job.version_id and pin_version:
        args["VersionId"] = job.version_id
    try:
        answer = s3.get_object(**args)
    except ClientError as error:
        raise _source_error(error, job) from error
    body = answer["Body"]
    try:
        source = Source(
            bucket=job.bucket,
            key=job.key,
            etag=normalise_etag(answer.get("ETag")),
            version_id=answer.get("VersionId") or (job.version_id if pin_version else None),
            size=answer.get("ContentLength"),
            parameters=tuple(parameters_from_metadata(answer.get("Metadata") or {}).items()),
        )
        yield OpenedSource(source, body, dict(answer.get("Metadata") or {}))
    finally:
        # Unread, this drops the connection instead of draining gigabytes nobody wants.
        body.close()


def _source_error(error: ClientError, job: Job) -> Exception:
    """The job error for a refused GET of the upload (or the ClientError itself when a retry may pass)."""
    rule = s3_rule(error)
    if rule is None or not rule.permanent:
        return error
    message = describe_s3_error(error, f"GET s3://{job.bucket}/{job.key}")
    code = error_code(error)
    if code in GONE_CODES:
        return SourceGone(message)
    if code == "InvalidObjectState":
        return SourceArchived(message)
    return SourceUnreadable(message)


def save_body(opened: OpenedSource, dest: Path) -> int:
    """Stream the body to a file in 1 MiB chunks (memory stays flat whatever the size); return the bytes written.

    A body that ends short of its Content-Length (a reset or timeout mid-body) raises a transient error, so the
    job is retried: a truncated archive is never unpacked.
    """
    written = 0
    with dest.open("wb") as file:
        # botocore's StreamingBody itself raises IncompleteReadError / ResponseStreamingError / ReadTimeoutError
        # (BotoCoreError, transient) when the stream breaks; the count below is the belt to those braces.
        for chunk in opened.body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
            file.write(chunk)
            written += len(chunk)
    expected = opened.source.size
    if expected is not None and written != expected:
        raise IncompleteDownload(f"the download ended after {written} of {expected} bytes")
    return written


def content_type_of(path: Path) -> str:
    """The content type to store an output with."""
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or EXTRA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def relative_output_name(path: Path, bases: Iterable[Path]) -> str:
    """An output's name under the results folder: its path relative to the first base folder holding it."""
    resolved = path.resolve()
    for base in bases:
        if resolved.is_relative_to(base.resolve()):
            return resolved.relative_to(base.resolve()).as_posix()
    raise ValueError(f"{path} is outside the job's folders")


def upload_outputs(
    s3: S3Client, bucket: str, folder_key: str, outputs: Iterable[Path], bases: Iterable[Path]
) -> list[Output]:
    """Upload every output under `folder_key` (multipart when large, with a content type); return what was put."""
    base_list = list(bases)
    named = [(path, relative_output_name(path, base_list)) for path in outputs]
    # Checked before the first upload: a job with an output S3 cannot hold fails whole, with nothing half put.
    for _, name in named:
        if not key_fits(folder_key + name):
            raise ResultKeyTooLong(
                f"the output {name!r} would be stored as a key of {len((folder_key + name).encode())} bytes, "
                f"more than S3's limit of {S3_KEY_LIMIT_BYTES}"
            )
    uploaded = []
    for path, name in named:
        key = folder_key + name
        content_type = content_type_of(path)
        s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type}, Config=TRANSFER_CONFIG)
        uploaded.append(Output(key=key, size=path.stat().st_size, content_type=content_type))
    return uploaded
