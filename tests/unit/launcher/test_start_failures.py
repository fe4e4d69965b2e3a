"""Stopped-task events, start-failure classification, the start hold-off and the Spot fallback tag: no AWS."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from lew_launcher.events import EventKind, TaskStop, UnsupportedEvent, parse_event
from lew_launcher.holdoff import StartFailureStreak, hold_seconds
from lew_launcher.settings import Settings, cluster_name
from lew_launcher.spot_fallback import FALLBACK_TAG, ClusterFallback, fallback_from_tags, parse_until
from lew_launcher.start_failures import is_capacity_stop, is_our_worker, is_start_failure

LoadEvent = Callable[[str], dict[str, Any]]
SETTINGS = Settings.from_env(
    {"QUEUE_URL": "https://queue", "CLUSTER": "lew", "TASK_DEFINITION": "lew-worker:3", "SUBNETS": "subnet-1"}
)
CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


def stop(**fields: Any) -> TaskStop:
    defaults: dict[str, Any] = {
        "task_arn": "arn:aws:ecs:us-east-1:123456789012:task/lew/abc",
        "last_status": "STOPPED",
        "cluster_arn": "arn:aws:ecs:us-east-1:123456789012:cluster/lew",
        "task_definition_arn": "arn:aws:ecs:us-east-1:123456789012:task-definition/lew-worker:7",
        "stop_code": "TaskFailedToStart",
        "stopped_reason": "",
        "container_reasons": (),
        "started_at": None,
        "capacity_provider": "FARGATE",
        "started_by": "lew-launcher",
    }
    return TaskStop(**(defaults | fields))


def test_parse_event_reads_the_stopped_task_of_the_sample_event(load_event: LoadEvent) -> None:
    parsed = parse_event(load_event("ecs-task-failed-to-start"))

    assert parsed.kind is EventKind.TASK_STOPPED
    assert parsed.objects == ()
    task = parsed.task_stop
    assert task is not None
    assert task.task_id == "7f3c2b1a9e8d4c6b8a0f1e2d3c4b5a69"
    assert task.stop_code == "TaskFailedToStart"
    assert task.started_at is None
    assert task.capacity_provider == "FARGATE"
    assert task.container_reasons[0].startswith("worker: CannotPullContainerError: pull image manifest")
    assert task.reason.startswith("CannotPullContainerError: The task cannot pull")
    assert "; worker: CannotPullContainerError" in task.reason
    # a container's reason that repeats the task's is not repeated
    event = copy.deepcopy(load_event("ecs-task-failed-to-start"))
    event["detail"]["containers"][0]["reason"] = event["detail"]["stoppedReason"]
    repeated = parse_event(event).task_stop
    assert repeated is not None
    assert (repeated.container_reasons, repeated.reason) == ((), event["detail"]["stoppedReason"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lastStatus": None}, "detail.lastStatus must be a non-empty string"),
        ({"taskArn": None}, "detail.taskArn must be a non-empty string"),
        ({"stopCode": 3}, "detail.stopCode must be a string when present"),
        ({"containers": "worker"}, "detail.containers must be a list"),
    ],
)
def test_parse_event_refuses_a_task_state_change_it_cannot_use(
    load_event: LoadEvent, change: dict[str, Any], message: str
) -> None:
    event = copy.deepcopy(load_event("ecs-task-failed-to-start"))
    event["detail"] |= change

    with pytest.raises(UnsupportedEvent, match=message):
        parse_event(event)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, True),
        ({"stop_code": "TaskFailedToStart", "started_at": "2026-11-21T19:31:20Z"}, True),  # ECS's word for it
        ({"stop_code": "SpotInterruption"}, True),
        ({"stop_code": None}, True),
        ({"stop_code": "EssentialContainerExited", "started_at": "2026-11-21T19:31:20Z"}, False),
        ({"stop_code": "SpotInterruption", "started_at": "2026-11-21T19:31:20Z"}, False),
        ({"stop_code": "UserInitiated"}, False),
        ({"stop_code": "ServiceSchedulerInitiated"}, False),
    ],
)
def test_is_start_failure_means_stopped_without_running_and_not_on_purpose(
    fields: dict[str, Any], expected: bool
) -> None:
    assert is_start_failure(stop(**fields)) is expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"stopped_reason": CAPACITY}, True),
        ({"stop_code": "SpotInterruption"}, True),
        ({"container_reasons": (f"worker: {CAPACITY}",)}, True),
        ({"stopped_reason": "CannotPullContainerError: not found"}, False),
        ({"stopped_reason": "ResourceInitializationError: failed to configure ENI"}, False),
    ],
)
def test_is_capacity_stop(fields: dict[str, Any], expected: bool) -> None:
    assert is_capacity_stop(stop(**fields)) is expected


def test_is_our_worker_matches_cluster_name_or_arn_and_family() -> None:
    assert is_our_worker(stop(), SETTINGS)
    arn_settings = Settings.from_env(
        {
            "QUEUE_URL": "q",
            "CLUSTER": "arn:aws:ecs:us-east-1:123456789012:cluster/lew",
            "TASK_DEFINITION": "arn:aws:ecs:us-east-1:123456789012:task-definition/lew-worker:3",
            "SUBNETS": "s",
        }
    )
    assert is_our_worker(stop(), arn_settings)
    assert not is_our_worker(stop(cluster_arn="arn:aws:ecs:us-east-1:1:cluster/lew2"), SETTINGS)
    other = "arn:aws:ecs:us-east-1:123456789012:task-definition/lew-worker2:1"
    assert not is_our_worker(stop(task_definition_arn=other), SETTINGS)
    assert cluster_name("arn:aws:ecs:eu-west-1:1:cluster/x") == "x"


@pytest.mark.parametrize(("failures", "seconds"), [(0, 0), (1, 0), (2, 15), (3, 30), (4, 60), (6, 240), (7, 300)])
def test_hold_seconds_doubles_from_the_second_failure_up_to_five_minutes(failures: int, seconds: float) -> None:
    assert hold_seconds(failures) == seconds


def test_start_failure_streak_counts_tasks_once_and_ends_when_a_task_starts() -> None:
    # GIVEN a streak on a clock the test controls
    now = [1_000.0]
    streak = StartFailureStreak(clock=lambda: now[0])

    # WHEN two tasks fail (one reported twice), THEN the streak is 2 and starts wait 15 s after the last
    streak.record("task/a")
    now[0] += 5
    assert streak.record("task/b") == 2
    assert streak.record("task/b") == 2
    now[0] += 10
    assert streak.remaining_hold() == pytest.approx(5)
    # WHEN a task that started before the last failure is seen, THEN nothing changes
    streak.saw_start(datetime.fromtimestamp(1_004.0, UTC))
    assert streak.failures == 2
    # WHEN a task that started after it is seen, THEN the streak ends and starts go ahead
    streak.saw_start(datetime.fromtimestamp(1_006.0, UTC))
    assert (streak.failures, streak.remaining_hold()) == (0, 0)


def test_fallback_tag_is_read_and_a_bad_value_is_no_fallback() -> None:
    until = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert (
        fallback_from_tags([{"key": "other", "value": "x"}, {"key": FALLBACK_TAG, "value": "2026-11-30T17:00:00Z"}])
        == until
    )
    assert fallback_from_tags([{"key": FALLBACK_TAG, "value": "soon"}]) is None
    assert fallback_from_tags([]) is None
    assert parse_until("2026-11-30 17:00") is None
    fallback = ClusterFallback("arn:cluster", until)
    assert fallback.active(datetime(2026, 11, 30, 16, 59, tzinfo=UTC))
    assert not fallback.active(until)
