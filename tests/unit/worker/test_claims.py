"""The in-flight claim's pure rules (expiry, deferral, layout) and its refresh/release, with a fake S3 client."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from worker.claims import (
    EXPIRY_MARGIN_SECONDS,
    MAX_DEFERRAL_SECONDS,
    Claim,
    HeldClaims,
    Holder,
    claim_key,
    deferral_seconds,
    is_stale,
)
from worker.heartbeat import Heartbeat

HOLDER = Holder(message_id="m-1", task_arn=None, etag="abc", version_id=None)


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


class FakeS3:
    """Records puts and deletes; answers puts with a fresh ETag, or with the errors queued in `put_errors`."""

    def __init__(self, put_errors: list[Exception] | None = None) -> None:
        self.puts: list[dict[str, Any]] = []
        self.deletes: list[str] = []
        self.put_errors = put_errors or []

    def put_object(self, **params: Any) -> dict[str, Any]:
        self.puts.append(params)
        if self.put_errors:
            raise self.put_errors.pop(0)
        return {"ETag": f'"etag-{len(self.puts)}"'}

    def delete_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        self.deletes.append(Key)
        return {}

    def get_object(self, **_: Any) -> dict[str, Any]:
        raise client_error("NoSuchKey", 404)


def held_claim(s3: FakeS3, lease: int = 30) -> Claim:
    claim = Claim(s3=s3, bucket="bkt", key="results/.lew-claims/a.claim.json", holder=HOLDER, lease_seconds=lease)  # type: ignore[arg-type]
    claim.put()
    return claim


def test_claim_key_is_in_the_claims_folder_apart_from_the_results() -> None:
    assert claim_key("results/", "a%2Fscene.zip") == "results/.lew-claims/a%2Fscene.zip.claim.json"
    assert claim_key("out/", "x.zip") == "out/.lew-claims/x.zip.claim.json"
    assert not claim_key("results/", "manifest").endswith("/manifest.json")  # listers look for that name


def test_claim_key_of_a_folder_name_too_long_for_s3_is_a_hash_that_fits() -> None:
    # GIVEN a folder name whose manifest key fits exactly, but whose plain claim key would be 9 bytes too long
    stem = "x" * (1024 - len("results/") - len("/manifest.json"))
    # WHEN its claim key is built
    key = claim_key("results/", stem)
    # THEN it fits S3's limit, stays in the claims folder with the claim suffix, and is the same every time
    assert len(key.encode()) <= 1024
    assert key.startswith("results/.lew-claims/sha256/") and key.endswith(".claim.json")
    assert key == claim_key("results/", stem)
    assert key != claim_key("results/", stem + "y")


@pytest.mark.parametrize(
    ("remaining", "lease", "stale"),
    [
        (30 + EXPIRY_MARGIN_SECONDS, 30, False),  # just written or refreshed
        (20 + EXPIRY_MARGIN_SECONDS, 30, False),  # a refresh is due (every lease/3)
        (15, 30, True),  # a refresh was missed
        (EXPIRY_MARGIN_SECONDS, 300, True),  # a dead worker's claim, when its message comes back
        (-1, 300, True),  # expired
    ],
)
def test_is_stale_tells_a_refreshed_claim_from_one_that_missed_refreshes(
    remaining: float, lease: int, stale: bool
) -> None:
    assert is_stale(remaining, lease) is stale


def test_deferral_for_a_live_holder_doubles_per_receive_and_outlasts_a_job_timeout() -> None:
    # GIVEN a live holder (its claim refreshed on time) and the template's defaults
    rng = random.Random(7)
    visibility, job_timeout, max_receive_count = 300, 3600, 5
    # WHEN a duplicate meets it on every receive allowed before the DLQ
    delays = [deferral_seconds(305, attempt, visibility, held_seconds=1, rng=rng) for attempt in range(1, 6)]
    # THEN each delay doubles, starting at one visibility timeout (plus jitter)
    for attempt, delay in enumerate(delays, start=1):
        doubled = visibility * 2 ** (attempt - 1)
        assert doubled < delay <= max(doubled, 305) + 31
    # AND the duplicate comes back once more after the longest job (it is a skip then), before reaching the DLQ
    assert sum(delays[: max_receive_count - 1]) > job_timeout


def test_deferral_for_a_stale_claim_is_the_time_until_it_expires() -> None:
    # GIVEN a claim that missed its refreshes (its worker probably died): 40 s left of a 300 s lease
    delay = deferral_seconds(40, attempt=3, visibility_timeout=300, held_seconds=1, rng=random.Random(1))
    # THEN the message comes back just after it expires, not after a doubled backoff
    assert 41 <= delay <= 71


def test_deferral_never_exceeds_the_12_hour_visibility_limit() -> None:
    delay = deferral_seconds(43_000, attempt=20, visibility_timeout=43_000, held_seconds=600, rng=random.Random(2))
    assert delay <= MAX_DEFERRAL_SECONDS - 600
    assert deferral_seconds(10, attempt=1, visibility_timeout=30, held_seconds=50_000) == 1


def test_claim_refresh_is_conditional_on_the_last_etag_and_changes_the_body() -> None:
    s3 = FakeS3()
    claim = held_claim(s3)

    claim.refresh()

    first, second = s3.puts
    assert first["IfNoneMatch"] == "*" and "IfMatch" not in first
    assert second["IfMatch"] == '"etag-1"' and "IfNoneMatch" not in second
    assert first["Body"] != second["Body"]  # so the ETag changes and a stale contender's If-Match fails
    assert claim.etag == '"etag-2"' and not claim.lost


@pytest.mark.parametrize("error", [client_error("PreconditionFailed", 412), client_error("NoSuchKey", 404)])
def test_claim_refresh_that_finds_another_owner_marks_the_claim_lost_and_release_leaves_it(error: ClientError) -> None:
    # GIVEN a held claim that another worker took over (412) or removed (404)
    s3 = FakeS3()
    claim = held_claim(s3)
    s3.put_errors.append(error)
    # WHEN the heartbeat refreshes it
    claim.refresh()
    # THEN it is lost, and releasing it does not delete the other worker's claim
    assert claim.lost
    claim.release()
    assert s3.deletes == []


def test_claim_release_deletes_once_and_stops_refreshes() -> None:
    s3 = FakeS3()
    claim = held_claim(s3)

    claim.release()
    claim.release()
    claim.refresh()

    assert s3.deletes == ["results/.lew-claims/a.claim.json"]
    assert len(s3.puts) == 1


def test_claim_release_leaves_a_claim_not_confirmed_within_its_lease() -> None:
    # GIVEN a claim whose last successful write is older than its lease (refreshes failed all along)
    s3 = FakeS3()
    claim = held_claim(s3, lease=5)
    claim.confirmed_at = time.monotonic() - 6
    # WHEN released
    claim.release()
    # THEN it is not deleted: another worker may have taken it over; it expires by itself
    assert s3.deletes == []


def test_heartbeat_refreshes_held_claims_even_when_the_visibility_call_fails() -> None:
    class BrokenSQS:
        def change_message_visibility_batch(self, **_: Any) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="https://sqs")

    s3 = FakeS3()
    claims = HeldClaims()
    claims.add(held_claim(s3))
    heartbeat = Heartbeat(BrokenSQS(), "queue", visibility_timeout=30, interval=10, claims=claims)  # type: ignore[arg-type]
    heartbeat.hold([])

    heartbeat.beat()

    assert [put.get("IfMatch") for put in s3.puts] == [None, '"etag-1"']


def test_held_claims_survive_a_failed_refresh_and_stop_after_release() -> None:
    s3 = FakeS3()
    claims = HeldClaims()
    claim = held_claim(s3)
    claims.add(claim)
    s3.put_errors.append(client_error("InternalError", 500))

    claims.refresh_all()  # logged, kept: the next beat tries again
    claims.refresh_all()
    claims.release(claim)
    claims.refresh_all()

    assert len(s3.puts) == 3
    assert not claim.lost
    assert claims.keys == []
    assert s3.deletes == [claim.key]


def test_claim_named_by_its_manifest_is_left_in_place_and_no_longer_refreshed() -> None:
    # GIVEN a held claim whose job wrote the manifest naming it
    s3 = FakeS3()
    claims = HeldClaims()
    claim = held_claim(s3)
    claims.add(claim)
    claim.recorded = True

    # WHEN the job is settled, and the heartbeat beats again
    claims.release(claim)
    claims.refresh_all()
    claim.refresh()

    # THEN no DELETE was sent (the next contender takes it over at once), and no refresh either
    assert s3.deletes == []
    assert len(s3.puts) == 1
    assert claims.keys == []
