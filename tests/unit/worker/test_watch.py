"""The job watch: progress into the claim and events (rate-limited, only on change), cancel requests, the stop."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from botocore.exceptions import ClientError

from worker.events import JobEvents
from worker.messages import Job
from worker.progress import Progress
from worker.watch import JobWatch

JOB = Job("b", "incoming/a.zip", etag="abc")


class FakeS3:
    """get_object of the cancel marker: 404 until a request is put."""

    def __init__(self) -> None:
        self.marker: dict[str, Any] | None = None
        self.gets = 0

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.gets += 1
        if self.marker is None:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")
        return {"Body": io.BytesIO(json.dumps(self.marker).encode())}


class FakeClaim:
    def __init__(self) -> None:
        self.progress: dict[str, Any] | None = None
        self.refreshes: list[dict[str, Any] | None] = []

    def refresh(self) -> None:
        self.refreshes.append(self.progress)


def watch(s3: FakeS3, claim: FakeClaim, events: JobEvents, *, progress_seconds: float) -> JobWatch:
    return JobWatch(
        s3=s3,  # type: ignore[arg-type]
        job=JOB,
        claim=claim,  # type: ignore[arg-type]
        cancel_key="results/.lew-claims/a.cancel.json",
        events=events,
        abort=threading.Event(),
        attempt=1,
        progress_seconds=progress_seconds,
    )


def test_progress_reaches_claim_and_events_only_when_it_changed() -> None:
    # GIVEN a watch reading a progress that changes once
    claim, events = FakeClaim(), JobEvents(keep=10)
    subject = watch(FakeS3(), claim, events, progress_seconds=0)
    reports = iter([Progress(1, 4), Progress(1, 4), Progress(2, 4, "half"), None])
    subject.read_progress_with(lambda: next(reports))

    # WHEN it beats four times
    for _ in range(4):
        subject.beat()

    # THEN the claim and the events got each change once
    expected = [{"done": 1, "total": 4, "message": None}, {"done": 2, "total": 4, "message": "half"}]
    assert claim.refreshes == expected
    assert [event["progress"] for event in events.published] == expected
    assert {event["status"] for event in events.published} == {"progress"}


def test_progress_events_carry_the_jobs_validated_parameters() -> None:
    # GIVEN a watch whose job's parameters were validated
    events = JobEvents(keep=10)
    subject = watch(FakeS3(), FakeClaim(), events, progress_seconds=0)
    subject.parameters = {"width": 640, "antialias": 0.3}
    subject.read_progress_with(lambda: Progress(1, 4))

    # WHEN it reports progress
    subject.beat()

    # THEN the progress event names them, typed
    assert [event["parameters"] for event in events.published] == [{"width": 640, "antialias": 0.3}]


def test_progress_is_published_at_most_once_per_interval() -> None:
    claim, events = FakeClaim(), JobEvents(keep=10)
    subject = watch(FakeS3(), claim, events, progress_seconds=3600)
    reports = iter([Progress(1, 4), Progress(2, 4), Progress(3, 4)])
    subject.read_progress_with(lambda: next(reports))

    for _ in range(3):
        subject.beat()

    assert len(events.published) == 1  # the later changes wait for the interval
    assert subject.progress == Progress(3, 4)  # but the latest is known


def test_a_cancel_request_for_this_upload_interrupts_the_job() -> None:
    # GIVEN no request, then one for another upload, then one for this one
    s3 = FakeS3()
    subject = watch(s3, FakeClaim(), JobEvents(), progress_seconds=0)
    subject.beat()
    assert not subject.interrupt.is_set()
    s3.marker = {"etag": "older", "requested_at": "2026-11-30T16:00:00Z"}
    subject.beat()
    assert not subject.interrupt.is_set()

    s3.marker = {"etag": "abc", "requested_at": "2026-11-30T16:00:01Z", "requested_by": "ann"}
    subject.beat()

    # THEN the job is interrupted and knows who asked
    assert subject.interrupt.is_set()
    assert subject.cancel_request is not None and subject.cancel_request.requested_by == "ann"


def test_the_workers_stop_interrupts_the_running_job() -> None:
    subject = watch(FakeS3(), FakeClaim(), JobEvents(), progress_seconds=0)
    with subject.running():
        subject.abort.set()
        assert subject.interrupt.wait(10)
    assert not subject.cancelled
