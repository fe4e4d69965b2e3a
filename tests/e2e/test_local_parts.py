"""The local Lambda runtime and the local ECS agent, each with a stand-in for the real code."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import psutil
import pytest

from lew.local.preflight import placeholder_resources
from lew.local.stack import LocalStack
from lew.queues import queue_depths
from tests.e2e.conftest import LogCollector, fast_settings, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def run_task(stack: LocalStack, environment: dict[str, str] | None = None) -> str:
    resources = stack.resources
    assert resources is not None
    overrides: Any = {
        "containerOverrides": [
            {
                "name": "worker",
                "environment": [{"name": key, "value": value} for key, value in (environment or {}).items()],
            }
        ]
    }
    task = stack.ecs.run_task(
        cluster=resources.cluster,
        taskDefinition=resources.task_definition_arn,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(resources.subnets),
                "securityGroups": list(resources.security_groups),
            }
        },
        overrides=overrides,
    )["tasks"][0]
    return str(task["taskArn"])


def test_lambda_runtime_retries_a_failing_event_twice_then_records_it(logs: LogCollector) -> None:
    calls: list[dict[str, Any]] = []

    def failing_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if "Records" in event:
            calls.append(event)
            print(json.dumps({"message": "about to fail", "request": context.aws_request_id}))
            raise RuntimeError("launcher is broken")
        return {"tasks_started": 0}

    with LocalStack(fast_settings(), sink=logs, handler=failing_handler) as stack:
        resources = stack.resources
        assert resources is not None and stack.runtime is not None
        # WHEN an upload's event keeps failing
        stack.s3.put_object(Bucket=resources.bucket, Key="incoming/a.zip", Body=b"zip")

        # THEN Lambda's async semantics apply: 1 + 2 retries, then one on-failure record; the inbox is emptied
        record = wait_for(
            lambda: stack.sqs.receive_message(QueueUrl=resources.launcher_failure_url, WaitTimeSeconds=1).get(
                "Messages"
            ),
            timeout=30,
            what="the on-failure record",
        )
        assert len(calls) == 3
        body = json.loads(record[0]["Body"])
        assert body["requestContext"]["condition"] == "RetriesExhausted"
        assert body["requestContext"]["approximateInvokeCount"] == 3
        assert body["responsePayload"]["errorMessage"] == "launcher is broken"
        assert body["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "incoming%2Fa.zip"
        wait_for(lambda: _inbox_empty(stack), timeout=10, what="an empty inbox")
        # ... what the handler printed is tagged as the launcher's
        assert any(source == "launcher" and "about to fail" in line for source, line in logs.lines)


def _inbox_empty(stack: LocalStack) -> bool:
    assert stack.resources is not None
    return queue_depths(stack.sqs, stack.resources.inbox_url) == (0, 0)


def test_lambda_runtime_fires_the_reconcile_schedule(logs: LogCollector) -> None:
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        return {"tasks_started": 0}

    with LocalStack(fast_settings(reconcile_seconds=0.5), sink=logs, handler=handler):
        wait_for(lambda: sum(e.get("source") == "aws.events" for e in events) >= 2, timeout=15, what="two reconciles")

    scheduled = [event for event in events if event.get("source") == "aws.events"]
    assert scheduled[0]["detail-type"] == "Scheduled Event"
    assert scheduled[0]["id"] != scheduled[1]["id"]


WORKER_STAND_IN = """
import os, sys
print("queue", os.environ["QUEUE_URL"].rsplit("/", 1)[-1], "processor", os.environ["PROCESSOR"],
      "extra", os.environ.get("EXTRA"), "endpoint", os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1"))
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


def test_ecs_agent_runs_each_task_with_its_environment_and_stops_it_with_the_exit_code(logs: LogCollector) -> None:
    settings = fast_settings(worker_command=(sys.executable, "-c", WORKER_STAND_IN))
    with LocalStack(settings, sink=logs, handler=lambda event, context: {}) as stack:
        assert stack.agent is not None and stack.resources is not None
        # WHEN a task is started with RunTask overrides
        arn = run_task(stack, {"EXTRA": "override", "EXIT_CODE": "3"})

        # THEN a process ran with the task definition's environment plus the overrides, and its exit code stops it
        worker = wait_for(
            lambda: (w := stack.agent.workers.get(arn)) is not None and w.task_stopped and w,
            timeout=20,
            what="the task to run and stop",
        )
        assert worker.exit_code == 3
        output = [line for source, line in logs.lines if source == worker.label]
        assert output == ["queue lew-local-work processor inventory extra override endpoint True"]
        task = stack.ecs.describe_tasks(cluster=stack.resources.cluster, tasks=[arn])["tasks"][0]
        assert task["desiredStatus"] == "STOPPED"
        assert task["stoppedReason"] == "exit 3"


SLEEPER = """
import signal, sys, time
print("started", flush=True)
signal.signal(signal.SIGTERM, lambda *a: (print("got SIGTERM", flush=True), sys.exit(0)))
time.sleep(60)
"""

STUBBORN = """
import os, signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("child", child.pid, flush=True)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(60)
"""


def test_ecs_agent_sends_sigterm_when_a_task_is_stopped_through_the_api(logs: LogCollector) -> None:
    settings = fast_settings(worker_command=(sys.executable, "-c", SLEEPER))
    with LocalStack(settings, sink=logs, handler=lambda event, context: {}) as stack:
        assert stack.agent is not None and stack.resources is not None
        arn = run_task(stack)
        wait_for(lambda: any(line == "started" for _, line in logs.lines), timeout=20, what="the worker to start")

        # WHEN the task is stopped through the ECS API (scale-in, `aws ecs stop-task`)
        stack.ecs.stop_task(cluster=stack.resources.cluster, task=arn, reason="scale-in")

        # THEN the process gets SIGTERM and exits
        worker = wait_for(lambda: (w := stack.agent.workers[arn]).exit_code is not None and w, timeout=20, what="exit")
        assert worker.exit_code == 0
        assert ("worker-1", "got SIGTERM") in logs.lines


def test_stopping_the_stack_kills_workers_that_ignore_sigterm_and_their_children(logs: LogCollector) -> None:
    settings = fast_settings(worker_command=(sys.executable, "-c", STUBBORN), worker_kill_grace_seconds=1.0)
    stack = LocalStack(settings, sink=logs, handler=lambda event, context: {}).start()
    try:
        assert stack.agent is not None
        run_task(stack)
        line = wait_for(
            lambda: next((line for _, line in logs.lines if line.startswith("child ")), None),
            timeout=20,
            what="the stubborn worker to start its child",
        )
        child_pid = int(line.split()[1])
        worker = next(iter(stack.agent.workers.values()))
        endpoint = stack.endpoint
    finally:
        started = time.monotonic()
        stack.stop()

    # THEN the worker and its child are gone (SIGKILL after the grace period), and nothing else was waited for
    assert time.monotonic() - started < 15
    assert worker.process is not None and worker.exit_code == -signal.SIGKILL
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    # ... the port is free again, and the process environment is restored
    port = int(endpoint.rsplit(":", 1)[1])
    assert all(conn.laddr.port != port for conn in psutil.Process().net_connections() if conn.status == "LISTEN")
    assert os.environ.get("AWS_ENDPOINT_URL") != endpoint


SAYS_AND_EXITS = """
import os, sys
print(os.environ["SAY"], flush=True)
sys.exit(int(os.environ["EXIT_CODE"]))
"""


@pytest.mark.parametrize(
    ("exit_code", "say", "line"),
    [
        (2, '{"level": "ERROR", "message": "invalid worker configuration: IDLE_POLLS must be a whole number"}',
         "worker-1 stopped on a configuration error: invalid worker configuration: IDLE_POLLS must be a whole number"),
        (3, '{"level": "ERROR", "message": "cannot reach the queue endpoint", "reason": "endpoint"}',
         "worker-1 stopped on an AWS it cannot use: cannot reach the queue endpoint"),
        (2, "lew-worker: configuration error: QUEUE_URL is required",
         "worker-1 stopped on a configuration error: lew-worker: configuration error: QUEUE_URL is required"),
    ],
)  # fmt: skip
def test_a_worker_that_exits_on_its_surroundings_stops_the_stack_with_its_line(
    logs: LogCollector, exit_code: int, say: str, line: str
) -> None:
    settings = fast_settings(worker_command=(sys.executable, "-c", SAYS_AND_EXITS))
    with LocalStack(settings, sink=logs, handler=lambda event, context: {}) as stack:
        # WHEN a worker exits with the code of a configuration error (2) or of an AWS it cannot use (3)
        run_task(stack, {"SAY": say, "EXIT_CODE": str(exit_code)})

        # THEN the stack says so in that worker's one line, and whoever runs it is told to stop
        assert stack.failed.wait(30)
        assert stack.configuration_error == line


def test_a_worker_that_crashes_does_not_stop_the_stack(logs: LogCollector) -> None:
    settings = fast_settings(worker_command=(sys.executable, "-c", SAYS_AND_EXITS))
    with LocalStack(settings, sink=logs, handler=lambda event, context: {}) as stack:
        assert stack.agent is not None
        arn = run_task(stack, {"SAY": "Traceback ...", "EXIT_CODE": "1"})
        wait_for(lambda: (w := stack.agent.workers.get(arn)) is not None and w.task_stopped, timeout=20, what="exit")

        assert not stack.failed.is_set()  # a crash is retried by the next worker, as on ECS


def test_the_preflight_checks_the_environments_the_stack_gives(logs: LogCollector) -> None:
    # GIVEN a started stack, and the environments lew.local.preflight checked before it started
    settings = fast_settings()
    expected = placeholder_resources(settings)
    with LocalStack(settings, sink=logs, handler=lambda event, context: {}) as stack:
        resources = stack.resources
        assert resources is not None

        # WHEN they are compared
        # THEN the launcher and the workers got the same variables; only the resources' identifiers differ (the
        # placeholders have their shapes), so a variable the stack adds later cannot escape the check
        for checked, given in (
            (expected.worker_environment, resources.worker_environment),
            (expected.launcher_environment, resources.launcher_environment),
        ):
            assert sorted(checked) == sorted(given)
            identifiers = {"QUEUE_URL", "DLQ_URL", "TASK_DEFINITION", "SUBNETS", "SECURITY_GROUPS"}
            assert {k: v for k, v in checked.items() if k not in identifiers} == {
                k: v for k, v in given.items() if k not in identifiers
            }
