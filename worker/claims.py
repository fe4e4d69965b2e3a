"""The in-flight claim: at most one worker processes an upload (one key, one results folder) at a time.

S3 delivers events at least once, a multipart upload can raise two events, and a retried launcher enqueues an
object again, so two workers can receive the same object at the same moment. The manifest only catches a
duplicate that comes *after* the job. The claim is a small object, written with a conditional PUT
(`If-None-Match: *`), that only one worker can create; the heartbeat refreshes it while the job runs, and a
dead worker's claim expires together with its message's visibility. A job that ends with its manifest names its
claim in it and leaves the claim in place (no DELETE on the happy path): a contender that finds the claim named
by the manifest knows its job is over and takes it over at once. Other endings delete it. The rules, and why they
are safe, are in docs/worker.md ("Concurrent duplicates").
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.errors import GONE_CODES, JobAborted, error_code
from worker.log import get_logger
from worker.manifest import iso_time, utcnow
from worker.paths import key_fits
from worker.s3json import get_json_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CLAIMS_FOLDER = ".lew-claims/"
CLAIM_SUFFIX = ".claim.json"
# A claim counts as expired only this long after its lease ran out, measured on S3's own clock (the claim's
# LastModified and the Date of the answer that read it), so workers' clocks never enter into it. The margin
# covers the one-second resolution of both timestamps and the moment between a beat's visibility extension and
# its claim refresh: the claim of a dead worker outlives its message by a few seconds, never the other way.
EXPIRY_MARGIN_SECONDS = 5.0
# A stale claim (see `is_stale`) that expires this soon is waited for in process, instead of spending one of the
# message's receives on a backoff: typically a dead worker's own message, back a few seconds before its claim expires.
WAIT_LIMIT_SECONDS = 15.0
# Slack for `is_stale`: timestamp resolution, and a beat whose visibility call took a moment before the refresh.
REFRESH_SLACK_SECONDS = 2.0
# How long a live holder is given to finish before the message is deferred, looking every POLL_SECONDS (GETs on
# the conflict path only). Most jobs are short: their duplicates become skips at once, without a receive spent.
CONFLICT_WAIT_SECONDS = 15.0
POLL_SECONDS = 1.0
# A bound on the rounds of create / read / take over (the patience and the waits end the loop long before it).
ACQUIRE_ROUNDS = 64
# ChangeMessageVisibility accepts at most 12 hours from the receive; stay well inside it.
MAX_DEFERRAL_SECONDS = 43_200 - 600
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def claim_key(result_prefix: str, folder: str) -> str:
    """The claim object of a results folder: `RESULT_PREFIX.lew-claims/<folder name>.claim.json`.

    One claim per results folder, so per key (`paths.folder_name`). `.claim.json`, not `.json`, so that no claim
    looks like a manifest to a lister. A claim key past S3's key limit is
    `.lew-claims/sha256/<hex of the folder name>.claim.json`: the claim key is 9 bytes longer than the manifest key,
    and a key whose manifest fits must still be claimable. A folder name holds no `/`, or only the one after
    `.lew-outside`, so a hashed claim never shares its key with another upload's.
    """
    return beside_claims(result_prefix, folder, CLAIM_SUFFIX)


def beside_claims(result_prefix: str, folder: str, suffix: str) -> str:
    """An object of a results folder kept in the claims folder (its claim, cancel marker, retry record):
    `RESULT_PREFIX.lew-claims/<folder name><suffix>`, or `.lew-claims/sha256/<hex of the folder name><suffix>` when
    that is past S3's key limit."""
    key = f"{result_prefix}{CLAIMS_FOLDER}{folder}{suffix}"
    if key_fits(key):
        return key
    digest = hashlib.sha256(folder.encode()).hexdigest()  # deterministic: every worker names the same object
    return f"{result_prefix}{CLAIMS_FOLDER}sha256/{digest}{suffix}"


