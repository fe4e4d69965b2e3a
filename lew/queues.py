"""Small SQS reads that the local stack, the operations and the tests all need: one definition of each."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    """A queue's ARN, from its URL."""
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queue_depths(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """(waiting, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def create_work_queue(
    sqs: SQSClient, *, name: str, dead_letter_name: str, visibility_timeout: int, max_receive_count: int
) -> tuple[str, str]:
    """Create the encrypted work queue and its DLQ, which SQS fills after `max_receive_count` receives.

    Returns (work queue URL, DLQ URL).
    """
    dlq_url = sqs.create_queue(QueueName=dead_letter_name, Attributes={"SqsManagedSseEnabled": "true"})["QueueUrl"]
    redrive_policy = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": max_receive_count}
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive_policy),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    return queue_url, dlq_url
