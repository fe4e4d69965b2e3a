"""Dagster Pipes for processors: a job started from Dagster hands its processor a Pipes session.

The Dagster side (`lew.dagster`) does what Dagster's PipesECSClient does, except that the two bootstrap values it
would put in the task's environment (DAGSTER_PIPES_CONTEXT, DAGSTER_PIPES_MESSAGES) travel as the upload's own S3
object metadata, `x-amz-meta-dagster-pipes-context` and `x-amz-meta-dagster-pipes-messages`, so that they belong to
exactly that version of the upload. Both name S3 locations under `RESULT_PREFIX.lew-pipes/`:

- the context: `{"bucket", "key"}` of the JSON that dagster-aws's PipesS3ContextInjector wrote (or `{"data": {...}}`
  holding the context itself);
- the messages: `{"bucket", "key_prefix"}` where dagster-aws's PipesS3MessageReader reads chunks
  `<key_prefix>/<n>.json` (n = 1, 2, ...), each holding newline-separated JSON messages.

The processor has no AWS credentials, so it never sees those locations: the worker downloads the context to a file
in the job's folder and gives the processor file-based Pipes settings (dagster_pipes' PipesDefaultContextLoader and
PipesDefaultMessageWriter read `{"path": ...}`), then relays the messages the processor appends to its file to S3
as chunks while it runs, and the rest when it ends. A processor that does not use dagster-pipes (povray, command)
simply writes no messages. Jobs without the metadata get no Pipes variables at all.
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR, decode_param, encode_param

from worker.errors import JobError
from worker.log import get_logger
from worker.s3json import MISSING_KEY_CODES, get_json_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 user metadata names (x-amz-meta-...; S3 gives them back in lower case).
CONTEXT_METADATA = "dagster-pipes-context"
MESSAGES_METADATA = "dagster-pipes-messages"
# Under RESULT_PREFIX, where the task role may already read and write; never an upload's results folder name
# (those are one encoded segment of a key under INPUT_PREFIX, and the claims folder is refused the same way).
PIPES_FOLDER = ".lew-pipes/"
# dagster-pipes' own writers buffer messages for 10 s; Dagster's reader polls every 10 s by default.
RELAY_INTERVAL_SECONDS = 2.0
INCLUDE_STDIO = "include_stdio_in_messages"  # PipesBlobStoreMessageWriter.INCLUDE_STDIO_IN_MESSAGES_KEY
_CHUNK_NAME = re.compile(r"(\d+)\.json")


class PipesMetadataInvalid(JobError):  # noqa: N818 - a manifest error.type, like UnsafeArchive
    """The upload's Dagster Pipes metadata cannot be used (malformed, or naming a place outside the Pipes folder)."""


@dataclass(frozen=True)
class PipesRequest:
    """A job's Pipes session, as its upload's metadata asks for it."""

    bucket: str
    context: dict[str, Any]  # the context injector's params: {"bucket", "key"} or {"data"}
    messages_prefix: str  # chunks go to <messages_prefix>/<n>.json
    include_stdio: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], bucket: str, result_prefix: str) -> PipesRequest | None:
        """The request an upload's user metadata carries; None without Pipes metadata.

        Raises PipesMetadataInvalid (a permanent job failure) naming the metadata entry and what is wrong with it.
        """
        raw_context, raw_messages = metadata.get(CONTEXT_METADATA), metadata.get(MESSAGES_METADATA)
        if raw_context is None and raw_messages is None:
            return None
        if raw_context is None or raw_messages is None:
            present, absent = (CONTEXT_METADATA, MESSAGES_METADATA)[:: 1 if raw_context is not None else -1]
            raise PipesMetadataInvalid(f"the upload has {present} metadata but no {absent}: both are needed")
        folder = f"{result_prefix}{PIPES_FOLDER}"
        context = _decode(CONTEXT_METADATA, raw_context)
        if "data" in context:
            if not isinstance(context["data"], dict):
                raise PipesMetadataInvalid(f"{CONTEXT_METADATA}: 'data' is not a JSON object")
        else:
            _check_location(CONTEXT_METADATA, context, "key", bucket, folder)
        messages = _decode(MESSAGES_METADATA, raw_messages)
        prefix = _check_location(MESSAGES_METADATA, messages, "key_prefix", bucket, folder)
        return cls(bucket, context, prefix.rstrip("/"), bool(messages.get(INCLUDE_STDIO)))


def _decode(name: str, raw: str) -> dict[str, Any]:
    try:
        value = decode_param(raw)
    except (ValueError, zlib.error) as error:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise PipesMetadataInvalid(f"{name}: not a dagster-pipes encoded value ({error})") from error
    if not isinstance(value, dict):
        raise PipesMetadataInvalid(f"{name}: not a JSON object")
    return value


