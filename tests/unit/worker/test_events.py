"""Job state-change events: every status matches the documented schema, and publishing never holds up a job."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from worker import events
from worker.errors import ProcessorRejected, ProcessorRetry
from worker.events import EventPublisher, JobEvents, job_event, put_events_entry
from worker.messages import Job

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((REPO_ROOT / "docs" / "job-event.schema.json").read_text(encoding="utf-8"))
JOB = Job(bucket="lew-bucket", key="incoming/a/scène one.zip", size=1234, etag="9b2cf535f27731c974343645a3985328")
TASK = "arn:aws:ecs:us-east-1:123456789012:task/lew-cluster/0123456789abcdef"
DURATIONS = {"download": 0.12, "unpack": 0.01, "process": 3.2, "upload": 0.2, "total": 3.6}
PARAMETERS = {"width": 640, "antialias": 0.3, "mode": "fast", "verbose": True}
# The fields the worker passes for each transition (worker/job.py, worker/watch.py, worker/dispatch.py).
FIELDS: dict[str, dict[str, Any]] = {
    events.QUEUED: {},
    events.STARTED: {"attempt": 1, "message_id": "m-1"},
    events.PROGRESS: {
        "attempt": 1,
        "progress": {"done": 3072, "total": 76800, "message": "rendering"},
        "parameters": PARAMETERS,
    },
    events.SUCCEEDED: {
        "attempt": 1,
        "manifest_key": "results/a/scène one/manifest.json",
        "outputs": 2,
        "parameters": PARAMETERS,
    },
    events.FAILED: {
        "attempt": 2,
        "manifest_key": "results/a/m.json",
        "outputs": 0,
        "error": ProcessorRejected("bad"),
        "parameters": {},
    },
    events.RETRYING: {"attempt": 1, "error": ProcessorRetry("exit 1"), "parameters": PARAMETERS},
    events.DEAD_LETTERED: {"attempt": 5, "error": {"type": "ResultKeyTooLong", "message": "long", "permanent": True}},
    events.CANCELLED: {
        "attempt": 1,
        "manifest_key": "results/a/m.json",
        "error": {"type": "JobCancelled", "message": "cancelled (lew cancel)", "permanent": True},
        "parameters": PARAMETERS,
    },
    events.SKIPPED: {"attempt": 2, "manifest_key": "results/a/m.json"},
}


def delivered(detail: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it to a rule's target, from the PutEvents entry the worker sends."""
    entry = put_events_entry(detail, "lew-jobs")
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": detail["time"],
        "region": "us-east-1",
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_status_is_covered_by_the_cases() -> None:
    assert set(FIELDS) == set(events.STATUSES)


@pytest.mark.parametrize("status", events.STATUSES)
def test_job_event_of_every_status_matches_the_schema(status: str) -> None:
    # GIVEN the fields the worker passes for this transition
    # WHEN the event is built and delivered
    event = delivered(job_event(status, JOB, task_arn=TASK, durations=DURATIONS, **FIELDS[status]))

    # THEN it matches the documented schema, names the job, and carries its status
    jsonschema.validate(event, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert event["detail"]["status"] == status
    assert event["detail"]["job"]["key"] == JOB.key
    assert event["resources"] == [f"arn:aws:s3:::{JOB.bucket}/{JOB.key}"]


@pytest.mark.parametrize(
    ("status", "change"),
    [
        (events.FAILED, {"error": None}),
        (events.PROGRESS, {"progress": None}),
        (events.STARTED, {"progress": {"done": 1, "total": 2, "message": None}}),
        (events.SUCCEEDED, {"manifest_key": None}),
        (events.SUCCEEDED, {"surprise": 1}),
        (events.RETRYING, {"attempt": 0}),
        (events.PROGRESS, {"progress": {"done": -1, "total": None, "message": None}}),
        (events.STARTED, {"durations": {"thinking": 1.0}}),
        (events.STARTED, {"status": "paused"}),
        (events.STARTED, {"parameters": {"Width": 640}}),
        (events.SUCCEEDED, {"parameters": {"width": {"value": 640}}}),
        (events.SUCCEEDED, {"parameters": {"width": None}}),
        (events.SUCCEEDED, {"parameters": "width=640"}),
    ],
)
def test_schema_rejects_events_that_break_it(status: str, change: dict[str, Any]) -> None:
    # GIVEN a valid event, changed in one field
    event = delivered(job_event(status, JOB, task_arn=TASK, **FIELDS[status]))
    event["detail"].update(change)

    # THEN the schema refuses it (the schema test above can fail)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(event, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_job_event_carries_the_validated_parameters_typed_by_name_or_null() -> None:
    # GIVEN a job whose processor accepted typed parameters, and one whose parameters are not validated yet
    succeeded = job_event(events.SUCCEEDED, JOB, attempt=1, manifest_key="m", outputs=1, parameters=PARAMETERS)
    started = job_event(events.STARTED, JOB, attempt=1)

    # THEN the first carries them as they are (numbers and booleans stay typed) in its JSON, the second null
    assert json.loads(put_events_entry(succeeded, "bus")["Detail"])["parameters"] == PARAMETERS
    assert started["parameters"] is None
    # AND the largest parameters S3 metadata can carry (2 KB) keep the event far below EventBridge's 256 KB
    many = {f"p{index:02}": "x" * 14 for index in range(80)}
    assert len(put_events_entry(job_event(events.SUCCEEDED, JOB, parameters=many), "bus")["Detail"]) < 8_000


def test_job_event_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="unknown job status 'paused'"):
        job_event("paused", JOB)


