"""Job events on an EventBridge bus, progress in the claim, and cancel (queued and running), against moto."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import psutil
import pytest

from lew.client import Client, JobFinishedError, Upload
from lew.jobs_view import JobLine
from lew.local.job_events import create_job_events
from tests.integration.worker.conftest import BUCKET, REGION, Stack, s3_record, target_of, wait_until, zip_bytes
from worker.drain import Summary
from worker.events import EventPublisher, JobEvents

pytestmark = pytest.mark.timeout(180)

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((REPO_ROOT / "docs" / "job-event.schema.json").read_text(encoding="utf-8"))
SCENE = {"scene.pov": b"sphere { 0, 1 }\n"}
# A command that reports progress (the LEW_PROGRESS convention), records its pid and its child's, then runs long.
LONG_RUNNER = """
import json, os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(PIDS_FILE, "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
with open(os.environ["LEW_PROGRESS"], "a") as f:
    f.write(json.dumps({"done": 3, "total": 10, "message": "step 3"}) + "\\n")
    f.flush()
    time.sleep(120)
"""
TOUCH_OUTPUT = "import os, pathlib; pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'ran.txt').write_text('ran')"


def received_events(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return sorted(found, key=lambda event: event["detail"]["time"])
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_job_events_reach_the_bus_and_match_the_schema(stack: Stack) -> None:
    # GIVEN the stack's event bus with a rule copying lew events into a queue, and a publisher on it
    bus, events_queue = create_job_events(boto3.client("events", region_name=REGION), stack.sqs, stack_name="t")
    publisher = EventPublisher(boto3.client("events", region_name=REGION), bus)
    events = JobEvents(publisher)
    stack.upload("incoming/good.zip", zip_bytes(SCENE))
    stack.upload("incoming/evil.zip", zip_bytes({"../escape.txt": b"x"}))
    stack.enqueue("incoming/good.zip")
    stack.enqueue("incoming/evil.zip")

    # WHEN the worker processes them, then the good one's duplicate
    stack.run(events=events)
    stack.enqueue("incoming/good.zip")
    stack.run(events=events)
    assert publisher.flush(timeout=30)

    # THEN every state change arrived as an event that matches the documented schema
    delivered = received_events(stack.sqs, events_queue)
    for event in delivered:
        jsonschema.validate(event, SCHEMA, cls=jsonschema.Draft202012Validator)
    by_key: dict[str, list[str]] = {}
    for event in delivered:
        by_key.setdefault(event["detail"]["job"]["key"], []).append(event["detail"]["status"])
    assert by_key == {
        "incoming/good.zip": ["started", "succeeded", "skipped"],
        "incoming/evil.zip": ["started", "failed"],
    }
    failed = next(event["detail"] for event in delivered if event["detail"]["status"] == "failed")
    assert failed["error"]["type"] == "UnsafeArchive"
    assert failed["manifest_key"] == "results/evil.zip/manifest.json"
    succeeded = next(event["detail"] for event in delivered if event["detail"]["status"] == "succeeded")
    assert succeeded["outputs"] == 1
    assert set(succeeded["durations"]) >= {"download", "unpack", "process", "upload", "total"}
    publisher.close()


def test_job_goes_on_when_the_bus_does_not_exist(stack: Stack) -> None:
    # GIVEN a publisher to a bus that is not there (EventBridge refuses every call)
    publisher = EventPublisher(boto3.client("events", region_name=REGION), "no-such-bus")
    stack.upload("incoming/good.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/good.zip")

    # WHEN the worker runs the job
    summary = stack.run(events=JobEvents(publisher))
    assert publisher.flush(timeout=30)

    # THEN the job succeeded all the same, and the lost events were counted
    assert summary.to_dict()["processed"] == 1
    assert stack.manifest("incoming/good.zip")["status"] == "succeeded"
    assert publisher.dropped >= 2
    publisher.close()


def test_cancel_of_a_queued_job_never_runs_it(stack: Stack, python_command: Callable[[str], str]) -> None:
    # GIVEN a queued upload that lew cancel was asked to cancel
    stack.upload("incoming/queued.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/queued.zip")
    client = Client(target_of(stack))
    upload = client.upload("queued.zip")
    result = client.cancel(upload, requested_by="tester")
    assert result.state == "queued"
    assert client.cancel_requested(upload)
    recorded = JobEvents(keep=20)

    # WHEN a worker receives it
    summary = stack.run(events=recorded, processor="command", process_command=python_command(TOUCH_OUTPUT))

    # THEN the processor never ran, a cancelled manifest says why, the message and the marker are gone
    manifest = stack.manifest("incoming/queued.zip")
    assert manifest["status"] == "cancelled"
    assert manifest["outputs"] == []
    assert manifest["error"]["type"] == "JobCancelled"
    assert "tester" in manifest["error"]["message"]
    assert summary.to_dict()["cancelled"] == 1
    assert stack.queue_counts() == (0, 0)
    assert not client.cancel_requested(upload)
    assert [event["status"] for event in recorded.published] == ["cancelled"]
    assert client.state(upload).status == "cancelled"
    # AND a second cancel is a one-line refusal
    with pytest.raises(JobFinishedError, match=r"already cancelled: nothing to cancel \(manifest results/queued\.zip/"):
        client.cancel(upload)


def test_cancel_of_a_queued_job_is_in_its_manifest_at_once_and_a_later_duplicate_is_a_skip(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN a queued upload, cancelled before any worker saw it
    stack.upload("incoming/early.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/early.zip")
    client = Client(target_of(stack))
    upload = client.upload("early.zip")
    client.cancel(upload, requested_by="tester")

    # THEN its manifest says cancelled at once (the worker reads it before any job: no request of its own)
    early = stack.manifest("incoming/early.zip")
    assert early["status"] == "cancelled" and early["attempt"] == 0
    assert "before a worker started it" in early["error"]["message"]

    # WHEN a worker settles it, and then a duplicate of the message arrives
    stack.run(processor="command", process_command=python_command(TOUCH_OUTPUT))
    settled = stack.manifest("incoming/early.zip")
    stack.enqueue("incoming/early.zip")
    recorded = JobEvents(keep=20)
    summary = stack.run(events=recorded, processor="command", process_command=python_command(TOUCH_OUTPUT))

    # THEN the worker completed the manifest once, and the duplicate was skipped without running anything
    assert settled["status"] == "cancelled" and settled["attempt"] == 1
    assert stack.manifest("incoming/early.zip") == settled
    assert summary.to_dict()["skipped"] == 1
    assert [event["status"] for event in recorded.published] == ["skipped"]
    assert stack.queue_counts() == (0, 0)


def test_cancel_of_a_running_job_kills_its_process_tree(
    stack: Stack, python_command: Callable[[str], str], tmp_path: Path
) -> None:
    # GIVEN a job whose command reports progress and runs long, with a child process
    pids_file = tmp_path / "pids"
    command = python_command(LONG_RUNNER.replace("PIDS_FILE", repr(str(pids_file))))
    stack.upload("incoming/long.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/long.zip")
    client = Client(target_of(stack))
    upload: Upload = client.upload("long.zip")
    recorded = JobEvents(keep=20)
    summaries: list[Summary] = []
    worker = threading.Thread(
        target=lambda: summaries.append(
            stack.run(events=recorded, processor="command", process_command=command, job_timeout=150)
        ),
        daemon=True,
    )
    worker.start()

    # WHEN its progress shows in the claim, and then lew cancel is asked
    wait_until(lambda: client.state(upload).progress is not None, "the job's progress in its claim")
    state = client.state(upload)
    assert state.status == "running"
    assert (state.progress.done, state.progress.total, state.progress.message) == (3, 10, "step 3")  # type: ignore[union-attr]
    assert client.cancel(upload).state == "running"

    # THEN the worker stops it within a beat: a cancelled manifest, the message deleted, the process tree gone
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert summaries[0].to_dict()["cancelled"] == 1
    assert stack.manifest("incoming/long.zip")["status"] == "cancelled"
    assert stack.queue_counts() == (0, 0)
    statuses = [event["status"] for event in recorded.published]
    assert statuses[0] == "started"
    assert "progress" in statuses
    assert statuses[-1] == "cancelled"
    progress = next(event for event in recorded.published if event["status"] == "progress")
    assert progress["progress"] == {"done": 3, "total": 10, "message": "step 3"}
    assert client.state(upload).status == "cancelled"
    assert not any(_alive(int(pid)) for pid in pids_file.read_text().split())


def _alive(pid: int) -> bool:
    """Running (a killed process whose parent has not reaped it yet is a zombie: dead)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_retrying_and_dead_lettered_events_carry_their_cause(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN a job whose command fails in a way worth retrying, and a message whose results could never be stored
    stack.upload("incoming/flaky.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/flaky.zip")
    too_long = "incoming/" + "a" * 1010 + ".zip"
    stack.enqueue(too_long)
    recorded = JobEvents(keep=20)

    # WHEN the worker handles both
    stack.run(events=recorded, processor="command", process_command=python_command("raise SystemExit(1)"))

    # THEN the first is retrying with its transient error, the second dead-lettered with the reason, both valid
    for detail in recorded.published:
        event = {"source": "lew", "detail-type": "lew Job State Change", "detail": detail}
        jsonschema.validate(event, SCHEMA, cls=jsonschema.Draft202012Validator)
    by_key = {detail["job"]["key"]: detail for detail in recorded.published if detail["status"] != "started"}
    retrying = by_key["incoming/flaky.zip"]
    assert retrying["status"] == "retrying"
    assert (retrying["error"]["type"], retrying["error"]["permanent"]) == ("ProcessorRetry", False)
    dead = by_key[too_long]
    assert dead["status"] == "dead-lettered"
    assert "S3's limit of 1024" in dead["error"]["message"]
    assert stack.queue_counts(stack.dlq_url)[0] == 1


def test_a_cancelled_upload_uploaded_again_runs_and_wait_sees_its_new_outcome(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN an upload cancelled while queued, settled by a worker
    stack.upload("incoming/again.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/again.zip")
    client = Client(target_of(stack), poll_seconds=0.05)
    client.cancel(client.upload("again.zip"), requested_by="tester")
    command = python_command(TOUCH_OUTPUT)
    assert stack.run(processor="command", process_command=command).to_dict()["cancelled"] == 1
    finished = datetime.strptime(stack.manifest("incoming/again.zip")["finished_at"], "%Y-%m-%dT%H:%M:%S%z")

    # WHEN the same bytes are uploaded again, after the cancel's second (an unversioned bucket: the same ETag)
    wait_until(lambda: datetime.now(UTC) >= finished + timedelta(seconds=1.1), "the clock to pass the cancel")
    stack.upload("incoming/again.zip", zip_bytes(SCENE))
    again = client.upload("again.zip")
    # THEN lew does not take the old cancel for its outcome
    assert client.state(again).status == "queued"
    # AND the worker runs the new upload (S3's event says it came after the cancel), not skipping it as cancelled
    record = s3_record(BUCKET, "incoming/again.zip", etag=again.etag, size=1)
    record["eventTime"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    stack.send({"Records": [record]})
    assert stack.run(processor="command", process_command=command).to_dict()["processed"] == 1
    assert client.wait(again, timeout=30).status == "succeeded"


def test_a_retrying_job_shows_as_retrying_with_its_last_error_not_queued(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN a job whose command fails (exit 1: retried)
    stack.upload("incoming/flaky.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/flaky.zip")
    client = Client(target_of(stack))
    upload = client.upload("flaky.zip")

    # WHEN its first attempt fails and the message waits for the next one
    failing = python_command("import sys; sys.stderr.write('KeyError: amount\\n'); sys.exit(1)")
    assert stack.run(processor="command", process_command=failing).to_dict()["retried"] == 1

    # THEN lew says it is retrying, after which attempt of how many, and why
    state = client.state(upload)
    assert (state.status, state.attempt, state.max_attempts, state.finished) == ("retrying", 1, 5, False)
    assert "KeyError: amount" in (state.error or "")
    line = JobLine.of_state("flaky.zip", state).describe()
    assert line.startswith("retrying after attempt 1 of 5: ProcessorRetry: ")
    # AND a wait that runs out says what it last saw
    timed_out = client.wait(upload, timeout=0.2)
    assert (timed_out.status, timed_out.attempt) == ("timed out", 1)
    assert "KeyError: amount" in (timed_out.error or "")
    # AND cancelling it while it waits for its next attempt stops it: that attempt never runs
    assert client.cancel(upload, requested_by="tester").state == "retrying"
    stack.enqueue("incoming/flaky.zip")  # the next attempt (a copy: the original waits out its backoff)
    assert stack.run(processor="command", process_command=failing).to_dict()["cancelled"] == 1
    cancelled = client.state(upload)
    assert cancelled.status == "cancelled" and "tester" in (cancelled.error or "")
    # AND another upload of the key (other bytes) is not taken for that job
    stack.upload("incoming/flaky.zip", zip_bytes({"other.pov": b"sphere { 0, 2 }\n"}))
    assert client.state(client.upload("flaky.zip")).status == "queued"
