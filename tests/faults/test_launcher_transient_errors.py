"""Fault matrix row 3, launcher side: transient errors on the launcher's SQS and ECS calls.

The launcher's `launch` runs with clients that go through the fault proxy. The nastiest case is a
SendMessageBatch whose connection resets *after* SQS stored the batch: botocore retries it, so every
message is on the queue twice. Nothing is lost, and the worker's idempotency turns the copies into skips.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.config import Config

import worker.__main__ as worker_main
from lew.queues import queue_depths
from lew_launcher.launch import launch
from lew_launcher.retry import RetryPolicy
from lew_launcher.scaling import LaunchMemory
from lew_launcher.settings import Settings as LauncherSettings
from tests.faults.harness import REGION, TEST_TIMEOUT_SECONDS, verdict, wait_for, zip_archive
from tests.faults.proxy import Fault, FaultProxy, Rule, error, reset, throttling
from worker.settings import Settings as WorkerSettings
from worker.shutdown import Shutdown

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]

BUCKET = "lew-launch-faults"
KEYS = [f"incoming/launch/scene {index}+x.zip" for index in range(3)]
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=2)


def s3_event(s3: Any) -> dict[str, Any]:
    """One S3 notification announcing every key, as S3 sends it."""
    records = []
    for key in KEYS:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        s3_object = {"key": quote_plus(key, safe="/"), "size": head["ContentLength"], "eTag": head["ETag"].strip('"')}
        records.append(
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-11-21T19:30:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET}, "object": s3_object},
            }
        )
    return {"Records": records}


@pytest.mark.parametrize(
    ("operation", "fault", "copies"),
    [
        pytest.param("SendMessageBatch", reset(after_forward=True), 2, id="send-batch-reset-after-it-landed"),
        pytest.param("SendMessageBatch", error(500, "InternalError"), 1, id="send-batch-500"),
        pytest.param("GetQueueAttributes", throttling(), 1, id="queue-attributes-throttled"),
        pytest.param("RunTask", throttling(), 1, id="run-task-throttled"),
        pytest.param("RunTask", reset(), 1, id="run-task-reset"),
        pytest.param("ListTasks", error(500, "ServerException"), 1, id="list-tasks-500"),
    ],
)
def test_launcher_transient_error_loses_nothing_and_the_worker_processes_each_object_once(
    moto_server: str, proxy: FaultProxy, operation: str, fault: Fault, copies: int
) -> None:
    # GIVEN a bucket with three uploads, a work queue, and an ECS cluster with the worker's task definition
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    ecs = boto3.client("ecs", endpoint_url=moto_server, region_name=REGION)
    ec2 = boto3.client("ec2", endpoint_url=moto_server, region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    for key in KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=zip_archive(key))
    queue_url = sqs.create_queue(QueueName="lew-work", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    ecs.create_cluster(clusterName="lew")
    ecs.register_task_definition(
        family="lew-worker",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": "worker", "image": "lew-worker:test", "memory": 2048}],
    )
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    settings = LauncherSettings.from_env(
        {
            "QUEUE_URL": queue_url,
            "CLUSTER": "lew",
            "TASK_DEFINITION": "lew-worker",
            "SUBNETS": subnet,
            "SECURITY_GROUPS": group,
        }
    )
    # AND the first call of one of the launcher's operations failing
    proxy.add(Rule(operation, fault, nth=1))
    launcher_sqs = boto3.client("sqs", endpoint_url=proxy.endpoint, region_name=REGION, config=CLIENT_CONFIG)
    launcher_ecs = boto3.client("ecs", endpoint_url=proxy.endpoint, region_name=REGION, config=CLIENT_CONFIG)
    # WHEN the launcher handles the upload event
    summary = launch(
        s3_event(s3),
        settings=settings,
        sqs=launcher_sqs,
        ecs=launcher_ecs,
        retry=RetryPolicy(attempts=4, sleep=lambda _seconds: None),
        memory=LaunchMemory(),
    )
    # THEN the fault happened, every object was enqueued (twice when a sent batch was retried), and a worker started
    assert [call.operation for call in proxy.injected()] == [operation]
    assert summary["enqueued"] == len(KEYS)
    assert 1 <= summary["tasks_started"] <= settings.max_workers
    assert queue_depths(sqs, queue_url) == (len(KEYS) * copies, 0)
    # WHEN a worker drains the queue
    worker_settings = WorkerSettings(
        queue_url=queue_url, region=REGION, processor="inventory", wait_time_seconds=1, idle_polls=1
    )
    outcomes: Counter[str] = Counter()

    def one_worker() -> bool:
        outcomes.update(worker_main.run(worker_settings, {}, Shutdown(grace_seconds=1)).outcomes)
        return queue_depths(sqs, queue_url) == (0, 0)

    wait_for(one_worker, "the work queue to be drained", progress=outcomes.total, interval=0.5)
    # THEN each object is processed exactly once; the copies are skips
    assert verdict(s3, BUCKET, KEYS).all_succeeded
    assert outcomes["succeeded"] == len(KEYS), outcomes
    assert outcomes["skipped"] == len(KEYS) * (copies - 1), outcomes
    assert outcomes.total() == len(KEYS) * copies, outcomes
