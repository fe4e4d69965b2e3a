"""The launcher's handler against moto with ECS Task State Change events of worker tasks that failed to start."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from lew_launcher import app
from lew_launcher.spot_fallback import FALLBACK_TAG

if TYPE_CHECKING:  # fixtures' types; pytest's importlib mode lets no test module import another at run time
    from tests.integration.launcher.conftest import RunTaskSpy, Stack

LoadEvent = Callable[[str], dict[str, Any]]
CAPACITY_REASON = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


def stop_running_tasks(stack: Stack) -> None:
    """What ECS does to a task that fails to start: it stops it."""
    ecs = boto3.client("ecs")
    for arn in stack.running_tasks():
        ecs.stop_task(cluster=stack.cluster, task=arn, reason="CannotPullContainerError: not found")


def failed_start(load_event: LoadEvent, task_number: int = 1, **detail: Any) -> dict[str, Any]:
    """The committed sample event, for another task (and with other detail fields)."""
    event = copy.deepcopy(load_event("ecs-task-failed-to-start"))
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/lew/{task_number:032x}"
    event["detail"] |= {"taskArn": arn, **detail}
    event["detail"] = {name: value for name, value in event["detail"].items() if value is not None}
    return event


def cluster_tags(stack: Stack) -> dict[str, str]:
    (cluster,) = boto3.client("ecs").describe_clusters(clusters=[stack.cluster], include=["TAGS"])["clusters"]
    return {tag["key"]: tag["value"] for tag in cluster.get("tags") or []}


def test_handler_task_failed_to_start_is_logged_counted_and_replaced_at_once(  # noqa: PLR0917  # pytest fixtures
    stack: Stack,
    run_task_spy: RunTaskSpy,
    load_event: LoadEvent,
    lambda_context: Any,
    emf_documents: Callable[[], list[dict[str, Any]]],
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN a message waiting and no worker: the one started for it failed to start
    stack.enqueue_directly(1)

    # WHEN ECS reports the task stopped with TaskFailedToStart (the committed sample event)
    summary = app.handler(load_event("ecs-task-failed-to-start"), lambda_context)

    # THEN the launcher starts a replacement at once, without waiting for the reconcile schedule
    assert summary["event"] == "ecs-task-stopped"
    assert summary["start_failure"] is True
    assert summary["stop_code"] == "TaskFailedToStart"
    assert summary["tasks_started"] == 1
    assert len(run_task_spy.requests) == 1
    assert len(stack.running_tasks()) == 1
    # AND it logs the task's and the container's reasons, with the task and the stop code
    (line,) = [line for line in log_lines() if line.get("message") == "Worker task failed to start"]
    assert line["stop_code"] == "TaskFailedToStart"
    assert line["task_arn"].endswith("/7f3c2b1a9e8d4c6b8a0f1e2d3c4b5a69")
    assert "the image does not exist" in line["reason"]
    assert "worker: CannotPullContainerError" in line["reason"]
    # AND it publishes TaskStartFailures per cluster (the alarm's dimensions) and per cluster and stop code
    failures = [doc for doc in emf_documents() if "TaskStartFailures" in doc]
    (document,) = failures
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Cluster", "service"],
        ["service", "Cluster", "StopCode"],
    ]
    assert (document["Cluster"], document["StopCode"], document["service"]) == ("lew", "TaskFailedToStart", "lew-tests")


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    "detail",
    [
        {"taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/other-worker:1"},
        {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/other"},
        {"stopCode": "EssentialContainerExited", "startedAt": "2026-11-21T19:31:20Z"},  # it ran
        {"stopCode": "UserInitiated"},  # stopped on purpose before it ran
        {"lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "stopCode": None},  # from a rule made by hand
    ],
    ids=["other-family", "other-cluster", "ran", "user-initiated", "not-stopped"],
)
def test_handler_task_stop_that_is_not_a_failed_start_of_ours_is_ignored(  # noqa: PLR0917  # pytest fixtures
    stack: Stack,
    run_task_spy: RunTaskSpy,
    load_event: LoadEvent,
    lambda_context: Any,
    emf_documents: Callable[[], list[dict[str, Any]]],
    detail: dict[str, Any],
) -> None:
    stack.enqueue_directly(1)

    summary = app.handler(failed_start(load_event, **detail), lambda_context)

    assert summary["start_failure"] is False
    assert run_task_spy.requests == []
    assert not [doc for doc in emf_documents() if "TaskStartFailures" in doc]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_repeated_start_failures_hold_back_starts_so_a_permanent_fault_cannot_storm(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any
) -> None:
    # GIVEN work waiting, a fault every task meets (a missing image), and a clock the test moves
    stack.enqueue_directly(1)
    now = [1_000_000.0]
    app.LAUNCH_MEMORY.start_failures.clock = lambda: now[0]

    # WHEN the first task fails to start, THEN it is replaced at once
    assert app.handler(failed_start(load_event, 1), lambda_context)["tasks_started"] == 1
    # WHEN the replacement fails too, THEN starts are held back, by events and by the reconcile schedule alike
    stop_running_tasks(stack)
    second = app.handler(failed_start(load_event, 2), lambda_context)
    assert (second["tasks_started"], second["starts_held_back_seconds"], second["start_failure_streak"]) == (0, 15, 2)
    now[0] += 10
    assert app.handler(load_event("scheduled-reconcile"), lambda_context)["tasks_started"] == 0
    # AND when the hold has passed, one start is tried again; each further failure doubles the hold
    now[0] += 6
    assert app.handler(load_event("scheduled-reconcile"), lambda_context)["tasks_started"] == 1
    stop_running_tasks(stack)
    third = app.handler(failed_start(load_event, 3), lambda_context)
    assert (third["tasks_started"], third["starts_held_back_seconds"]) == (0, 30)
    # AND the same task reported twice (EventBridge delivers at least once) counts once
    stop_running_tasks(stack)
    assert app.handler(failed_start(load_event, 3), lambda_context)["start_failure_streak"] == 3
    assert len(run_task_spy.requests) == 2


def test_handler_spot_capacity_failure_falls_back_to_fargate_for_the_cool_down(  # noqa: PLR0917  # pytest fixtures
    stack: Stack,
    run_task_spy: RunTaskSpy,
    load_event: LoadEvent,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN workers on FARGATE_SPOT with a 10-minute cool-down, and work waiting
    monkeypatch.setenv("CAPACITY_PROVIDER", "FARGATE_SPOT")
    monkeypatch.setenv("SPOT_FALLBACK_SECONDS", "600")
    stack.enqueue_directly(1)
    before = datetime.now(UTC).replace(microsecond=0)

    # WHEN a Spot task stops before it ran because Spot has no capacity
    event = failed_start(load_event, capacityProviderName="FARGATE_SPOT", stoppedReason=CAPACITY_REASON)
    event["detail"]["clusterArn"] = boto3.client("ecs").describe_clusters(clusters=[stack.cluster])["clusters"][0][
        "clusterArn"
    ]
    summary = app.handler(event, lambda_context)

    # THEN the replacement runs on FARGATE, and the cool-down's end is kept on the cluster (durable, shared)
    (request,) = run_task_spy.requests
    assert request["launchType"] == "FARGATE"
    assert "capacityProviderStrategy" not in request
    until = datetime.strptime(cluster_tags(stack)[FALLBACK_TAG], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=600) <= until <= datetime.now(UTC) + timedelta(seconds=600)
    assert summary["capacity_provider"] == "FARGATE"
    assert "start_failure_streak" not in summary  # the fallback addresses the cause: no hold
    assert any(line.get("message", "").startswith("FARGATE_SPOT has no capacity") for line in log_lines())

    # AND a later cold start still reads the fallback from the cluster: uploads start on FARGATE during it
    app.LAUNCH_MEMORY.clear()
    stop_running_tasks(stack)
    app.handler(load_event("scheduled-reconcile"), lambda_context)
    assert run_task_spy.requests[-1]["launchType"] == "FARGATE"

    # AND once the cool-down has passed, workers go back to FARGATE_SPOT
    boto3.client("ecs").tag_resource(
        resourceArn=event["detail"]["clusterArn"], tags=[{"key": FALLBACK_TAG, "value": "2020-01-01T00:00:00Z"}]
    )
    stop_running_tasks(stack)
    app.handler(load_event("scheduled-reconcile"), lambda_context)
    assert run_task_spy.requests[-1]["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def test_handler_spot_run_task_capacity_failure_falls_back_to_fargate_at_once(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN FARGATE_SPOT, and RunTask answering that Spot has no capacity
    monkeypatch.setenv("CAPACITY_PROVIDER", "FARGATE_SPOT")

    def no_spot_capacity(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        failures = [{"arn": "arn:aws:ecs:us-east-1:123456789012:task/x", "reason": CAPACITY_REASON}]
        return 200, {"tasks": [], "failures": failures * request["count"]}

    run_task_spy.answers = [no_spot_capacity]

    # WHEN an upload asks for a worker
    summary = app.handler(load_event("s3-put"), lambda_context)

    # THEN the retry goes to FARGATE (the default cool-down, 900 s, is recorded on the cluster)
    first, second = run_task_spy.requests
    assert first["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert second["launchType"] == "FARGATE"
    assert summary["tasks_started"] == 1
    assert summary["capacity_provider"] == "FARGATE"
    assert FALLBACK_TAG in cluster_tags(stack)


def test_handler_spot_fallback_off_keeps_retrying_spot(
    stack: Stack, run_task_spy: RunTaskSpy, load_event: LoadEvent, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPACITY_PROVIDER", "FARGATE_SPOT")
    monkeypatch.setenv("SPOT_FALLBACK_SECONDS", "0")
    stack.enqueue_directly(1)

    summary = app.handler(
        failed_start(load_event, capacityProviderName="FARGATE_SPOT", stoppedReason=CAPACITY_REASON), lambda_context
    )

    (request,) = run_task_spy.requests
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert summary["start_failure_streak"] == 1
    assert cluster_tags(stack) == {}
