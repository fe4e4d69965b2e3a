"""The launcher's `queued` events: the documented schema, batching, and never failing the launch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lew_launcher import job_events
from lew_launcher.events import ObjectNotice

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((REPO_ROOT / "docs" / "job-event.schema.json").read_text(encoding="utf-8"))


def notice(key: str = "incoming/my scène.zip") -> ObjectNotice:
    return ObjectNotice(
        bucket="lew-bucket",
        key=key,
        event_name="ObjectCreated:Put",
        event_time="2026-11-30T16:00:00.000Z",
        region="us-east-1",
        size=1234,
        etag='"abc"',
        version_id="v1",
    )


class FakeEventBridge:
    def __init__(self, *, fail: bool = False, refuse: bool = False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail, self.refuse = fail, refuse

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls.append(Entries)
        if self.fail:
            raise ConnectionError("EventBridge is unreachable")
        code = {"ErrorCode": "AccessDenied", "ErrorMessage": "no"} if self.refuse else {"EventId": "1"}
        return {"Entries": [code for _ in Entries]}


def test_queued_event_matches_the_documented_schema() -> None:
    # GIVEN the entry the launcher sends for an enqueued object
    client = FakeEventBridge()
    assert job_events.publish_queued([notice()], bus_name="lew-jobs", client=client) == 1
    entry = client.calls[0][0]
    event = {
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }

    # THEN it is a valid job event, naming the object as the worker will
    jsonschema.validate(event, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert event["detail"]["status"] == "queued"
    assert event["detail"]["job"] == {
        "bucket": "lew-bucket",
        "key": "incoming/my scène.zip",
        "version_id": "v1",
        "etag": "abc",
        "size": 1234,
        "run": None,
    }
    assert entry["EventBusName"] == "lew-jobs"


def test_queued_events_go_in_batches_of_ten() -> None:
    client = FakeEventBridge()
    notices = [notice(f"incoming/{n}.zip") for n in range(23)]
    assert job_events.publish_queued(notices, bus_name="lew-jobs", client=client) == 23
    assert [len(batch) for batch in client.calls] == [10, 10, 3]


def test_no_bus_publishes_nothing() -> None:
    client = FakeEventBridge()
    assert job_events.publish_queued([notice()], bus_name="", client=client) == 0
    assert client.calls == []


@pytest.mark.parametrize("client", [FakeEventBridge(fail=True), FakeEventBridge(refuse=True)])
def test_a_failure_to_publish_never_fails_the_launch(
    client: FakeEventBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    assert job_events.publish_queued([notice(), notice("incoming/b.zip")], bus_name="lew-jobs", client=client) == 0
    assert '"EventsNotPublished"' in capsys.readouterr().out