@dataclass(frozen=True)
class Holder:
    """Who a claim is for: written into the claim so that an operator (and a contender's log) can see it."""

    message_id: str
    task_arn: str | None
    etag: str | None
    version_id: str | None
    key: str | None = None  # the upload's key, so that `lew status` can name a running job


@dataclass(frozen=True)
class Busy:
    """Another worker holds a live claim on the upload: the job must wait. `remaining` is its lease left, in s."""

    remaining: float
    holder: dict[str, Any]


@dataclass(frozen=True)
class _Found:
    """A claim as read back: its ETag, its document, its lease, and how long until it expires (on S3's clock)."""

    etag: str
    document: dict[str, Any]
    lease: int
    remaining: float


def is_stale(remaining: float, lease: float) -> bool:
    """True when a claim has missed a refresh: one refreshed every lease/3 keeps two thirds of its lease left."""
    return remaining < lease * 2 / 3 + EXPIRY_MARGIN_SECONDS - REFRESH_SLACK_SECONDS


@dataclass
class Claim:
    """A claim this worker holds: refreshed by the heartbeat, released when the job is settled."""

    s3: S3Client
    bucket: str
    key: str
    holder: Holder
    lease_seconds: int
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex)
    etag: str = ""
    confirmed_at: float = 0.0  # monotonic time at which the last successful write was *sent*
    claimed_at: str = ""
    lost: bool = False
    released: bool = False
    recorded: bool = False  # the job's manifest, written, names this claim's nonce: its job is over
    progress: dict[str, Any] | None = None  # the job's latest progress (worker/progress.py), shown by `lew status`
    writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def document(self) -> dict[str, Any]:
        """The claim's JSON body (every write differs, by `writes` and `refreshed_at`, so its ETag changes)."""
        now = utcnow()
        return {
            "source": {"key": self.holder.key, "etag": self.holder.etag, "version_id": self.holder.version_id},
            "message_id": self.holder.message_id,
            "task_arn": self.holder.task_arn,
            "claimed_at": self.claimed_at or iso_time(now),
            "refreshed_at": iso_time(now),
            "expires_at": iso_time(datetime.fromtimestamp(now.timestamp() + self.lease_seconds, UTC)),
            "lease_seconds": self.lease_seconds,
            "nonce": self.nonce,
            "writes": self.writes,
            "progress": self.progress,
        }

    def put(self, *, if_match: str | None = None) -> None:
        """Write the claim: create it (If-None-Match: *), or replace the version with ETag `if_match`."""
        self.writes += 1
        document = self.document()
        self.claimed_at = self.claimed_at or document["claimed_at"]
        body = json.dumps(document).encode("utf-8")
        sent = time.monotonic()
        if if_match is None:
            response = self.s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", IfNoneMatch="*"
            )
        else:
            response = self.s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", IfMatch=if_match
            )
        self.etag, self.confirmed_at = response["ETag"], sent

    def refresh(self) -> None:
        """Push the claim's expiry a lease ahead (If-Match: a claim another worker took over is never replaced)."""
        with self._lock:
            if self.released or self.lost:
                return
            try:
                self.put(if_match=self.etag)
            except ClientError as error:
                code = error_code(error)
                if code in CONFLICT_CODES and self._adopt_if_ours():
                    return  # our own write, answered by a retry of it: the claim is still ours
                if code in CONFLICT_CODES or code in GONE_CODES:
                    self.lost = True
                    get_logger().warning(
                        "the claim was taken over or removed: this job stops at its next step",
                        extra={"claim": self.key, "error": code},
                    )
                    return
                raise

    def release(self) -> None:
        """Stop refreshing the claim, and delete it unless a manifest records it or it may belong to someone else.

        A claim its manifest records is left in place: the next contender sees its job is over and takes it over
        at once, so the happy path costs no DELETE. A failed delete only lets the claim expire.
        """
        with self._lock:
            if self.released:
                return
            self.released = True
            if self.recorded:
                return
            if self.lost or time.monotonic() - self.confirmed_at >= self.lease_seconds:
                # Not confirmed for a whole lease: another worker may have taken it over. Let it expire.
                get_logger().warning("claim not confirmed within its lease: left to expire", extra={"claim": self.key})
                return
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=self.key)
            except (BotoCoreError, ClientError) as error:
                get_logger().warning(
                    "could not delete the claim; it expires by itself", extra={"claim": self.key, "error": str(error)}
                )

    def _adopt_if_ours(self) -> bool:
        found = read_claim(self.s3, self.bucket, self.key, self.lease_seconds)
        if found is None or found.document.get("nonce") != self.nonce:
            return False
        self.etag, self.confirmed_at = found.etag, time.monotonic()
        return True


