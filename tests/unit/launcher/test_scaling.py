"""Scaling arithmetic, RunTask requests and retries, active-task counting and enqueue retries, with small fakes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lew_launcher.enqueue import EnqueueError, enqueue
from lew_launcher.events import ObjectNotice
from lew_launcher.messages import message_body
from lew_launcher.retry import RetryPolicy
from lew_launcher.scaling import (
    LaunchMemory,
    RunTaskError,
    count_active_tasks,
    desired_workers,
    is_retryable_failure,
    is_throttling,
    run_task_request,
    start_tasks,
)
from lew_launcher.settings import Settings

ENVIRON = {
    "QUEUE_URL": "https://queue",
    "CLUSTER": "lew",
    "TASK_DEFINITION": "arn:aws:ecs:us-east-1:123456789012:task-definition/lew-worker:3",
    "SUBNETS": "subnet-a,subnet-b",
}
SETTINGS = Settings.from_env(ENVIRON)
CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


@dataclass
class Sleeps:
    """An injectable sleep that records instead of waiting."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def fast_retry(attempts: int = 4) -> tuple[RetryPolicy, Sleeps]:
    sleeps = Sleeps()
    return RetryPolicy(attempts=attempts, sleep=sleeps, jitter=lambda: 1.0), sleeps


@pytest.mark.parametrize(
    ("backlog", "max_workers", "per_worker", "desired"),
    [
        (0, 4, 5, 0),
        (1, 4, 5, 1),
        (5, 4, 5, 1),
        (6, 4, 5, 2),
        (20, 4, 5, 4),
        (200, 4, 5, 4),
        (7, 10, 1, 7),
        (100, 0, 5, 0),
        (-3, 4, 5, 0),
    ],
)
def test_desired_workers_is_ceil_of_backlog_per_worker_capped(
    backlog: int, max_workers: int, per_worker: int, desired: int
) -> None:
    assert desired_workers(backlog, max_workers, per_worker) == desired


def test_retry_policy_delay_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=lambda: 1.0)

    assert [policy.delay(attempt) for attempt in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(jitter=lambda: 0.25, base_delay=1.0).delay(0) == 0.25


def test_run_task_request_fargate_with_network_and_marker() -> None:
    request = run_task_request(SETTINGS, 3, "token-1")

    assert request == {
        "cluster": "lew",
        "taskDefinition": ENVIRON["TASK_DEFINITION"],
        "count": 3,
        "startedBy": "lew-launcher",
        "clientToken": "token-1",
        "launchType": "FARGATE",
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "assignPublicIp": "ENABLED"}
        },
    }


def test_run_task_request_fargate_spot_with_security_groups() -> None:
    settings = Settings.from_env(
        ENVIRON | {"CAPACITY_PROVIDER": "FARGATE_SPOT", "SECURITY_GROUPS": "sg-1", "ASSIGN_PUBLIC_IP": "DISABLED"}
    )

    request = run_task_request(settings, 1, "t")

    assert "launchType" not in request
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert request["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-a", "subnet-b"],
        "securityGroups": ["sg-1"],
        "assignPublicIp": "DISABLED",
    }


@pytest.mark.parametrize(
    ("reason", "retryable"),
    [
        (CAPACITY, True),
        ("RESOURCE:MEMORY", True),
        ("Rate exceeded", True),
        ("MISSING", False),
        ("ATTRIBUTE", False),
        ("You've reached the limit on the number of tasks you can run concurrently", False),
    ],
)
def test_is_retryable_failure(reason: str, retryable: bool) -> None:
    assert is_retryable_failure(reason) is retryable


def _client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "RunTask")


@pytest.mark.parametrize(
    ("error", "throttling"),
    [
        (_client_error("ThrottlingException", "Rate exceeded"), True),
        (_client_error("InvalidParameterException", "Rate exceeded"), True),
        (_client_error("InvalidParameterException", "No Container Instances were found in your cluster."), False),
        (_client_error("AccessDeniedException", "nope"), False),
    ],
)
def test_is_throttling(error: ClientError, throttling: bool) -> None:
    assert is_throttling(error) is throttling


