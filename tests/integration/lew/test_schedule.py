"""`lew schedule fire` / `upload` and the local runtime's schedule clock, against moto."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lew.client import Client
from lew.errors import LewError
from lew.local.lambda_runtime import JobSchedule, LocalLambdaRuntime
from lew.schedule import fire, rate_seconds, scheduled_time_text
from lew.target import Target
from lew_launcher.schedule import run_id, schedule_event
from tests.integration.conftest import REGION, moto_target

BUCKET = "lew-schedule-bucket"
KEY = "schedules/etl.zip"


@pytest.fixture
def target(aws: None) -> Target:
    """A moto bucket and queues as a local stack with ScheduleObjectKey KEY and a launcher inbox."""
    sqs = boto3.client("sqs", region_name=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    work, dlq = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("work", "dlq"))
    inbox_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    return dataclasses.replace(moto_target(BUCKET, work, dlq), schedule_key=KEY, launcher_inbox_url=inbox_url)


def inbox(target: Target) -> list[dict[str, Any]]:
    received = target.sqs.receive_message(QueueUrl=target.launcher_inbox_url, MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in received.get("Messages", [])]


def test_fire_sends_the_schedules_event_to_the_local_launcher(target: Target, tmp_path: Path) -> None:
    # GIVEN the scheduled archive, uploaded with `lew schedule upload` (with a job parameter for every run)
    archive = tmp_path / "etl.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    client = Client(target)
    assert client.upload_scheduled(archive, parameters={"mode": "full"}) == KEY
    assert target.s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"] == {"lew-param-mode": "full"}

    # WHEN two runs are fired, one for a tick that was missed
    at = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    missed = fire(target, at=at)
    now = client.fire_schedule()

    # THEN the launcher's inbox has the schedule's own event for each, and each run has its own manifest key
    assert missed.run == "20261130T030000Z"
    assert missed.manifest_key == "results/.lew-runs/schedules%2Fetl.zip/20261130T030000Z/manifest.json"
    first, second = inbox(target)
    assert first == schedule_event(BUCKET, KEY, "2026-11-30T03:00:00Z", "lew-local-schedule")
    assert second == schedule_event(BUCKET, KEY, second["detail"]["scheduledTime"], "lew-local-schedule")
    assert run_id(second["detail"]["scheduledTime"]) == now.run
    assert now.run != missed.run and now.key == KEY and now.etag is None


def test_fire_without_a_schedule_or_an_object_says_what_to_do(target: Target) -> None:
    # GIVEN a stack with no ScheduleObjectKey
    bare = Target(**{**target.__dict__, "schedule_key": ""})
    with pytest.raises(LewError, match=r"has no scheduled job \(ScheduleObjectKey is empty\): name the object"):
        fire(bare)
    # AND a schedule whose object was never uploaded
    with pytest.raises(LewError, match=r"no such object; upload the scheduled archive first: `lew schedule upload"):
        fire(target)
    assert inbox(target) == []


def test_upload_scheduled_refuses_what_the_stack_would_not_process(target: Target, tmp_path: Path) -> None:
    archive = tmp_path / "etl.zip"
    archive.write_bytes(b"PK")
    client = Client(target)
    refused = r"^schedules/etl.rar: the stack only processes .zip files, so the launcher would refuse every run$"
    with pytest.raises(LewError, match=refused):
        client.upload_scheduled(archive, "schedules/etl.rar")
    with pytest.raises(LewError, match="ScheduleObjectKey is empty"):
        Client(Target(**{**target.__dict__, "schedule_key": ""})).upload_scheduled(archive)


@dataclass(frozen=True)
class DeployedTarget(Target):
    """A deployed stack's target whose Lambda client is stubbed (moto's Invoke would need Docker)."""

    stub: Any = None

    def client(self, service: str) -> Any:
        return self.stub if service == "lambda" else super().client(service)


def test_fire_on_a_deployed_stack_invokes_the_launcher_asynchronously(target: Target) -> None:
    # GIVEN a deployed stack (no inbox; the launcher function's name) with its scheduled object
    target.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"PK")
    lambda_client = boto3.client("lambda", region_name=REGION)
    deployed = DeployedTarget(
        **{**target.__dict__, "launcher_inbox_url": "", "launcher_function": "lew-launcher", "schedule_arn": "arn:s"},
        stub=lambda_client,
    )
    at = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    expected = schedule_event(BUCKET, KEY, "2026-11-30T03:00:00Z", "arn:s")
    with Stubber(lambda_client) as stubber:
        stubber.add_response(
            "invoke",
            {"StatusCode": 202},
            {"FunctionName": "lew-launcher", "InvocationType": "Event", "Payload": json.dumps(expected).encode()},
        )
        # WHEN a run is fired, THEN the launcher is invoked as Scheduler invokes it
        assert fire(deployed, at=at).run == "20261130T030000Z"
        stubber.assert_no_pending_responses()
    # AND a key the deployed worker may not read is refused before anything is sent
    with pytest.raises(
        LewError, match=r"^other/x.zip: a deployed worker may read only incoming/\* and ScheduleObjectKey"
    ):
        fire(deployed, "other/x.zip")


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_seconds_reads_schedulers_rate_expressions(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 3 * * ? *)", "at(2027-01-01T03:00:00)", "rate(0.5 minutes)", ""])
def test_rate_seconds_is_none_for_what_the_local_clock_does_not_run(expression: str) -> None:
    assert rate_seconds(expression) is None


def test_local_runtime_fires_the_job_schedule_on_its_clock(target: Target) -> None:
    # GIVEN the local Lambda runtime with a job schedule of a fraction of a second, and a handler that counts
    fired = threading.Event()
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        if event.get("source") == "lew.schedule":
            events.append(event)
            if len(events) == 2:
                fired.set()
        return {}

    runtime = LocalLambdaRuntime(
        sqs=target.sqs,
        inbox_url=target.launcher_inbox_url,
        failure_url=target.dlq_url,
        handler=handler,
        sink=lambda source, line: None,
        function_name="lew-local-launcher",
        region=REGION,
        account_id="123456789012",
        reconcile_seconds=3600,
        retry_delays=(0.1,),
        job_schedule=JobSchedule(0.2, lambda moment: schedule_event(BUCKET, KEY, scheduled_time_text(moment))),
    )
    runtime.start()
    try:
        # WHEN it runs, THEN it invokes the launcher with the schedule's event at each tick, each a run of its own
        assert fired.wait(60), "the runtime never fired the job schedule twice"
    finally:
        runtime.stop()
    assert [event["detail"]["key"] for event in events[:2]] == [KEY, KEY]
    assert events[0]["detail"]["scheduledTime"] != events[1]["detail"]["scheduledTime"]


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("schedules/etl.txt", "the stack only processes .zip files, so the launcher would refuse every run"),
        ("results/x.zip", "is under the result prefix results/: the launcher refuses it"),
        ("schedules/", "is a folder, not an archive"),
        ("s3://other-bucket/a.zip", "not an object of this stack's bucket lew-schedule-bucket"),
    ],
)
def test_fire_refuses_what_the_launcher_would_refuse_before_sending(target: Target, key: str, words: str) -> None:
    with pytest.raises(LewError, match=re.escape(words)):
        fire(target, key)
    assert inbox(target) == []


def test_fire_takes_an_s3_url_of_the_stacks_bucket(target: Target) -> None:
    target.s3.put_object(Bucket=BUCKET, Key="schedules/other.zip", Body=b"PK")
    assert fire(target, f"s3://{BUCKET}/schedules/other.zip").key == "schedules/other.zip"


def test_fire_of_a_tick_that_has_its_outcome_says_how_to_run_it_again(target: Target) -> None:
    # GIVEN a run whose manifest says it failed
    target.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"PK")
    manifest = "results/.lew-runs/schedules%2Fetl.zip/20261130T030000Z/manifest.json"
    target.s3.put_object(Bucket=BUCKET, Key=manifest, Body=json.dumps({"status": "failed"}).encode())
    # WHEN that tick is fired again, THEN nothing is sent and the line says it is done, and how to redo it
    with pytest.raises(LewError) as raised:
        fire(target, at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    assert str(raised.value) == (
        f"run 20261130T030000Z of {KEY} already failed (s3://{BUCKET}/{manifest}): not run again; "
        f"`lew rerun {KEY} --run 20261130T030000Z` runs it again"
    )
    assert inbox(target) == []


def test_fire_of_a_tick_to_come_is_refused(target: Target) -> None:
    target.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"PK")
    with pytest.raises(LewError, match=r"^--at 2099-11-30T03:00:00Z is in the future: that tick is the schedule's"):
        fire(target, at=datetime(2099, 11, 30, 3, 0, tzinfo=UTC))
    assert inbox(target) == []


def test_job_parameters_are_checked_against_the_stacks_processor_before_uploading(
    target: Target, tmp_path: Path
) -> None:
    archive = tmp_path / "etl.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    declared = Client(dataclasses.replace(target, processor="command", process_parameters="mode:choice:full|delta"))
    # a name the processor does not declare, and a value out of its bounds: one line each, nothing uploaded
    with pytest.raises(LewError, match=r"^--param: parameter foo='1' is unknown to command: it accepts mode"):
        declared.upload_scheduled(archive, parameters={"foo": "1"})
    with pytest.raises(LewError, match=r"^--param: parameter mode='weekly'"):
        declared.submit(archive, parameters={"mode": "weekly"})
    assert "Contents" not in target.s3.list_objects_v2(Bucket=BUCKET)
    # a command processor whose declarations lew cannot see (the image's own) is left to the worker
    unknown = Client(dataclasses.replace(target, processor="command", process_parameters=""))
    assert unknown.upload_scheduled(archive, parameters={"foo": "1"}) == KEY
