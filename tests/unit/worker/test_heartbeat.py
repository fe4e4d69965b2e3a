"""The visibility heartbeat, with a fake SQS client."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import EndpointConnectionError

from worker.heartbeat import Heartbeat
from worker.messages import Received


class FakeSQS:
    def __init__(self, failed_ids: tuple[str, ...] = (), error: Exception | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.failed_ids = failed_ids
        self.error = error
        self.called = threading.Event()

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        self.called.set()
        if self.error:
            raise self.error
        failed = [
            {"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid", "SenderFault": True}
            for entry in Entries
            if entry["ReceiptHandle"] in self.failed_ids
        ]
        return {"Successful": [], "Failed": failed}


def messages(count: int) -> list[Received]:
    return [Received(f"id-{i}", f"handle-{i}", "{}", 1) for i in range(count)]


def test_heartbeat_extends_every_held_message_in_batches_of_ten() -> None:
    sqs = FakeSQS()
    heartbeat = Heartbeat(sqs, "queue", visibility_timeout=30, interval=10)  # type: ignore[arg-type]
    heartbeat.hold(messages(12))

    heartbeat.beat()

    assert [len(call) for call in sqs.calls] == [10, 2]
    assert {entry["VisibilityTimeout"] for call in sqs.calls for entry in call} == {30}
    assert sorted(entry["ReceiptHandle"] for call in sqs.calls for entry in call) == sorted(
        f"handle-{i}" for i in range(12)
    )


def test_heartbeat_stops_extending_a_settled_message() -> None:
    sqs = FakeSQS()
    heartbeat = Heartbeat(sqs, "queue", visibility_timeout=30, interval=10)  # type: ignore[arg-type]
    heartbeat.hold(messages(2))

    result = heartbeat.settle("id-0", lambda: "deleted")
    heartbeat.beat()

    assert result == "deleted"
    assert [entry["ReceiptHandle"] for entry in sqs.calls[0]] == ["handle-1"]


def test_heartbeat_forgets_messages_sqs_no_longer_knows() -> None:
    sqs = FakeSQS(failed_ids=("handle-1",))
    heartbeat = Heartbeat(sqs, "queue", visibility_timeout=30, interval=10)  # type: ignore[arg-type]
    heartbeat.hold(messages(3))

    heartbeat.beat()

    assert heartbeat.held == ["id-0", "id-2"]


def test_heartbeat_survives_a_failed_call() -> None:
    sqs = FakeSQS(error=EndpointConnectionError(endpoint_url="https://sqs"))
    heartbeat = Heartbeat(sqs, "queue", visibility_timeout=30, interval=10)  # type: ignore[arg-type]
    heartbeat.hold(messages(1))

    heartbeat.beat()

    assert heartbeat.held == ["id-0"]


def test_heartbeat_thread_beats_until_stopped() -> None:
    sqs = FakeSQS()
    heartbeat = Heartbeat(sqs, "queue", visibility_timeout=3, interval=0.05)  # type: ignore[arg-type]
    heartbeat.hold(messages(1))

    with heartbeat.running():
        assert sqs.called.wait(timeout=2)

    beats = len(sqs.calls)
    assert not any(thread.name == "heartbeat" for thread in threading.enumerate())
    assert len(sqs.calls) == beats