class FakeEcs:
    """RunTask answers scripted in order; each is a response dict or an exception. Records every request."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.next_arn = 0

    def run_task(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else {"started": request["count"]}
        if isinstance(answer, Exception):
            raise answer
        started = answer.get("started", 0)
        tasks = [{"taskArn": f"arn:task/{self.next_arn + index}"} for index in range(started)]
        self.next_arn += started
        return {"tasks": tasks, "failures": answer.get("failures", [])}


def test_start_tasks_calls_run_task_with_at_most_ten_each() -> None:
    ecs, (retry, sleeps) = FakeEcs(), fast_retry()
    memory = LaunchMemory()

    started = start_tasks(ecs, SETTINGS, 23, retry, memory)  # type: ignore[arg-type]

    assert started == 23
    assert [request["count"] for request in ecs.requests] == [10, 10, 3]
    assert len({request["clientToken"] for request in ecs.requests}) == 3
    assert len(memory.recent()) == 23
    assert sleeps.delays == []


def test_start_tasks_retries_capacity_failures_for_the_shortfall_with_a_new_token() -> None:
    # GIVEN RunTask places 1 of 3 tasks, reporting capacity failures, then places the rest
    failures = [{"arn": "a", "reason": CAPACITY}, {"arn": "b", "reason": CAPACITY}]
    ecs, (retry, sleeps) = FakeEcs({"started": 1, "failures": failures}), fast_retry()

    # WHEN three workers are started
    started = start_tasks(ecs, SETTINGS, 3, retry, LaunchMemory())  # type: ignore[arg-type]

    # THEN the retry asks only for the two missing ones, as a new request
    assert started == 3
    assert [request["count"] for request in ecs.requests] == [3, 2]
    assert ecs.requests[0]["clientToken"] != ecs.requests[1]["clientToken"]
    assert len(sleeps.delays) == 1


def test_start_tasks_retries_throttling_with_the_same_token() -> None:
    throttled = _client_error("ThrottlingException", "Rate exceeded")
    rate = _client_error("InvalidParameterException", "Rate exceeded")
    ecs, (retry, sleeps) = FakeEcs(throttled, rate), fast_retry()

    assert start_tasks(ecs, SETTINGS, 2, retry, LaunchMemory()) == 2  # type: ignore[arg-type]

    # A throttled call may be repeated as is: the same token can never start the tasks twice.
    assert len({request["clientToken"] for request in ecs.requests}) == 1
    assert len(ecs.requests) == 3
    assert len(sleeps.delays) == 2


def test_start_tasks_raises_after_bounded_capacity_retries() -> None:
    failure = {"started": 0, "failures": [{"arn": "a", "reason": CAPACITY}]}
    ecs, (retry, sleeps) = FakeEcs(*[failure] * 10), fast_retry(attempts=4)

    with pytest.raises(RunTaskError, match="started 0 of 1 worker") as raised:
        start_tasks(ecs, SETTINGS, 1, retry, LaunchMemory())  # type: ignore[arg-type]

    assert "Capacity is unavailable" in str(raised.value)
    assert len(ecs.requests) == 4
    assert len(sleeps.delays) == 3
    assert raised.value.started == 0


def test_start_tasks_raises_after_bounded_throttling_retries() -> None:
    throttled = _client_error("ThrottlingException", "Rate exceeded")
    ecs, (retry, _) = FakeEcs(*[throttled] * 10), fast_retry(attempts=3)

    with pytest.raises(RunTaskError, match="throttled"):
        start_tasks(ecs, SETTINGS, 12, retry, LaunchMemory())  # type: ignore[arg-type]

    assert len(ecs.requests) == 3


def test_start_tasks_counts_tasks_started_before_the_error() -> None:
    failure = {"started": 0, "failures": [{"arn": "a", "reason": CAPACITY}]}
    ecs, (retry, _) = FakeEcs({"started": 10}, *[failure] * 5), fast_retry(attempts=2)

    with pytest.raises(RunTaskError) as raised:
        start_tasks(ecs, SETTINGS, 12, retry, LaunchMemory())  # type: ignore[arg-type]

    assert raised.value.started == 10


def test_start_tasks_does_not_retry_a_permanent_failure() -> None:
    ecs, (retry, sleeps) = FakeEcs({"started": 0, "failures": [{"arn": "a", "reason": "MISSING"}]}), fast_retry()

    with pytest.raises(RunTaskError, match="retrying will not fix: MISSING"):
        start_tasks(ecs, SETTINGS, 1, retry, LaunchMemory())  # type: ignore[arg-type]

    assert len(ecs.requests) == 1
    assert sleeps.delays == []


def test_start_tasks_empty_tasks_without_failures_is_a_failure() -> None:
    ecs, (retry, _) = FakeEcs(*[{"started": 0}] * 5), fast_retry(attempts=2)

    with pytest.raises(RunTaskError, match="no tasks and no failures"):
        start_tasks(ecs, SETTINGS, 1, retry, LaunchMemory())  # type: ignore[arg-type]


def test_start_tasks_other_client_errors_propagate_at_once() -> None:
    ecs, (retry, _) = FakeEcs(_client_error("AccessDeniedException", "not allowed")), fast_retry()

    with pytest.raises(ClientError, match="not allowed"):
        start_tasks(ecs, SETTINGS, 1, retry, LaunchMemory())  # type: ignore[arg-type]

    assert len(ecs.requests) == 1


class FakeEcsTasks:
    """list_tasks (paginated) and describe_tasks over a fixed set of tasks."""

    def __init__(self, listed: list[str], described: dict[str, dict[str, Any]]) -> None:
        self.listed, self.described = listed, described
        self.describe_calls: list[list[str]] = []
        self.list_filters: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> FakeEcsTasks:
        assert name == "list_tasks"
        return self

    def paginate(self, **filters: Any) -> list[dict[str, Any]]:
        self.list_filters.append(filters)
        return [{"taskArns": self.listed[start : start + 100]} for start in range(0, len(self.listed), 100)]

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        assert len(tasks) <= 100
        self.describe_calls.append(tasks)
        return {"tasks": [self.described[arn] for arn in tasks if arn in self.described]}


def _task(arn: str, last: str = "RUNNING", desired: str = "RUNNING", container: str = "RUNNING") -> dict[str, Any]:
    return {
        "taskArn": arn,
        "lastStatus": last,
        "desiredStatus": desired,
        "containers": [{"name": "worker", "lastStatus": container}],
    }


def test_count_active_tasks_counts_only_tasks_that_take_work() -> None:
    tasks = [
        _task("t1", "PROVISIONING", container="PENDING"),
        _task("t2", "PENDING", container="PENDING"),
        _task("t3", "ACTIVATING"),
        _task("t4", "RUNNING"),
        _task("t5", "RUNNING", container="STOPPED"),  # worker exited idle; task not yet stopped
        _task("t6", "DEACTIVATING"),
        _task("t7", "RUNNING", desired="STOPPED"),
    ]
    ecs = FakeEcsTasks([task["taskArn"] for task in tasks], {task["taskArn"]: task for task in tasks})

    assert count_active_tasks(ecs, SETTINGS, LaunchMemory()) == 4  # type: ignore[arg-type]
    assert ecs.list_filters == [{"cluster": "lew", "family": "lew-worker", "desiredStatus": "RUNNING"}]


def test_count_active_tasks_describes_in_chunks_of_100() -> None:
    arns = [f"t{index}" for index in range(250)]
    ecs = FakeEcsTasks(arns, {arn: _task(arn) for arn in arns})

    assert count_active_tasks(ecs, SETTINGS, LaunchMemory()) == 250  # type: ignore[arg-type]
    assert [len(call) for call in ecs.describe_calls] == [100, 100, 50]


def test_count_active_tasks_counts_recent_launches_ecs_does_not_show_yet() -> None:
    # GIVEN tasks started moments ago: ECS lists none of them, describes one as running and one as stopped
    now = [1000.0]
    memory = LaunchMemory(ttl=120, clock=lambda: now[0])
    memory.remember(["new-1", "new-2", "gone"])
    ecs = FakeEcsTasks([], {"new-2": _task("new-2", "PENDING"), "gone": _task("gone", "STOPPED", "STOPPED")})

    # THEN the unseen one and the pending one count, the stopped one does not
    assert count_active_tasks(ecs, SETTINGS, memory) == 2  # type: ignore[arg-type]

    # AND once the memory has expired, only what ECS lists counts
    now[0] += 121
    ecs.listed = ["new-2"]
    assert count_active_tasks(ecs, SETTINGS, memory) == 1  # type: ignore[arg-type]


class FakeSqs:
    """send_message_batch that fails chosen entries a given number of times."""

    def __init__(self, failing: dict[str, int] | None = None, sender_fault: bool = False) -> None:
        self.failing = dict(failing or {})
        self.sender_fault = sender_fault
        self.batches: list[list[dict[str, str]]] = []
        self.sent: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.batches.append(Entries)
        failed = []
        for entry in Entries:
            key = entry["MessageBody"]
            if self.failing.get(key, 0) > 0:
                self.failing[key] -= 1
                code = "InvalidMessageContents" if self.sender_fault else "InternalError"
                failed.append({"Id": entry["Id"], "SenderFault": self.sender_fault, "Code": code, "Message": "x"})
            else:
                self.sent.append(key)
        return {"Successful": [], "Failed": failed}


def _notices(count: int) -> list[ObjectNotice]:
    return [
        ObjectNotice(
            bucket="b", key=f"incoming/{index}.zip", event_name="ObjectCreated:Put", event_time="t", region="r"
        )
        for index in range(count)
    ]


def test_enqueue_sends_batches_of_ten() -> None:
    sqs, (retry, _) = FakeSqs(), fast_retry()

    assert enqueue(sqs, "q", _notices(23), retry) == 23  # type: ignore[arg-type]

    assert [len(batch) for batch in sqs.batches] == [10, 10, 3]
    assert len(set(sqs.sent)) == 23


def test_enqueue_retries_only_the_failed_entries() -> None:
    notices = _notices(3)
    flaky = message_body(notices[1])
    sqs, (retry, sleeps) = FakeSqs({flaky: 2}), fast_retry()

    assert enqueue(sqs, "q", notices, retry) == 3  # type: ignore[arg-type]

    assert [len(batch) for batch in sqs.batches] == [3, 1, 1]
    assert sorted(sqs.sent) == sorted(message_body(notice) for notice in notices)
    assert len(sleeps.delays) == 2


def test_enqueue_raises_when_entries_keep_failing() -> None:
    notices = _notices(2)
    sqs, (retry, _) = FakeSqs({message_body(notices[0]): 99}), fast_retry(attempts=3)

    with pytest.raises(
        EnqueueError, match=re.escape("still failing after 3 attempts: 'incoming/0.zip': InternalError")
    ):
        enqueue(sqs, "q", notices, retry)  # type: ignore[arg-type]

    assert len(sqs.batches) == 3


def test_enqueue_sender_fault_is_not_retried() -> None:
    notices = _notices(1)
    sqs, (retry, sleeps) = FakeSqs({message_body(notices[0]): 1}, sender_fault=True), fast_retry()

    with pytest.raises(EnqueueError, match="not retried"):
        enqueue(sqs, "q", notices, retry)  # type: ignore[arg-type]

    assert sleeps.delays == []