class HeldClaims:
    """The claims this worker holds; the heartbeat refreshes them at the cadence of the visibility extension."""

    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}
        self._lock = threading.Lock()

    def add(self, claim: Claim) -> None:
        """Start refreshing a claim."""
        with self._lock:
            self._claims[claim.key] = claim

    def release(self, claim: Claim) -> None:
        """Stop refreshing a claim and settle it (`Claim.release`: deleted, unless its manifest records it)."""
        with self._lock:
            self._claims.pop(claim.key, None)
        claim.release()

    @property
    def keys(self) -> list[str]:
        """The keys of the held claims."""
        with self._lock:
            return list(self._claims)

    def refresh_all(self) -> None:
        """Refresh every held claim once; a failure is logged (three beats per lease: one miss does no harm)."""
        with self._lock:
            claims = list(self._claims.values())
        for claim in claims:
            try:
                claim.refresh()
            except (BotoCoreError, ClientError) as error:
                get_logger().warning("could not refresh the claim", extra={"claim": claim.key, "error": str(error)})


def acquire(
    s3: S3Client,
    bucket: str,
    key: str,
    holder: Holder,
    lease_seconds: int,
    *,
    abort: threading.Event,
    patience: float | None = None,
    sleep: Callable[[float], bool] | None = None,
    finished: Callable[[str], bool] | None = None,
) -> Claim | Busy:
    """Claim an upload: create the claim, or take over an expired or finished one; Busy when another worker holds it.

    `finished(nonce)` says whether the upload's manifest records the claim with that nonce, i.e. its job is over (one
    manifest GET, asked only when a claim exists). A live holder is given `patience` seconds
    (CONFLICT_WAIT_SECONDS) to finish: a short job's duplicate then becomes a skip on this very receive. Errors
    other than a lost race (network, 5xx after retries, access denied) are raised: the job is retried.
    """
    wait = sleep or abort.wait  # returns True when the worker must stop
    deadline = time.monotonic() + (CONFLICT_WAIT_SECONDS if patience is None else patience)
    claim = Claim(s3=s3, bucket=bucket, key=key, holder=holder, lease_seconds=lease_seconds)
    busy = Busy(remaining=float(lease_seconds), holder={})
    found: _Found | None = None
    for _ in range(ACQUIRE_ROUNDS):
        if found is None:
            created = _create_or_read(claim)
            if isinstance(created, Claim):
                return created
            if created is None:
                continue  # released between our PUT and our GET: try again
            found = created
        busy = Busy(remaining=found.remaining, holder=_holder_of(found.document))
        if finished is not None and _is_finished(found, finished):
            # Its job wrote the manifest naming it and left it for the next job of the upload (asked before the expiry
            # too, so that an expired take-over still means a dead worker). If-Match: when a second contender takes
            # it first (or the holder's last refresh lands), we read the claim again.
            if _take_over(claim, found):
                get_logger().info("took over the claim of a finished job", extra=busy.holder)
                return claim
            found = None
            continue
        if found.remaining <= 0 or (found.remaining <= WAIT_LIMIT_SECONDS and is_stale(found.remaining, found.lease)):
            # Expired, or about to: its worker stopped refreshing it. Take it over once it has run out.
            if found.remaining > 0 and wait(found.remaining + 1):
                raise JobAborted("the worker is stopping")
            if _take_over(claim, found):
                get_logger().warning("took over an expired claim (its worker stopped refreshing it)", extra=busy.holder)
                return claim
            found = None
            continue
        # A live holder: look again in a moment, until our patience runs out.
        if time.monotonic() + POLL_SECONDS > deadline:
            return busy
        if wait(POLL_SECONDS):
            raise JobAborted("the worker is stopping")
        found = read_claim(s3, bucket, key, lease_seconds)  # None: released, so the next round creates it
    return busy