def _check_location(name: str, params: Mapping[str, Any], field: str, bucket: str, folder: str) -> str:
    """The key (prefix) `params[field]`, checked to lie in this bucket's Pipes folder."""
    place, where = params.get(field), params.get("bucket")
    if where != bucket:
        raise PipesMetadataInvalid(f"{name}: bucket {where!r} is not the upload's bucket {bucket!r}")
    if not isinstance(place, str) or not place.startswith(folder) or len(place) == len(folder):
        raise PipesMetadataInvalid(f"{name}: {field} {place!r} is not under {folder}")
    if any(part in ("", ".", "..") for part in place[len(folder) :].rstrip("/").split("/")):
        raise PipesMetadataInvalid(f"{name}: {field} {place!r} has an empty, '.' or '..' segment")
    return place


@contextmanager
def pipes_session(
    s3: S3Client, request: PipesRequest | None, folder: Path, *, interval: float = RELAY_INTERVAL_SECONDS
) -> Iterator[dict[str, str]]:
    """The processor's Pipes variables for the duration of the block, its messages relayed to S3 meanwhile.

    Yields {} without a request. `folder` (created) holds the context and messages files; it must be outside the
    processor's input and output folders. Every message is uploaded before the block ends, also when it raises.
    S3 errors while loading the context are raised (a retry may pass); a failed chunk upload is logged and the
    chunk retried at the next interval.
    """
    if request is None:
        yield {}
        return
    folder.mkdir(parents=True, exist_ok=True)
    context_file, messages_file = folder / "context.json", folder / "messages.jsonl"
    context_file.write_text(json.dumps(_load_context(s3, request)), encoding="utf-8")
    messages_file.touch()
    relay = MessageRelay(s3, request.bucket, request.messages_prefix, messages_file)
    environment = {
        DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"path": str(context_file)}),
        DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param(
            {"path": str(messages_file), INCLUDE_STDIO: request.include_stdio}
        ),
    }
    with relay.running(interval):
        yield environment


def _load_context(s3: S3Client, request: PipesRequest) -> dict[str, Any]:
    if "data" in request.context:
        data: dict[str, Any] = request.context["data"]
        return data
    key = str(request.context["key"])
    found = get_json_object(s3, request.bucket, key, absent=MISSING_KEY_CODES)
    if found is None:
        raise PipesMetadataInvalid(
            f"{CONTEXT_METADATA}: s3://{request.bucket}/{key} does not exist (the Dagster run may have ended)"
        )
    if found.document is None:
        raise PipesMetadataInvalid(f"{CONTEXT_METADATA}: s3://{request.bucket}/{key} is not a JSON object")
    return found.document


class MessageRelay:
    """Uploads the complete lines appended to a messages file as numbered chunks, as PipesS3MessageReader reads them.

    Numbering continues after the chunks already there, so that a retried job adds to what an earlier attempt sent.
    """

    def __init__(self, s3: S3Client, bucket: str, prefix: str, path: Path) -> None:
        self.s3, self.bucket, self.prefix, self.path = s3, bucket, prefix, path
        self._offset = 0
        self._pending = b""  # read from the file, not yet uploaded
        self._index = 0
        self._lock = threading.Lock()

    @contextmanager
    def running(self, interval: float) -> Iterator[None]:
        """Relay every `interval` seconds in a thread; relay the rest (a last line without newline too) at the end."""
        self._index = self._last_index() + 1
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(stop, interval), name="pipes-relay", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.relay(final=True)

    def relay(self, *, final: bool = False) -> int:
        """Upload what was appended since the last call as one chunk; the number of messages sent."""
        with self._lock:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                added = file.read()
            self._offset += len(added)
            self._pending += added
            complete, _, rest = self._pending.rpartition(b"\n")
            if final:
                # dagster-pipes ends every message with a newline; a torn last line is sent anyway (the reader skips
                # what does not parse), so that nothing a processor wrote is held back.
                complete, rest = self._pending, b""
            lines = [line for line in complete.split(b"\n") if line.strip()]
            if not lines:
                return 0
            key = f"{self.prefix}/{self._index}.json"
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"\n".join(lines), ContentType="application/json")
            except (ClientError, BotoCoreError, OSError) as error:
                # Kept pending, so the next call sends it; a failed last call is logged, the job goes on.
                get_logger().warning("could not relay Pipes messages", extra={"key": key, "error": str(error)})
                return 0
            self._pending = rest
            self._index += 1
            return len(lines)

    def _loop(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            self.relay()

    def _last_index(self) -> int:
        last = 0
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/")
        for page in pages:
            for item in page.get("Contents", []):
                match = _CHUNK_NAME.fullmatch(item["Key"][len(self.prefix) + 1 :])
                if match:
                    last = max(last, int(match.group(1)))
        return last