def test_job_event_cuts_long_error_messages_and_classifies_exceptions() -> None:
    detail = job_event(events.RETRYING, JOB, attempt=1, error=ProcessorRetry("x" * 10_000))
    assert detail["error"]["type"] == "ProcessorRetry"
    assert detail["error"]["permanent"] is False
    assert len(detail["error"]["message"]) == events.MAX_MESSAGE_CHARS


def test_architecture_doc_has_a_valid_example_of_every_event() -> None:
    # GIVEN the examples in docs/ARCHITECTURE.md's event section
    text = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("## Job state-change events") :]
    blocks = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    examples = [json.loads(block) for block in blocks]
    examples = [example for example in examples if example.get("detail-type") == events.DETAIL_TYPE]

    # THEN each is valid, and every status has one
    for example in examples:
        jsonschema.validate(example, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert sorted({example["detail"]["status"] for example in examples}) == sorted(events.STATUSES)


# --- the publisher ---------------------------------------------------------------------------------------------


class FakeEventBridge:
    """Records PutEvents calls; can fail, refuse entries, or block until released."""

    def __init__(self, *, fail: Exception | None = None, refuse: bool = False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail
        self.refuse = refuse
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.entered.set()
        self.release.wait()
        self.calls.append(Entries)
        if self.fail is not None:
            raise self.fail
        if self.refuse:
            return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "Denied"} for _ in Entries]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i, _ in enumerate(Entries)]}


def detail(status: str = events.STARTED) -> dict[str, Any]:
    return job_event(status, JOB, **FIELDS[status])


def test_publisher_sends_events_to_the_bus_in_batches_of_ten() -> None:
    client = FakeEventBridge()
    client.release.clear()
    publisher = EventPublisher(client, "lew-jobs")
    publisher.publish(detail())
    assert client.entered.wait(10)  # the first call is under way; the rest queue up behind it
    for _ in range(14):
        publisher.publish(detail())
    client.release.set()

    assert publisher.flush(timeout=30)
    assert sum(len(batch) for batch in client.calls) == 15
    assert max(len(batch) for batch in client.calls) == events.PUT_EVENTS_BATCH
    entry = client.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == ("lew", events.DETAIL_TYPE, "lew-jobs")
    assert publisher.sent == 15
    publisher.close()


def test_publisher_never_blocks_the_job_while_eventbridge_hangs() -> None:
    # GIVEN an EventBridge that does not answer
    client = FakeEventBridge()
    client.release.clear()
    publisher = EventPublisher(client, "lew-jobs", max_pending=3)

    # WHEN the job publishes more events than may wait
    publisher.publish(detail())
    assert client.entered.wait(10)
    for _ in range(5):
        publisher.publish(detail())  # returns at once: the calls above hold nothing up

    # THEN the surplus is dropped and counted, and what waits is sent once EventBridge answers
    assert publisher.dropped == 2
    client.release.set()
    assert publisher.flush(timeout=30)
    assert publisher.sent == 4
    publisher.close()


@pytest.mark.parametrize("client", [FakeEventBridge(fail=RuntimeError("boom")), FakeEventBridge(refuse=True)])
def test_publisher_logs_and_counts_what_eventbridge_refuses_or_fails(
    client: FakeEventBridge, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    publisher = EventPublisher(client, "lew-jobs")
    publisher.publish(detail())
    assert publisher.flush(timeout=30)
    publisher.close()

    assert publisher.dropped == 1
    assert "job events not published (the job goes on)" in caplog.messages
    assert '"EventsNotPublished"' in capsys.readouterr().out  # the EMF metric, through the logs


def test_job_events_never_raise_for_an_event_that_cannot_be_built() -> None:
    recorded = JobEvents(keep=5)
    assert recorded.emit("paused", JOB) is None
    assert recorded.published == []


def test_job_events_without_a_publisher_only_build_the_event() -> None:
    recorded = JobEvents(task_arn=TASK, keep=5)
    built = recorded.emit(events.STARTED, JOB, attempt=1)
    assert built is not None and built["task_arn"] == TASK
    assert recorded.published == [built]
    recorded.close()
