"""`lew.client` against moto: finding uploads, waiting (timeout, dead letter), cancel markers, running jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from lew import dead_letters
from lew.client import DEAD_LETTERED, QUEUED, RUNNING, TIMED_OUT, Client, JobFinishedError
from lew.errors import LewError
from tests.integration.conftest import moto_target
from worker.cancel import cancel_key
from worker.claims import claim_key
from worker.paths import folder_name, manifest_key

REGION = "us-east-1"
BUCKET = "lew-client-bucket"
# Where the worker keeps the manifest and the claim of incoming/s.zip (worker/paths.py, worker/claims.py).
MANIFEST_OF_S = manifest_key("incoming/s.zip", "incoming/", "results/")
# A key S3 takes (764 bytes) whose results folder, every / written %2F, does not fit: a 1277-byte manifest key.
DEEP_NAME = "ab/" * 250 + "x.zip"
UNSTORABLE = (
    "its results cannot be stored: its manifest key would be 1277 bytes, more than S3's limit of 1024 "
    "(its results folder is named by the key with each / written %2F)"
)
CLAIM_OF_S = claim_key("results/", folder_name("incoming/s.zip", "incoming/"))


@pytest.fixture
def client(aws: None) -> Client:
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    queue_url, dlq_url = sqs.create_queue(QueueName="work")["QueueUrl"], sqs.create_queue(QueueName="dlq")["QueueUrl"]
    target = moto_target(BUCKET, queue_url, dlq_url)
    return Client(target, poll_seconds=0.05, dlq_poll_seconds=0.0)


def put(client: Client, key: str, body: bytes = b"PK") -> None:
    client.s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_upload_is_found_by_key_by_name_under_the_input_prefix_or_by_uri(client: Client) -> None:
    put(client, "incoming/a/scene.zip")
    by_key = client.upload("incoming/a/scene.zip")
    assert client.upload("a/scene.zip") == by_key
    assert client.upload(f"s3://{BUCKET}/incoming/a/scene.zip") == by_key
    assert by_key.etag is not None and '"' not in by_key.etag
    with pytest.raises(LewError, match=r"^no upload s3://lew-client-bucket/incoming/missing.zip$"):
        client.upload("missing.zip")
    with pytest.raises(LewError, match="not in this stack's bucket"):
        client.upload("s3://other-bucket/incoming/a/scene.zip")


def test_wait_times_out_on_a_queued_job_and_says_so(client: Client) -> None:
    put(client, "incoming/slow.zip")
    upload = client.upload("slow.zip")
    seen: list[str] = []

    state = client.wait(upload, timeout=0.3, on_update=lambda current: seen.append(current.status))

    assert state.status == TIMED_OUT
    assert not state.finished
    assert set(seen) == {QUEUED}


def test_wait_sees_a_dead_letter_with_its_reason(client: Client) -> None:
    # GIVEN an upload whose message the worker moved to the DLQ, with its reason
    put(client, "incoming/dead.zip")
    upload = client.upload("dead.zip")
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": "incoming/dead.zip"}},
    }
    body = {"Records": [record]}
    client.target.sqs.send_message(
        QueueUrl=client.target.dlq_url,
        MessageBody=json.dumps(body),
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "the manifest key would be too long"}},
    )

    # WHEN waiting for it
    state = client.wait(upload, timeout=30)

    # THEN the wait ends as dead-lettered, naming the reason, and the message stays in the DLQ
    assert (state.status, state.error) == (DEAD_LETTERED, "the manifest key would be too long")
    assert state.finished


def test_wait_ignores_a_manifest_of_an_older_upload_and_reports_its_own(client: Client) -> None:
    # GIVEN a manifest recording an older upload of the key, and a live claim of the current one with progress
    put(client, "incoming/s.zip", b"new bytes")
    upload = client.upload("s.zip")
    manifest = {"status": "succeeded", "source": {"key": "incoming/s.zip", "etag": "older", "version_id": None}}
    client.s3.put_object(Bucket=BUCKET, Key=MANIFEST_OF_S, Body=json.dumps(manifest))
    claim = {
        "source": {"key": "incoming/s.zip", "etag": upload.etag, "version_id": None},
        "task_arn": "arn:aws:ecs:us-east-1:123456789012:task/c/abc",
        "claimed_at": "2026-01-01T00:00:00Z",
        "expires_at": "2999-01-01T00:00:00Z",
        "nonce": "n1",
        "progress": {"done": 5, "total": 20, "message": "rows"},
    }
    client.s3.put_object(Bucket=BUCKET, Key=CLAIM_OF_S, Body=json.dumps(claim))

    # THEN it is running, with the claim's progress, and listed among the running jobs
    state = client.state(upload)
    assert state.status == RUNNING
    assert state.progress is not None and (state.progress.done, state.progress.total) == (5, 20)
    assert [job.key for job in client.running_jobs()] == ["incoming/s.zip"]

    # WHEN its own success manifest (naming the claim) lands
    manifest = {"status": "succeeded", "source": {"key": "incoming/s.zip", "etag": upload.etag}, "claim": "n1"}
    client.s3.put_object(Bucket=BUCKET, Key=MANIFEST_OF_S, Body=json.dumps(manifest))

    # THEN the job is over, and no longer listed as running
    assert client.state(upload).status == "succeeded"
    assert client.running_jobs() == []


def test_running_jobs_leave_out_expired_claims(client: Client) -> None:
    claim = {"source": {"key": "incoming/x.zip", "etag": "e"}, "expires_at": "2000-01-01T00:00:00Z", "nonce": "n"}
    key = claim_key("results/", folder_name("incoming/x.zip", "incoming/"))
    client.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(claim))
    assert client.running_jobs() == []


def test_submit_removes_a_cancel_request_left_for_the_key(client: Client, tmp_path: Path) -> None:
    # GIVEN a cancel request waiting for an upload of the same content
    archive = tmp_path / "again.zip"
    archive.write_bytes(b"PK same bytes")
    first = client.submit(archive)
    client.cancel(first)
    assert client.cancel_requested(first)

    # WHEN the same file is submitted again
    second = client.submit(archive)

    # THEN the new upload runs: no cancel request applies to it
    assert second.etag == first.etag
    assert not client.cancel_requested(second)
    marker = cancel_key("results/", folder_name("incoming/again.zip", "incoming/"))
    with pytest.raises(client.s3.exceptions.ClientError):
        client.s3.head_object(Bucket=BUCKET, Key=marker)


def test_events_without_a_queue_is_one_clear_line(client: Client) -> None:
    with pytest.raises(LewError, match="has no events queue to read: job events go to the event bus"):
        next(client.events(follow=False))


def test_submit_refuses_a_suffix_the_stack_skips(client: Client, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(LewError, match=r"notes.txt: the stack only processes \.zip files"):
        client.submit(notes)


def test_rerun_waits_for_the_new_manifest_not_the_old_one(client: Client) -> None:
    # GIVEN an upload whose manifest records a success
    put(client, "incoming/s.zip", b"bytes")
    etag = client.upload("s.zip").etag
    old = {
        "status": "succeeded",
        "source": {"key": "incoming/s.zip", "etag": etag},
        "finished_at": "2020-01-01T00:00:00Z",
    }
    client.s3.put_object(Bucket=BUCKET, Key=MANIFEST_OF_S, Body=json.dumps(old))

    # WHEN it is re-run
    (upload,) = client.rerun(["s.zip"])

    # THEN a work message is queued, and the old manifest is not the re-run's outcome
    assert client.target.sqs.receive_message(QueueUrl=client.target.queue_url).get("Messages")
    assert client.state(upload).status == QUEUED
    # ... the new one is
    new = {**old, "finished_at": "2999-01-01T00:00:00Z"}
    client.s3.put_object(Bucket=BUCKET, Key=MANIFEST_OF_S, Body=json.dumps(new))
    assert client.state(upload).status == "succeeded"


def test_wait_ends_at_once_for_an_upload_whose_results_cannot_be_stored(client: Client) -> None:
    # GIVEN an upload whose key has so many folders that its manifest key would be longer than S3 accepts
    put(client, f"incoming/{DEEP_NAME}")
    upload = client.upload(DEEP_NAME)

    # WHEN waiting for it (the worker dead-letters such an upload; it never gets a manifest)
    state = client.wait(upload, timeout=30)

    # THEN the wait ends at once, dead-lettered, saying why in one line and where to look
    assert state.status == DEAD_LETTERED
    assert state.error == f"{UNSTORABLE}; the worker dead-letters it (`lew dead-letters` shows it)"
    assert state.manifest_key is None
    # AND cancel says it is over, and a re-run is refused before anything is queued
    with pytest.raises(JobFinishedError, match=r"already dead-lettered: nothing to cancel \(its results cannot"):
        client.cancel(upload)
    with pytest.raises(LewError, match=r"^refusing to re-run s3://lew-client-bucket/incoming/ab/ab/.*\.\.\..*/x\.zip"):
        client.rerun([DEEP_NAME])
    assert not client.target.sqs.receive_message(QueueUrl=client.target.queue_url).get("Messages")


def test_submit_refuses_a_key_whose_results_cannot_be_stored_and_uploads_nothing(
    client: Client, tmp_path: Path
) -> None:
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"PK")

    with pytest.raises(LewError) as refused:
        client.submit(archive, name=DEEP_NAME)

    assert str(refused.value) == (
        f"refusing to upload s3://{BUCKET}/{'incoming/' + DEEP_NAME[:51]}...{DEEP_NAME[-30:]} (764 bytes): "
        f"{UNSTORABLE}; shorten the key"
    )
    assert "Contents" not in client.s3.list_objects_v2(Bucket=BUCKET)


def dead_letter(client: Client, key: str, reason: str) -> None:
    """A DLQ message naming s3://BUCKET/key with the worker's reason attribute."""
    body = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}
    client.target.sqs.send_message(
        QueueUrl=client.target.dlq_url,
        MessageBody=json.dumps(body),
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}},
    )


