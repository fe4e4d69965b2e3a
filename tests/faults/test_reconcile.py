"""Fault matrix rows 4 and 7: work left queued with no worker running is picked up by the next reconcile tick.

Both run the whole local stack: moto server, the real launcher in the local Lambda runtime (S3 notifications
and a reconcile schedule every second), and the local ECS agent that runs a `python -m worker` per task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from lew_launcher import app
from tests.faults.conftest import StartedStack
from tests.faults.harness import TEST_TIMEOUT_SECONDS, verdict, work_message, zip_archive

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]

CAPACITY_FAILURE = {
    "tasks": [],
    "failures": [{"reason": "Capacity is unavailable at this time. Please try again later or in a different AZ"}],
}
THROTTLED = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}


def test_reconcile_starts_a_worker_for_work_queued_while_no_worker_runs(
    local_stack: Callable[..., StartedStack],
) -> None:
    # GIVEN a running stack, and work messages that reached the queue without any RunTask (a lost RunTask,
    # or every worker crashed): the objects sit outside INPUT_PREFIX, so S3's notification filter never
    # tells the launcher, and their messages are sent to the work queue directly.
    started = local_stack()
    keys = [f"staging/lost-{index}.zip" for index in range(3)]
    for key in keys:
        started.upload(key, zip_archive(key))
    assert started.agent.tasks_started == 0
    for key in keys:
        started.stack.sqs.send_message(
            QueueUrl=started.resources.queue_url, MessageBody=work_message(started.stack.s3, started.bucket, key)
        )
    # WHEN the reconcile schedule ticks (every second here; every minute in the template)
    started.wait_for(lambda: started.agent.tasks_started >= 1, "a reconcile tick to start a worker")
    # THEN a worker drains the queue: every archive has its success manifest, nothing is left, no worker lingers
    started.wait_for(lambda: verdict(started.stack.s3, started.bucket, keys).all_succeeded, "every manifest")
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}
    assert started.successes_per_key() == dict.fromkeys(keys, 1)
    assert [line for line in started.log.matching("schedule event handled", "lambda") if '"tasks_started": 1' in line]


@pytest.mark.parametrize(
    "refusal", [pytest.param(CAPACITY_FAILURE, id="failures"), pytest.param(THROTTLED, id="throttling")]
)
def test_run_task_failing_on_every_retry_leaves_the_work_queued_until_a_reconcile_starts_a_worker(
    local_stack: Callable[..., StartedStack], refusal: dict[str, Any]
) -> None:
    # GIVEN a running stack whose RunTask calls all fail (capacity failures, or throttling) during an outage
    started = local_stack()
    outage = threading.Event()
    outage.set()
    refused: list[str] = []

    def refuse_run_task(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not outage.is_set():
            return None  # the real call
        refused.append("RunTask")
        status = 400 if "Error" in refusal else 200
        return AWSResponse("https://ecs.invalid", status, HTTPHeaders(), None), refusal

    # The launcher's own cached ECS client (a warm Lambda execution environment). The runtime's first invocation
    # (S3's test event, or a reconcile tick) creates it: taking it before that invocation has finished would race
    # it, and the hook could land on a client the launcher then replaces with its own (the failure of this test
    # on a busy machine).
    runtime = started.stack.runtime
    assert runtime is not None
    started.wait_for(lambda: bool(runtime.stats.results), "the launcher's first invocation")
    _, ecs = app.aws_clients()
    # A before-call handler that returns (response, parsed) replaces the HTTP call; the stubs type it as None.
    ecs.meta.events.register("before-call.ecs.RunTask", cast(Callable[..., None], refuse_run_task))
    keys = [f"incoming/outage/scene-{index}.zip" for index in range(3)]
    # WHEN archives are uploaded during the outage
    for key in keys:
        started.upload(key, zip_archive(key))
    # THEN the launcher retries RunTask, gives up, and fails the invocation (Lambda retries the whole event,
    # which enqueues its objects again); no worker starts, and the work waits on the queue
    started.wait_for(lambda: len(started.log.matching("RunTaskError", "lambda")) >= 3, "the invocations to fail")
    assert len(refused) >= 10
    assert started.agent.tasks_started == 0
    assert started.counts()["queued"] >= len(keys)
    # WHEN the outage ends
    outage.clear()
    # THEN the next reconcile tick starts a worker, and every archive is processed once; nothing is lost
    started.wait_for(lambda: started.agent.tasks_started >= 1, "a reconcile tick to start a worker")
    started.wait_for(lambda: verdict(started.stack.s3, started.bucket, keys).all_succeeded, "every manifest")
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}
    # AND the event's retries, which enqueued the same objects again, were skips, not second runs
    assert started.successes_per_key() == dict.fromkeys(keys, 1)
