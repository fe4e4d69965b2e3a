"""Scheduled jobs on the launcher's side: the schedule's event, the run id, the work message, the skip rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lew_launcher.events import EventKind, UnsupportedEvent, parse_event
from lew_launcher.messages import message_body
from lew_launcher.schedule import ScheduleEventError, run_id, schedule_event
from lew_launcher.settings import Settings
from lew_launcher.skips import skip_reason
from worker.messages import Jobs, Poison, parse_body
from worker.runs import RUN_ID

LoadEvent = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize(
    ("scheduled_time", "expected"),
    [
        ("2026-11-30T03:00:00Z", "20261130T030000Z"),
        ("2026-11-30T03:00:00+00:00", "20261130T030000Z"),
        ("2026-11-30T04:00:00+01:00", "20261130T030000Z"),  # another zone: the run is named in UTC
        ("2026-11-30T03:00:00.123Z", "20261130T030000.123Z"),
        ("2026-11-30T03:00:00.123456Z", "20261130T030000.123456Z"),
    ],
)
def test_run_id_is_the_scheduled_time_in_basic_format_utc(scheduled_time: str, expected: str) -> None:
    assert run_id(scheduled_time) == expected
    assert RUN_ID.fullmatch(expected)  # the worker accepts every id the launcher makes


@pytest.mark.parametrize(
    ("scheduled_time", "words"),
    [
        ("<aws.scheduler.scheduled-time>", "only EventBridge Scheduler fills it in"),
        ("yesterday", "not an ISO 8601 time"),
        ("2026-11-30T03:00:00", "no time zone"),
    ],
)
def test_run_id_of_a_bad_time_names_the_field(scheduled_time: str, words: str) -> None:
    with pytest.raises(ScheduleEventError, match="scheduledTime") as raised:
        run_id(scheduled_time)
    assert words in str(raised.value)


def test_parse_event_scheduled_job_is_one_object_with_its_run(load_event: LoadEvent) -> None:
    # GIVEN the sample event the template's schedule sends
    parsed = parse_event(load_event("scheduled-job"))

    # THEN it is one object to process, named by its run
    assert parsed.kind is EventKind.SCHEDULED_JOB
    (notice,) = parsed.objects
    assert (notice.bucket, notice.key, notice.created) == ("lew-uploads-example", "schedules/nightly-etl.zip", True)
    assert notice.run is not None
    assert notice.run.id == "20261130T030000Z"
    assert notice.run.schedule == "arn:aws:scheduler:us-east-1:123456789012:schedule/default/lew-job-schedule"
    assert (notice.size, notice.etag, notice.version_id) == (None, None, None)  # the worker reads the current object


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda detail: detail.pop("key"), "detail.key"),
        (lambda detail: detail.update(bucket=""), "detail.bucket"),
        (lambda detail: detail.update(scheduledTime=3), "detail.scheduledTime"),
        (lambda detail: detail.update(schedule=["x"]), "detail.schedule"),
    ],
)
def test_parse_event_bad_scheduled_job_is_refused_naming_the_field(
    load_event: LoadEvent, change: Callable[[dict[str, Any]], object], words: str
) -> None:
    event = load_event("scheduled-job")
    change(event["detail"])
    with pytest.raises(UnsupportedEvent, match="scheduled job") as raised:
        parse_event(event)
    assert words in str(raised.value)


def test_the_templates_input_with_placeholders_left_is_refused_in_one_line() -> None:
    # GIVEN the schedule's Input as the template writes it, sent by hand (e.g. sam local invoke of a copy)
    event = schedule_event("b", "schedules/etl.zip", "<aws.scheduler.scheduled-time>", "<aws.scheduler.schedule-arn>")
    # THEN the launcher says what to use instead
    with pytest.raises(UnsupportedEvent, match="lew schedule fire"):
        parse_event(event)


def test_work_message_of_a_run_names_it_and_the_worker_reads_it_back(load_event: LoadEvent) -> None:
    # GIVEN a scheduled job's object
    (notice,) = parse_event(load_event("scheduled-job")).objects

    # WHEN its work message is built
    body = message_body(notice)
    (record,) = json.loads(body)["Records"]

    # THEN it is an S3-shaped record made by lew, carrying the run, with no object details to go stale
    assert record["eventSource"] == "lew:schedule"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["lew"] == {
        "run": "20261130T030000Z",
        "scheduledTime": "2026-11-30T03:00:00Z",
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/lew-job-schedule",
    }
    assert record["s3"]["object"] == {"key": "schedules/nightly-etl.zip"}
    # AND the worker parses it into the same key and run
    parsed = parse_body(body)
    assert isinstance(parsed, Jobs)
    (job,) = parsed.jobs
    assert job.key == "schedules/nightly-etl.zip"
    assert job.run is not None and job.run.id == "20261130T030000Z"


def test_skip_rules_let_a_scheduled_key_lie_outside_the_input_prefix(load_event: LoadEvent) -> None:
    # GIVEN settings for incoming/ and .zip, and a scheduled key outside incoming/
    settings = Settings.from_env(
        {
            "QUEUE_URL": "https://sqs/q",
            "CLUSTER": "c",
            "TASK_DEFINITION": "t",
            "SUBNETS": "subnet-1",
            "SUFFIXES": ".zip",
        }
    )
    (notice,) = parse_event(load_event("scheduled-job")).objects
    # THEN it is work, while an upload of the same key would be skipped
    assert skip_reason(notice, settings) is None
    (upload,) = parse_event(schedule_event("b", "results/x.zip", "2026-11-30T03:00:00Z")).objects
    assert skip_reason(upload, settings) == "key is under RESULT_PREFIX 'results/'"
    (other,) = parse_event(schedule_event("b", "schedules/etl.tar", "2026-11-30T03:00:00Z")).objects
    assert "SUFFIXES" in (skip_reason(other, settings) or "")


@pytest.mark.parametrize("run", ["../x", "20261130", "20261130T030000Z/..", "", 7])
def test_worker_calls_a_message_with_a_bad_run_id_poison(run: object) -> None:
    # GIVEN a work message whose lew block names a run in another shape (a path, a date, a number)
    record = {
        "eventSource": "lew:schedule",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "b"}, "object": {"key": "schedules/etl.zip"}},
        "lew": {"run": run},
    }
    # THEN it is poison, naming the field
    parsed = parse_body(json.dumps({"Records": [record]}))
    assert isinstance(parsed, Poison)
    assert "lew.run" in parsed.reason