def test_wait_finds_a_dead_letter_behind_more_than_a_page_of_others(client: Client) -> None:
    # GIVEN a DLQ holding 25 dead letters of other uploads, then the one of ours (the 26th SQS hands out)
    put(client, "incoming/deep.zip")
    upload = client.upload("deep.zip")
    for index in range(25):
        dead_letter(client, f"incoming/other-{index}.zip", f"reason {index}")
    dead_letter(client, "incoming/deep.zip", "ours")

    # WHEN waiting for it (with a limit, so that a miss ends the test instead of waiting for ever)
    state = client.wait(upload, timeout=30)

    # THEN the wait ends as dead-lettered with its reason, and all 26 messages are still in the DLQ, visible
    assert (state.status, state.error) == (DEAD_LETTERED, "ours")
    depths = client.target.sqs.get_queue_attributes(
        QueueUrl=client.target.dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert (depths["ApproximateNumberOfMessages"], depths["ApproximateNumberOfMessagesNotVisible"]) == ("26", "0")


class CountingSQS:
    """An SQS client that counts ReceiveMessage calls (every other call goes through)."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.receives = 0

    def receive_message(self, **kwargs: Any) -> Any:
        self.receives += 1
        return self.sqs.receive_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)


def test_find_reads_the_whole_dlq_once_and_stops_at_its_depth(client: Client) -> None:
    # GIVEN a DLQ of 15 dead letters, none about this upload, and one of 25 whose 13th is
    for index in range(15):
        dead_letter(client, f"incoming/other-{index}.zip", "x")
    sqs = CountingSQS(client.target.sqs)

    # THEN there is none, after as many receives as pages of the DLQ (bounded by its depth), not more
    assert dead_letters.find(sqs, client.target.dlq_url, [(BUCKET, "incoming/fine.zip", None)]) == {}  # type: ignore[arg-type]
    assert sqs.receives == 2
    # AND several uploads are looked for in one pass, which stops once each was found
    wanted = [(BUCKET, "incoming/other-3.zip", None), (BUCKET, "incoming/other-12.zip", None)]
    found = dead_letters.find(sqs, client.target.dlq_url, wanted)  # type: ignore[arg-type]
    assert sorted(found) == sorted(wanted)
    assert sqs.receives == 4
