"""The work queue's maxReceiveCount, read once at start: a message's last allowed attempt is dead-lettered by the
worker itself, with its reason (worker/dispatch.py), before SQS would move it with none."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from worker.log import get_logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def max_receive_count(sqs: SQSClient, queue_url: str) -> int | None:
    """The maxReceiveCount of the queue's RedrivePolicy, or None (logged) when it has none or it cannot be read.

    Read from the queue rather than from a setting, so that it can never disagree with the policy SQS applies.
    Needs sqs:GetQueueAttributes on the work queue (the template grants it). `python -m worker` reads the attribute
    in its start-up check instead (`worker.faults.check_queue`) and calls `max_receive_count_of`.
    """
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get(
            "Attributes", {}
        )
    except (BotoCoreError, ClientError) as error:
        get_logger().warning(
            "could not read the queue's RedrivePolicy: messages that exhaust their receives reach the DLQ without a "
            "reason",
            extra={"error": str(error)},
        )
        return None
    return max_receive_count_of(attributes.get("RedrivePolicy"))


def max_receive_count_of(raw: str | None) -> int | None:
    """The maxReceiveCount in a queue's RedrivePolicy attribute (JSON), or None (logged) when there is none."""
    try:
        count = json.loads(raw)["maxReceiveCount"] if raw else None
        count = int(count) if count is not None else None
    except (ValueError, TypeError, KeyError):
        count = None
    if count is None or count < 1:
        get_logger().warning(
            "the work queue has no usable RedrivePolicy: no last-attempt dead-lettering", extra={"raw": raw}
        )
        return None
    return count
