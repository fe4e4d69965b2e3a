"""The launcher's handler against moto: every sample event, bursts, RunTask failures and throttling, reconcile."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from lew_launcher import app
from lew_launcher.events import UnsupportedEvent
from lew_launcher.scaling import RunTaskError
from lew_launcher.settings import ConfigurationError

if TYPE_CHECKING:  # fixtures' types; pytest's importlib mode lets no test module import another at run time
    from tests.integration.launcher.conftest import RunTaskSpy, Stack

LoadEvent = Callable[[str], dict[str, Any]]


def capacity_failure(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """RunTask's answer when Fargate has no capacity: HTTP 200, no tasks, one failure per task."""
    reason = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
    arn = "arn:aws:ecs:us-east-1:123456789012:task"
    return 200, {"tasks": [], "failures": [{"arn": f"{arn}/{n}", "reason": reason} for n in range(request["count"])]}


def throttled(_request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 400, {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}


def rate_exceeded(_request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 400, {"Error": {"Code": "InvalidParameterException", "Message": "Rate exceeded"}}


def test_handler_s3_put_enqueues_the_decoded_key_and_starts_a_worker(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    # WHEN the sample upload with a space and a non-ASCII character arrives
    summary = app.handler(load_event("s3-put"), lambda_context)

    # THEN one message carries that exact key, and one Fargate worker of our family is started
    assert stack.keys() == ["incoming/my scène.zip"]
    assert summary == {
        "event": "s3-notification",
        "accepted": 1,
        "skipped": 0,
        "enqueued": 1,
        "backlog": 1,
        "active_tasks": 0,
        "desired_tasks": 1,
        "tasks_started": 1,
    }
    (request,) = run_task_spy.requests
    assert request["count"] == 1
    assert request["startedBy"] == "lew-launcher"
    assert request["launchType"] == "FARGATE"
    assert request["taskDefinition"] == stack.task_definition_arn
    assert request["clientToken"]
    assert request["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": [stack.subnet],
            "securityGroups": [stack.security_group],
            "assignPublicIp": "ENABLED",
        }
    }
    assert len(stack.running_tasks()) == 1


def test_handler_message_body_is_a_one_record_s3_notification(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    app.handler(load_event("s3-put"), lambda_context)

    (body,) = stack.messages()
    (record,) = body["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "lew-uploads-example"
    assert record["s3"]["object"]["key"] == "incoming/my+sc%C3%A8ne.zip"
    assert record["s3"]["object"]["size"] == 48213


def test_handler_s3_put_many_enqueues_every_accepted_record(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    summary = app.handler(load_event("s3-put-many"), lambda_context)

    assert sorted(stack.keys()) == [
        "incoming/batch/SCENE.TAR",
        "incoming/batch/a.zip",
        "incoming/batch/b c.tar.gz",
        "incoming/batch/d+e.tgz",
    ]
    assert (summary["accepted"], summary["skipped"], summary["enqueued"]) == (4, 5, 4)
    assert run_task_spy.counts == [1]  # 4 messages, 5 per worker


@pytest.mark.parametrize("name", ["s3-put-ignored", "s3-test-event", "sns-s3-test-event"])
def test_handler_ignored_events_enqueue_nothing_and_start_nothing(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any, name: str
) -> None:
    summary = app.handler(load_event(name), lambda_context)

    assert stack.keys() == []
    assert run_task_spy.requests == []
    assert (summary["accepted"], summary["skipped"], summary["tasks_started"]) == (0, 1, 0)


def test_handler_eventbridge_object_created(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    summary = app.handler(load_event("eventbridge-object-created"), lambda_context)

    assert stack.keys() == ["incoming/eventbridge/my scène 2.tar.gz"]
    assert summary["event"] == "eventbridge-object-created"
    assert run_task_spy.counts == [1]


def test_handler_s3_event_through_sns_enqueues_it_like_the_plain_event(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    # GIVEN the launcher subscribed to an SNS topic that the bucket notifies
    # WHEN SNS delivers the S3 event
    summary = app.handler(load_event("sns-s3-put"), lambda_context)
    # THEN the object is enqueued (key decoded) and a worker started, as for the plain S3 event
    assert stack.keys() == ["incoming/my scène.zip"]
    assert (summary["event"], summary["accepted"], summary["enqueued"]) == ("sns-notification", 1, 1)
    assert run_task_spy.counts == [1]


def test_handler_reconcile_starts_workers_for_messages_already_waiting(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    # GIVEN 12 messages waiting and no worker (e.g. returned after a worker died)
    stack.enqueue_directly(12)

    # WHEN the schedule fires
    summary = app.handler(load_event("scheduled-reconcile"), lambda_context)

    # THEN ceil(12 / 5) = 3 workers start, and nothing is enqueued
    assert summary == {
        "event": "scheduled-reconcile",
        "accepted": 0,
        "skipped": 0,
        "enqueued": 0,
        "backlog": 12,
        "active_tasks": 0,
        "desired_tasks": 3,
        "tasks_started": 3,
    }
    assert run_task_spy.counts == [3]
    assert len(stack.running_tasks()) == 3


def test_handler_reconcile_starts_none_when_active_tasks_cover_the_backlog(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    stack.enqueue_directly(12)
    app.handler(load_event("scheduled-reconcile"), lambda_context)
    app.LAUNCH_MEMORY.clear()  # as if in a new execution environment: only ECS knows about the tasks

    summary = app.handler(load_event("scheduled-reconcile"), lambda_context)

    assert (summary["active_tasks"], summary["desired_tasks"], summary["tasks_started"]) == (3, 3, 0)
    assert run_task_spy.counts == [3]


def test_handler_reconcile_replaces_stopped_workers(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    # GIVEN three workers were started, then two of them stopped while messages still wait
    stack.enqueue_directly(12)
    app.handler(load_event("scheduled-reconcile"), lambda_context)
    ecs = boto3.client("ecs")
    for arn in stack.running_tasks()[:2]:
        ecs.stop_task(cluster=stack.cluster, task=arn, reason="spot interruption")

    # WHEN the schedule fires again
    summary = app.handler(load_event("scheduled-reconcile"), lambda_context)

    # THEN it tops the fleet up to three again
    assert (summary["active_tasks"], summary["tasks_started"]) == (1, 2)
    assert len(stack.running_tasks()) == 3


def test_handler_reconcile_with_an_empty_queue_starts_nothing(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    summary = app.handler(load_event("scheduled-reconcile"), lambda_context)

    assert (summary["backlog"], summary["desired_tasks"], summary["tasks_started"]) == (0, 0, 0)
    assert summary["active_tasks"] is None  # nothing is wanted, so the tasks are not even counted
    assert run_task_spy.requests == []


def _burst_event(load_event: LoadEvent, count: int) -> dict[str, Any]:
    event = load_event("s3-put")
    template = event["Records"][0]
    records = []
    for index in range(count):
        record = json.loads(json.dumps(template))
        record["s3"]["object"]["key"] = f"incoming/burst/scene+{index:03d}.zip"
        records.append(record)
    return {"Records": records}


def test_handler_burst_of_200_records_in_one_event_starts_at_most_max_workers(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    summary = app.handler(_burst_event(load_event, 200), lambda_context)

    assert summary["enqueued"] == 200
    assert len(stack.keys()) == 200
    assert sum(run_task_spy.counts) == 4
    assert len(stack.running_tasks()) == 4


def test_handler_burst_of_200_separate_events_starts_at_most_max_workers(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    burst = _burst_event(load_event, 200)["Records"]

    summaries = [app.handler({"Records": [record]}, lambda_context) for record in burst]

    assert sum(summary["enqueued"] for summary in summaries) == 200
    assert len(stack.running_tasks()) == 4
    assert sum(run_task_spy.counts) == 4
    assert len(set(stack.keys())) == 200


def test_handler_many_workers_are_started_ten_per_run_task_call(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_WORKERS", "25")

    summary = app.handler(_burst_event(load_event, 200), lambda_context)

    assert summary["desired_tasks"] == 25
    assert run_task_spy.counts == [10, 10, 5]
    assert len({request["clientToken"] for request in run_task_spy.requests}) == 3
    assert len(stack.running_tasks()) == 25


def test_handler_fargate_spot_uses_the_capacity_provider_strategy(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPACITY_PROVIDER", "FARGATE_SPOT")

    app.handler(load_event("s3-put"), lambda_context)

    (request,) = run_task_spy.requests
    assert "launchType" not in request
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert len(stack.running_tasks()) == 1


def test_handler_retries_capacity_failures_then_starts_the_worker(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    run_task_spy.answers = [capacity_failure, capacity_failure]

    summary = app.handler(load_event("s3-put"), lambda_context)

    assert summary["tasks_started"] == 1
    assert len(run_task_spy.requests) == 3
    assert len({request["clientToken"] for request in run_task_spy.requests}) == 3
    assert len(stack.running_tasks()) == 1


@pytest.mark.parametrize("failure", [capacity_failure, throttled, rate_exceeded])
def test_handler_run_task_keeps_failing_raises_and_the_message_stays_queued(
    stack: Stack,
    run_task_spy: RunTaskSpy,
    load_event: LoadEvent,
    lambda_context: Any,
    failure: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]],
) -> None:
    # GIVEN RunTask fails on every attempt
    run_task_spy.answers = [failure] * 10

    # WHEN an upload arrives, THEN the invocation fails after a bounded number of attempts (Lambda retries it)
    with pytest.raises(RunTaskError, match="started 0 of 1 worker"):
        app.handler(load_event("s3-put"), lambda_context)
    assert len(run_task_spy.requests) == 4  # the attempts of the test's RetryPolicy
    assert stack.running_tasks() == []

    # AND the work message is safe on the queue, so the next reconcile starts a worker for it
    run_task_spy.answers = []
    summary = app.handler(load_event("scheduled-reconcile"), lambda_context)
    assert summary["tasks_started"] == 1
    assert stack.keys() == ["incoming/my scène.zip"]


def test_handler_throttling_then_success(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    run_task_spy.answers = [throttled, rate_exceeded]

    summary = app.handler(load_event("s3-put"), lambda_context)

    assert summary["tasks_started"] == 1
    # Repeating a throttled request as is can never start its tasks twice.
    assert len({request["clientToken"] for request in run_task_spy.requests}) == 1


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_unsupported_event_raises_and_enqueues_nothing(
    stack: Stack, run_task_spy: RunTaskSpy, lambda_context: Any
) -> None:
    with pytest.raises(UnsupportedEvent, match="top-level keys: hello"):
        app.handler({"hello": "world"}, lambda_context)

    assert stack.keys() == []
    assert run_task_spy.requests == []


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_configuration_error_names_the_variable(
    stack: Stack, load_event: LoadEvent, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUEUE_URL")
    monkeypatch.setenv("MAX_WORKERS", "lots")

    with pytest.raises(ConfigurationError) as raised:
        app.handler(load_event("s3-put"), lambda_context)

    assert "QUEUE_URL is required" in str(raised.value)
    assert "MAX_WORKERS must be a whole number, got 'lots'" in str(raised.value)
    assert stack.keys() == []


def metric_values(emf: dict[str, Any], name: str) -> list[float]:
    """A metric's values in an EMF document (Powertools writes one value or a list of them)."""
    value = emf[name]
    return value if isinstance(value, list) else [value]


def test_handler_logs_json_with_bucket_and_key_and_emits_metrics(  # noqa: PLR0917  # pytest passes fixtures
    stack: Stack,
    run_task_spy: RunTaskSpy,
    load_event: LoadEvent,
    lambda_context: Any,
    emf_documents: Callable[[], list[dict[str, Any]]],
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    app.handler(load_event("s3-put-many"), lambda_context)

    lines = log_lines()
    accepted = [line for line in lines if line.get("message") == "Accepted object"]
    skipped = [line for line in lines if line.get("message") == "Skipped object"]
    assert {line["key"] for line in accepted} == {
        "incoming/batch/a.zip",
        "incoming/batch/b c.tar.gz",
        "incoming/batch/d+e.tgz",
        "incoming/batch/SCENE.TAR",
    }
    assert all(line["bucket"] == "lew-uploads-example" for line in accepted + skipped)
    assert any(line["key"] == "other/x.zip" and "INPUT_PREFIX" in line["reason"] for line in skipped)
    (summary,) = [line for line in lines if line.get("message") == "Launcher summary"]
    assert "key" not in summary  # the per-object keys do not leak into later lines
    assert summary["function_request_id"] == lambda_context.aws_request_id
    (emf,) = emf_documents()
    assert metric_values(emf, "ObjectsAccepted") == [4.0]
    assert metric_values(emf, "ObjectsSkipped") == [5.0]
    assert metric_values(emf, "TasksStarted") == [1.0]
    names = {metric["Name"] for metric in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"ObjectsAccepted", "ObjectsSkipped", "TasksStarted"}


def test_handler_counts_run_task_failures_in_metrics(
    stack: Stack,
    run_task_spy: RunTaskSpy,
    load_event: LoadEvent,
    lambda_context: Any,
    emf_documents: Callable[[], list[dict[str, Any]]],
) -> None:
    run_task_spy.answers = [capacity_failure, throttled]

    app.handler(load_event("s3-put"), lambda_context)

    (emf,) = emf_documents()
    assert metric_values(emf, "RunTaskFailures") == [1.0, 1.0]
    assert metric_values(emf, "TasksStarted") == [1.0]


def test_running_tasks_helper_sees_only_our_family(stack: Stack) -> None:
    # A sanity check of the fixture the other tests rely on: another family's task is not ours.
    ecs = boto3.client("ecs")
    ecs.register_task_definition(
        family="other", containerDefinitions=[{"name": "c", "image": "x", "memory": 128}], networkMode="awsvpc"
    )
    ecs.run_task(
        cluster=stack.cluster,
        taskDefinition="other",
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [stack.subnet], "securityGroups": [stack.security_group]}
        },
    )

    assert stack.running_tasks() == []


# --- scheduled jobs --------------------------------------------------------------------------------------------


def test_handler_scheduled_job_enqueues_its_run_and_starts_a_worker(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    # WHEN the schedule's sample event arrives (a key outside the input prefix)
    summary = app.handler(load_event("scheduled-job"), lambda_context)

    # THEN its run is queued as one work message and a worker is started, as for an upload
    assert (summary["event"], summary["enqueued"], summary["tasks_started"]) == ("scheduled-job", 1, 1)
    (body,) = stack.messages()
    (record,) = body["Records"]
    assert record["eventSource"] == "lew:schedule"
    assert record["lew"]["run"] == "20261130T030000Z"
    assert len(stack.running_tasks()) == 1


def test_handler_scheduled_job_the_stack_would_skip_fails_the_invocation_in_one_line(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    # GIVEN a schedule whose object the stack does not process (not an archive suffix it takes)
    event = load_event("scheduled-job")
    event["detail"]["key"] = "schedules/etl.rar"

    # WHEN it fires, THEN the invocation fails naming the object and the fix (Lambda's retries, the on-failure
    # queue and its alarm keep it), and nothing is queued
    with pytest.raises(UnsupportedEvent, match=r"scheduled job for s3://lew-uploads-example/schedules/etl.rar refused"):
        app.handler(event, lambda_context)
    assert stack.messages() == []
    assert run_task_spy.requests == []