def _create_or_read(claim: Claim) -> Claim | _Found | None:
    """Create the claim; or, when one exists, read it (None when it vanished in between)."""
    try:
        claim.put()
    except ClientError as error:
        if error_code(error) not in CONFLICT_CODES:
            raise
    else:
        return claim
    found = read_claim(claim.s3, claim.bucket, claim.key, claim.lease_seconds)
    if found is not None and found.document.get("nonce") == claim.nonce:
        # Our PUT landed but its answer was lost, and botocore's retry of it met our own claim.
        claim.etag, claim.confirmed_at = found.etag, time.monotonic()
        return claim
    return found


def _is_finished(found: _Found, finished: Callable[[str], bool]) -> bool:
    nonce = found.document.get("nonce")
    return isinstance(nonce, str) and bool(nonce) and finished(nonce)


def _take_over(claim: Claim, found: _Found) -> bool:
    """Replace an expired or finished claim, on the condition that nobody wrote it since we read it."""
    try:
        claim.put(if_match=found.etag)  # a holder that refreshed meanwhile changed the ETag: we lose the race
    except ClientError as error:
        if error_code(error) not in CONFLICT_CODES | GONE_CODES:
            raise
        return False
    return True


def read_claim(s3: S3Client, bucket: str, key: str, default_lease: int) -> _Found | None:
    """The claim at a key and its time left on S3's clock, or None when there is none."""
    found = get_json_object(s3, bucket, key)
    if found is None:
        return None
    response = found.response
    document = found.document or {}  # a damaged claim still holds the upload, for the default lease
    lease = document.get("lease_seconds")
    if not isinstance(lease, int) or isinstance(lease, bool) or lease <= 0:
        lease = default_lease
    now = _s3_now(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}))
    age = (now - response["LastModified"]).total_seconds()
    return _Found(etag=response["ETag"], document=document, lease=lease, remaining=lease + EXPIRY_MARGIN_SECONDS - age)


def deferral_seconds(
    remaining: float, attempt: int, visibility_timeout: int, held_seconds: float, rng: random.Random | None = None
) -> int:
    """How long a message whose upload another worker is processing stays hidden.

    A claim refreshed on time (not `is_stale`) belongs to a live worker whose job may run for an hour. Doubling
    from one visibility timeout per receive keeps the duplicate out of the DLQ for 2^maxReceiveCount - 1
    visibility timeouts (31 at maxReceiveCount=5: 2.6 h at the defaults), longer than JOB_TIMEOUT. A stale claim's
    worker is probably dead: come back when the claim expires. Jitter keeps duplicates from coming back in step.
    """
    jitter = (rng or random.Random()).uniform(1, 1 + min(30.0, visibility_timeout / 10))  # noqa: S311 - not security
    wanted = max(0.0, remaining) + jitter
    if not is_stale(remaining, visibility_timeout):
        wanted = max(wanted, visibility_timeout * 2.0 ** max(0, min(attempt, 20) - 1) + jitter)
    ceiling = MAX_DEFERRAL_SECONDS - held_seconds
    return max(1, round(min(wanted, ceiling)))


def _holder_of(document: dict[str, Any]) -> dict[str, Any]:
    source = document.get("source")
    return {
        "holder_message_id": document.get("message_id"),
        "holder_task_arn": document.get("task_arn"),
        "holder_etag": source.get("etag") if isinstance(source, dict) else None,
        "holder_claimed_at": document.get("claimed_at"),
    }


def _s3_now(headers: dict[str, str]) -> datetime:
    """S3's clock, from the Date header of its answer (a local emulator may omit it: then ours, the same host)."""
    date = headers.get("date")
    if date:
        try:
            return parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return utcnow()
