"""Fault matrix row 5: the same object announced twice is processed once; the second announcement is a logged skip.

On the local stack, S3's notification of an upload reaches the launcher through its inbox queue; the tests
add a second announcement of the same object to that inbox, as S3 (at-least-once delivery) or Lambda (an
asynchronous retry of the same event) would.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

import worker.__main__ as worker_main
from lew.queues import queue_depths
from tests.faults.conftest import StartedStack
from tests.faults.harness import REGION, TEST_TIMEOUT_SECONDS, verdict, work_message, zip_archive
from worker.drain import Summary
from worker.settings import Settings
from worker.shutdown import Shutdown

# A processor that takes three seconds, long enough for a second worker to pick up the duplicate meanwhile.
SLOW_COMMAND = (
    f'{sys.executable} -c "import os, pathlib, time; time.sleep(3); '
    "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'done.txt').write_text('done')\""
)

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]


def s3_event(started: StartedStack, key: str, event_name: str) -> dict[str, Any]:
    """The S3 notification of an existing object, in the shape S3 sends (key URL-encoded)."""
    head = started.stack.s3.head_object(Bucket=started.bucket, Key=key)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-21T19:30:00.000Z",
                "eventName": event_name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "duplicate",
                    "bucket": {"name": started.bucket, "arn": f"arn:aws:s3:::{started.bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": head["ContentLength"],
                        "eTag": head["ETag"].strip('"'),
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def announce_again(started: StartedStack, event: dict[str, Any]) -> None:
    started.stack.sqs.send_message(QueueUrl=started.resources.inbox_url, MessageBody=json.dumps(event))


def assert_processed_once_with_a_logged_skip(started: StartedStack, key: str, announcements: int) -> None:
    started.wait_for(lambda: verdict(started.stack.s3, started.bucket, [key]).all_succeeded, "the manifest")
    started.wait_for(lambda: len(started.skips()) >= announcements - 1, "the duplicate to be skipped")
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
    assert started.successes_per_key() == {key: 1}
    assert [record["key"] for record in started.skips()] == [key] * (announcements - 1)
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}


def test_duplicate_s3_event_is_processed_once_and_the_second_is_a_logged_skip(
    local_stack: Callable[..., StartedStack],
) -> None:
    # GIVEN an upload, which S3 announces once
    started = local_stack()
    key = "incoming/dup/scene one.zip"
    started.upload(key, zip_archive(key))
    # WHEN the same notification is delivered a second time (and a third: a Lambda retry of the same event)
    event = s3_event(started, key, "ObjectCreated:Put")
    announce_again(started, event)
    announce_again(started, event)
    # THEN the archive is processed once, and each extra announcement is a logged skip
    assert_processed_once_with_a_logged_skip(started, key, announcements=3)


def test_multipart_upload_announced_twice_is_processed_once(local_stack: Callable[..., StartedStack]) -> None:
    # GIVEN an archive uploaded with a multipart upload: moto announces it twice by itself, as
    # ObjectCreated:Put and as ObjectCreated:CompleteMultipartUpload (the "two events of a multipart upload")
    started = local_stack()
    key = "incoming/dup/multipart.zip"
    s3 = started.stack.s3
    upload_id = s3.create_multipart_upload(Bucket=started.bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=started.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=zip_archive(key))
    s3.complete_multipart_upload(
        Bucket=started.bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert s3.head_object(Bucket=started.bucket, Key=key)["ETag"].strip('"').endswith("-1")
    # WHEN the completion is also delivered a second time
    announce_again(started, s3_event(started, key, "ObjectCreated:CompleteMultipartUpload"))
    # THEN it is processed once; the two other announcements are logged skips
    assert_processed_once_with_a_logged_skip(started, key, announcements=3)


def test_duplicate_messages_held_by_two_workers_at_once_are_processed_once(moto_server: str) -> None:
    # GIVEN one object announced twice (two messages), and a job that takes a few seconds
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    bucket, key = "lew-race", "incoming/race/scene.zip"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName="lew-work", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    s3.put_object(Bucket=bucket, Key=key, Body=zip_archive(key))
    for _ in range(2):
        sqs.send_message(QueueUrl=queue_url, MessageBody=work_message(s3, bucket, key))
    settings = Settings(
        queue_url=queue_url,
        region=REGION,
        processor="command",
        process_command=SLOW_COMMAND,
        wait_time_seconds=1,
        idle_polls=2,
        visibility_timeout=30,
    )
    summaries: list[Summary] = []
    # WHEN two workers take one message each, at the same time (MAX_WORKERS > 1 makes this ordinary)
    threads = [
        threading.Thread(target=lambda: summaries.append(worker_main.run(settings, {}, Shutdown(grace_seconds=5))))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # each worker exits once the queue stays empty for its idle polls
    # THEN the object is processed once, and the other delivery is a skip
    outcomes = sum((summary.outcomes for summary in summaries), Counter())
    assert outcomes == Counter(succeeded=1, skipped=1), outcomes
    assert verdict(s3, bucket, [key]).all_succeeded
    assert queue_depths(sqs, queue_url) == (0, 0)
