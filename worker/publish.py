"""Move bytes between S3 and the job's folder: streamed downloads, multipart uploads with a content type."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig

from worker.manifest import Output

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
# Parts of 16 MiB: few requests for large renders, and a bounded amount of memory in flight.
TRANSFER_CONFIG = TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4)
EXTRA_TYPES = {".pov": "text/plain", ".ini": "text/plain", ".inc": "text/plain", ".log": "text/plain"}


def download(s3: S3Client, bucket: str, key: str, dest: Path, *, version_id: str | None) -> None:
    """Stream an object to a file on disk (in ranged parts for big objects; never the whole object in memory)."""
    extra = {"VersionId": version_id} if version_id else None
    s3.download_file(bucket, key, str(dest), ExtraArgs=extra, Config=TRANSFER_CONFIG)


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
    uploaded = []
    for path in outputs:
        key = folder_key + relative_output_name(path, base_list)
        content_type = content_type_of(path)
        s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type}, Config=TRANSFER_CONFIG)
        uploaded.append(Output(key=key, size=path.stat().st_size, content_type=content_type))
    return uploaded
