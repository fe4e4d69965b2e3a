"""Fault matrix row 3: transient AWS errors on S3 and SQS calls are retried; nothing is lost, nothing done twice.

The worker runs in this process with its real wiring (``worker.__main__.run``: its own clients, retry
configuration, heartbeat and loop), talking to a moto server through the fault proxy. Only the clients' read
timeout is shortened (2 s instead of 60 s), so that a held answer becomes a read timeout within the test's time.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config

import worker.__main__ as worker_main
from lew.queues import create_work_queue, queue_depths
from tests.faults.harness import REGION, TEST_TIMEOUT_SECONDS, verdict, wait_for, work_message, zip_archive
from tests.faults.proxy import Fault, FaultProxy, Rule, delay, error, reset, slow_down, throttling
from worker.settings import Settings
from worker.shutdown import Shutdown

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]

BUCKET = "lew-faults"
ARCHIVES = 3
READ_TIMEOUT = 2
VISIBILITY_TIMEOUT = 4  # short: a message whose settlement failed comes back within seconds


class Pipeline:
    """A bucket and queues on the moto server, archives uploaded and announced, and a worker to drain them."""

    def __init__(self, moto_endpoint: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
        self.proxy = proxy
        self.s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
        self.sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        self.queue_url, self.dlq_url = create_work_queue(
            self.sqs,
            name="lew-work",
            dead_letter_name="lew-dlq",
            visibility_timeout=VISIBILITY_TIMEOUT,
            max_receive_count=5,
        )
        self.keys = [f"incoming/batch/scene {index}.zip" for index in range(ARCHIVES)]
        for key in self.keys:
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=zip_archive(key))
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=work_message(self.s3, BUCKET, key))
        # The worker's clients go through the proxy: boto3 reads AWS_ENDPOINT_URL for every service.
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        production_config = worker_main.client_config
        monkeypatch.setattr(
            worker_main,
            "client_config",
            lambda settings: production_config(settings).merge(Config(read_timeout=READ_TIMEOUT, connect_timeout=2)),
        )
        self.outcomes: Counter[str] = Counter()
        self.worker_runs = 0

    def settings(self) -> Settings:
        return Settings(
            queue_url=self.queue_url,
            region=REGION,
            processor="inventory",
            wait_time_seconds=1,
            idle_polls=1,
            visibility_timeout=VISIBILITY_TIMEOUT,
            stop_grace_seconds=5,
            dlq_url=self.dlq_url,
        )

    def run_workers_until_drained(self) -> None:
        """Start one worker after another, as the reconcile schedule would, until no message is left."""

        def one_worker_then_check() -> bool:
            summary = worker_main.run(self.settings(), {}, Shutdown(grace_seconds=5))
            self.worker_runs += 1
            self.outcomes.update(summary.outcomes)
            return queue_depths(self.sqs, self.queue_url) == (0, 0)

        # Each worker's outcomes and the proxy's requests are the steps; a wait fails only when they stop.
        wait_for(
            one_worker_then_check,
            "the work queue to be drained",
            progress=lambda: (self.outcomes.total(), len(self.proxy.calls)),
            interval=0.5,
        )


@pytest.fixture
def pipeline(moto_server: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return Pipeline(moto_server, proxy, monkeypatch)


# Faults that the clients' own retries absorb (standard mode, max_attempts=5: botocore counts 5 retries, so 6 calls):
# each one is injected into the
# first calls of an operation, so that every archive still goes through.
ABSORBED_FAULTS: list[tuple[str, str, Fault, int]] = [
    ("s3-put-500", "PutObject", error(500, "InternalError"), 2),
    ("s3-put-slowdown", "PutObject", slow_down(), 2),
    ("s3-put-reset", "PutObject", reset(), 2),
    ("s3-put-reset-after-write", "PutObject", reset(after_forward=True), 2),
    ("s3-get-500", "GetObject", error(500, "InternalError"), 2),
    ("s3-get-read-timeout", "GetObject", delay(READ_TIMEOUT + 1.5), 1),
    ("s3-get-slowdown", "GetObject", slow_down(), 2),
    ("s3-get-reset", "GetObject", reset(), 1),
    ("sqs-receive-500", "ReceiveMessage", error(500, "InternalError"), 2),
    ("sqs-receive-throttling", "ReceiveMessage", throttling(), 3),
    ("sqs-receive-reset", "ReceiveMessage", reset(), 2),
    ("sqs-receive-read-timeout", "ReceiveMessage", delay(READ_TIMEOUT + 1.5), 1),
    ("sqs-delete-500", "DeleteMessage", error(500, "InternalError"), 2),
    ("sqs-delete-throttling", "DeleteMessage", throttling(), 2),
    ("sqs-delete-reset-after-delete", "DeleteMessage", reset(after_forward=True), 1),
]


@pytest.mark.parametrize(
    ("operation", "fault", "times"),
    [pytest.param(op, fault, times, id=name) for name, op, fault, times in ABSORBED_FAULTS],
)
def test_transient_error_is_retried_and_every_archive_is_processed_once(
    pipeline: Pipeline, operation: str, fault: Fault, times: int
) -> None:
    # GIVEN three announced archives, and the first calls of one operation failing
    pipeline.proxy.add(Rule(operation, fault, times=times))
    # WHEN workers drain the queue
    pipeline.run_workers_until_drained()
    # THEN the faults really happened
    assert len(pipeline.proxy.injected(operation)) == times
    # AND every archive has one success manifest for its current ETag, with its outputs present
    result = verdict(pipeline.s3, BUCKET, pipeline.keys)
    assert result.all_succeeded, result
    # AND each archive was processed exactly once; redeliveries, if any, were skips
    assert pipeline.outcomes["succeeded"] == ARCHIVES, pipeline.outcomes
    assert pipeline.outcomes["failed"] == 0
    # AND nothing is left on the queue or in the DLQ
    assert queue_depths(pipeline.sqs, pipeline.queue_url) == (0, 0)
    assert queue_depths(pipeline.sqs, pipeline.dlq_url) == (0, 0)


# Faults that outlast the clients' retries: the job (or its settlement) fails, and the message must come back.
PERSISTENT_FAULTS: list[tuple[str, str, Fault, int]] = [
    # Every PutObject fails for longer than one job's retries: the job is retried later with a backoff.
    ("s3-put-500-outlasts-retries", "PutObject", error(500, "InternalError"), 6),
    ("s3-get-slowdown-outlasts-retries", "GetObject", slow_down(), 6),
    # The manifest is written but the delete keeps failing: the message comes back and is a skip.
    ("sqs-delete-throttled-outlasts-retries", "DeleteMessage", throttling(), 6),
]


@pytest.mark.parametrize(
    ("operation", "fault", "times"),
    [pytest.param(op, fault, times, id=name) for name, op, fault, times in PERSISTENT_FAULTS],
)
def test_error_outlasting_the_retries_leaves_the_message_for_a_later_attempt(
    pipeline: Pipeline, operation: str, fault: Fault, times: int
) -> None:
    # GIVEN a fault that lasts longer than the clients' five attempts
    pipeline.proxy.add(Rule(operation, fault, times=times))
    # WHEN workers drain the queue (each new worker standing in for the next reconcile tick)
    pipeline.run_workers_until_drained()
    # THEN the faults happened, and at least one message had to be received again
    assert len(pipeline.proxy.injected(operation)) == times
    assert pipeline.proxy.count("ReceiveMessage") > ARCHIVES
    # AND every archive still has exactly one success, and nothing was lost to the DLQ
    result = verdict(pipeline.s3, BUCKET, pipeline.keys)
    assert result.all_succeeded, result
    assert pipeline.outcomes["succeeded"] == ARCHIVES, pipeline.outcomes
    assert pipeline.outcomes["retry"] + pipeline.outcomes["skipped"] >= 1, pipeline.outcomes
    assert queue_depths(pipeline.sqs, pipeline.queue_url) == (0, 0)
    assert queue_depths(pipeline.sqs, pipeline.dlq_url) == (0, 0)


# The heartbeat test's visibility: a beat every 2 s, and two throttled attempts (botocore backs off at most
# 1 + 2 s) still extend the message before it would show.
HEARTBEAT_VISIBILITY = 6
# A processor that works for longer than the visibility timeout: only the heartbeat keeps its message hidden.
SLOW_COMMAND = (
    f'{sys.executable} -c "import os, pathlib, time; time.sleep({HEARTBEAT_VISIBILITY * 1.5}); '
    "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'done.txt').write_text('done')\""
)


def test_throttled_heartbeat_still_keeps_a_slow_job_from_a_second_worker(pipeline: Pipeline) -> None:
    # GIVEN one archive whose job outlasts the visibility timeout, and the first heartbeat calls throttled
    for _ in range(ARCHIVES - 1):
        pipeline.sqs.delete_message(
            QueueUrl=pipeline.queue_url,
            ReceiptHandle=pipeline.sqs.receive_message(QueueUrl=pipeline.queue_url)["Messages"][0]["ReceiptHandle"],
        )
    pipeline.proxy.add(Rule("ChangeMessageVisibilityBatch", throttling(), times=2))
    settings = replace(
        pipeline.settings(),
        processor="command",
        process_command=SLOW_COMMAND,
        idle_polls=3,
        visibility_timeout=HEARTBEAT_VISIBILITY,
    )
    summaries = []

    def worker() -> None:
        summaries.append(worker_main.run(settings, {}, Shutdown(grace_seconds=5)))

    # WHEN two workers poll the queue at the same time
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # each worker exits once the queue stays empty for its idle polls
    # THEN the heartbeat was throttled, yet the message stayed with its first worker: one success, no skip
    assert len(pipeline.proxy.injected("ChangeMessageVisibilityBatch")) == 2
    outcomes = sum((summary.outcomes for summary in summaries), Counter())
    assert outcomes == Counter(succeeded=1), outcomes
    assert queue_depths(pipeline.sqs, pipeline.queue_url) == (0, 0)


def test_fault_names_are_unique() -> None:
    names: list[Any] = [row[0] for row in ABSORBED_FAULTS + PERSISTENT_FAULTS]
    assert len(names) == len(set(names))
