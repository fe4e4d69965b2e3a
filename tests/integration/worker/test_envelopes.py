"""S3 events in the envelopes real set-ups use, delivered to the work queue by moto's own S3, SNS and EventBridge.

S3 -> SNS -> SQS without raw message delivery puts an SNS notification on the queue (its Message is the S3 event
as a string); with raw delivery, the plain S3 event; S3 -> EventBridge -> SQS puts an EventBridge "Object Created"
event (its key not URL-encoded); EventBridge -> SNS -> SQS wraps that in an SNS notification. The worker drains
each as it drains a plain S3 notification: a success manifest for the upload, nothing left on the queue or the DLQ.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from .conftest import BUCKET, REGION, Stack, zip_bytes

# A space and a plus: S3 notifications encode them ('+' and '%2B'); EventBridge events carry them as they are.
KEY = "incoming/envelopes/my scène+1.zip"
ARCHIVE = zip_bytes({"scene.pov": b"sphere { 0, 1 }\n"})
# Only uploads under the input prefix, as the template's notification: the worker's own results would loop.
INPUT_FILTER = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}


def queue_arn(stack: Stack) -> str:
    attributes = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])
    arn: str = attributes["Attributes"]["QueueArn"]
    return arn


def topic_to_queue(stack: Stack, *, raw: bool) -> str:
    """An SNS topic whose subscription delivers to the work queue; return the topic's ARN."""
    sns = boto3.client("sns", region_name=REGION)
    topic_arn: str = sns.create_topic(Name="lew-uploads")["TopicArn"]
    attributes = {"RawMessageDelivery": "true"} if raw else {}
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(stack), Attributes=attributes)
    return topic_arn


def eventbridge_rule(target_arn: str) -> None:
    """A rule on the default bus sending S3's Object Created events to the target."""
    events = boto3.client("events", region_name=REGION)
    detail = {"bucket": {"name": [BUCKET]}, "object": {"key": [{"prefix": "incoming/"}]}}
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}
    events.put_rule(Name="lew-uploads", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="lew-uploads", Targets=[{"Id": "work", "Arn": target_arn}])


def queued_bodies(stack: Stack) -> list[dict[str, Any]]:
    """The bodies on the work queue, made visible again at once (the worker receives them next)."""
    received = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(message["Body"]) for message in received.get("Messages", [])]


def manifests_by_key(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every manifest under results/, by the key of the upload it describes."""
    found: dict[str, dict[str, Any]] = {}
    for page in stack.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="results/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith("manifest.json"):
                manifest = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
                found[manifest["source"]["key"]] = manifest
    return found


def assert_processed(stack: Stack) -> None:
    summary = stack.run()
    manifests = manifests_by_key(stack)
    assert manifests[KEY]["status"] == "succeeded", manifests[KEY]
    assert stack.queue_counts() == (0, 0)
    assert stack.queue_counts(stack.dlq_url) == (0, 0)
    assert summary.to_dict()["processed"] == 1


@pytest.mark.parametrize("raw", [False, True], ids=["sns-envelope", "sns-raw-delivery"])
def test_worker_processes_uploads_notified_through_sns(stack: Stack, raw: bool) -> None:
    # GIVEN the bucket notifying an SNS topic, and the work queue subscribed to it (with or without raw delivery)
    topic_arn = topic_to_queue(stack, raw=raw)
    stack.s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"], "Filter": INPUT_FILTER}]
        },
    )
    # WHEN an archive is uploaded
    stack.upload(KEY, ARCHIVE)
    bodies = queued_bodies(stack)
    # THEN the queue holds S3's test event and the upload's event, in the envelope the subscription uses
    if raw:
        assert {"Records", "Event"} & set(bodies[0]) and all("Type" not in body for body in bodies)
    else:
        assert all(body["Type"] == "Notification" and body["TopicArn"] == topic_arn for body in bodies)
    # AND the worker processes the upload, deletes the test event, and leaves nothing behind
    assert_processed(stack)


def test_worker_processes_uploads_delivered_by_eventbridge(stack: Stack) -> None:
    # GIVEN the bucket sending its events to EventBridge, and a rule sending Object Created to the work queue
    stack.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    eventbridge_rule(queue_arn(stack))
    # WHEN an archive is uploaded
    stack.upload(KEY, ARCHIVE)
    # THEN the queue holds the EventBridge event, its key as it is
    [body] = queued_bodies(stack)
    assert (body["source"], body["detail-type"], body["detail"]["object"]["key"]) == ("aws.s3", "Object Created", KEY)
    # AND the worker processes it like a plain notification
    assert_processed(stack)


def test_worker_ignores_its_own_results_announced_by_an_unfiltered_rule(stack: Stack) -> None:
    # GIVEN an EventBridge rule that sends every Object Created event of the bucket to the work queue, results too
    stack.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events = boto3.client("events", region_name=REGION)
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [BUCKET]}}}
    events.put_rule(Name="lew-everything", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="lew-everything", Targets=[{"Id": "work", "Arn": queue_arn(stack)}])
    # WHEN an archive is uploaded and the worker drains the queue (its results announce themselves as they land)
    stack.upload(KEY, ARCHIVE)
    summary = stack.run()
    # THEN the upload is processed once, its results are ignored, not processed, and the queue ends empty
    manifests = manifests_by_key(stack)
    assert list(manifests) == [KEY] and manifests[KEY]["status"] == "succeeded"
    assert summary.to_dict()["processed"] == 1
    assert stack.queue_counts() == (0, 0)
    assert stack.queue_counts(stack.dlq_url) == (0, 0)


def test_worker_processes_uploads_delivered_by_eventbridge_through_sns(stack: Stack) -> None:
    # GIVEN S3 -> EventBridge -> SNS topic -> work queue (no raw delivery). moto's EventBridge does not deliver to
    # SNS, so the rule targets a capture queue and the test publishes what EventBridge made, as EventBridge would.
    topic_arn = topic_to_queue(stack, raw=False)
    capture_url = stack.sqs.create_queue(QueueName="lew-eventbridge-capture")["QueueUrl"]
    capture_arn = stack.sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]
    stack.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    eventbridge_rule(capture_arn["QueueArn"])
    stack.upload(KEY, ARCHIVE)
    [event] = stack.sqs.receive_message(QueueUrl=capture_url)["Messages"]
    # WHEN EventBridge publishes the event to the topic
    boto3.client("sns", region_name=REGION).publish(TopicArn=topic_arn, Message=event["Body"])
    # THEN the work queue holds an SNS notification whose Message is the EventBridge event
    [body] = queued_bodies(stack)
    assert json.loads(body["Message"])["detail"]["object"]["key"] == KEY
    # AND the worker processes it
    assert_processed(stack)
