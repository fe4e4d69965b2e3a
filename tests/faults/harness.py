"""Helpers shared by the fault tests: archives, S3-shaped work messages, and what the bucket and queues hold."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lew_launcher.events import ObjectNotice
from lew_launcher.messages import message_body
from worker.paths import manifest_key

REGION = "us-east-1"
RESULT_PREFIX = "results/"
INPUT_PREFIX = "incoming/"


def zip_archive(name: str, payload: bytes | None = None) -> bytes:
    """A small valid zip holding one scene-like file, different for every name (so ETags differ)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("scene.pov", payload if payload is not None else f"// {name}\n".encode())
        archive.writestr("data/notes.txt", f"archive {name}\n".encode())
    return buffer.getvalue()


def notice_for(s3: Any, bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> ObjectNotice:
    """What S3 would announce for an object that exists: its key, size, ETag and version."""
    head = s3.head_object(Bucket=bucket, Key=key)
    return ObjectNotice(
        bucket=bucket,
        key=key,
        event_name=event_name,
        event_time="2026-11-21T19:30:00.000Z",
        region=REGION,
        size=head["ContentLength"],
        etag=head["ETag"].strip('"'),
        version_id=head.get("VersionId"),
    )


def work_message(s3: Any, bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> str:
    """The work message the launcher sends for an object (its own message_body, so the contract is real)."""
    return message_body(notice_for(s3, bucket, key, event_name))


def manifest_key_for(key: str) -> str:
    """The manifest key of an input key under incoming/ (the rule of docs/worker.md, "Where results go")."""
    return manifest_key(key, INPUT_PREFIX, RESULT_PREFIX)


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """A JSON object stored at a key, or None when there is no such key."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    loaded: dict[str, Any] = json.loads(body)
    return loaded


@dataclass(frozen=True)
class Verdict:
    """What became of a set of uploads: which have a success manifest for their current ETag, which do not."""

    succeeded: list[str]
    missing: list[str]
    wrong: list[str]  # a manifest exists but does not record a success for the current object

    @property
    def all_succeeded(self) -> bool:
        return not self.missing and not self.wrong


def verdict(s3: Any, bucket: str, keys: Iterable[str]) -> Verdict:
    """Check every key's manifest: status succeeded, for this ETag, and every listed output present."""
    succeeded, missing, wrong = [], [], []
    for key in keys:
        manifest = read_json(s3, bucket, manifest_key_for(key))
        if manifest is None:
            missing.append(key)
            continue
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        outputs_present = all(
            s3.head_object(Bucket=bucket, Key=output["key"])["ContentLength"] == output["size"]
            for output in manifest.get("outputs", [])
        )
        source = manifest.get("source", {})
        if (
            manifest.get("status") == "succeeded"
            and source.get("key") == key
            and source.get("etag", "").strip('"') == etag
            and manifest.get("outputs")
            and outputs_present
        ):
            succeeded.append(key)
        else:
            wrong.append(key)
    return Verdict(succeeded, missing, wrong)


# How long a wait may see nothing at all happen before it fails: that is a stuck system, not a slow one. A loaded
# machine slows every step down, but the steps still happen (log lines, invocations, settled messages), and each
# one restarts this clock. The overall limit of a test is pytest-timeout's, set generously per module.
STALL_SECONDS = 120.0
# A test's overall limit (pytest-timeout): a safety net for a system that keeps moving without ever getting there,
# far above what any test takes on a loaded machine (the slowest take about a minute and a half unloaded).
TEST_TIMEOUT_SECONDS = 900


def wait_for(
    condition: Callable[[], bool],
    what: str,
    *,
    progress: Callable[[], object] | None = None,
    stall: float = STALL_SECONDS,
    interval: float = 0.2,
) -> None:
    """Poll until the condition holds, for as long as the system under test keeps doing something.

    ``progress`` returns a token that changes whenever the system takes a step (the local stack's log length,
    a worker's outcomes...). The wait fails, naming what was awaited, only when the token has not changed for
    ``stall`` seconds; without ``progress``, after ``stall`` seconds.
    """
    last = progress() if progress is not None else None
    moved = time.monotonic()
    while not condition():
        now = time.monotonic()
        if progress is not None:
            token = progress()
            if token != last:
                last, moved = token, now
        if now - moved > stall:
            seen = f"; the last step seen: {last!r}" if progress is not None else ""
            raise AssertionError(f"nothing happened for {stall:g} s while waiting for {what}{seen}")
        time.sleep(interval)
