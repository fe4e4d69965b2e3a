"""max_receive_count: the work queue's maxReceiveCount, read once at start from its RedrivePolicy."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from worker.faults import check_queue
from worker.redrive import max_receive_count, max_receive_count_of


class StubSQS:
    def __init__(self, attributes: dict[str, str] | None = None, error: Exception | None = None) -> None:
        self.attributes, self.error = attributes or {}, error

    def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["AttributeNames"] == ["RedrivePolicy"]
        if self.error is not None:
            raise self.error
        return {"Attributes": self.attributes}


def test_max_receive_count_reads_the_redrive_policy() -> None:
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 5})
    assert max_receive_count(StubSQS({"RedrivePolicy": policy}), "url") == 5  # type: ignore[arg-type]


def test_max_receive_count_accepts_the_count_as_text() -> None:
    policy = json.dumps({"deadLetterTargetArn": "arn", "maxReceiveCount": "3"})
    assert max_receive_count(StubSQS({"RedrivePolicy": policy}), "url") == 3  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sqs",
    [
        StubSQS({}),  # no redrive policy
        StubSQS({"RedrivePolicy": "not json"}),
        StubSQS({"RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn"})}),
        StubSQS({"RedrivePolicy": json.dumps({"maxReceiveCount": 0})}),
        StubSQS(error=ClientError({"Error": {"Code": "AccessDenied"}}, "GetQueueAttributes")),
    ],
)
def test_max_receive_count_is_none_when_the_policy_is_missing_or_unreadable(sqs: StubSQS) -> None:
    assert max_receive_count(sqs, "url") is None  # type: ignore[arg-type]


def test_the_start_up_check_reads_the_redrive_policy_in_the_same_request() -> None:
    # GIVEN SQS answering the worker's one start-up GetQueueAttributes
    sqs = boto3.client("sqs", region_name="us-east-1")
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 4})
    with Stubber(sqs) as stub:
        stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:1:work", "RedrivePolicy": policy}},
            {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/work", "AttributeNames": ["QueueArn", "RedrivePolicy"]},
        )
        # WHEN the check runs
        attributes = check_queue(sqs, "https://sqs.us-east-1.amazonaws.com/1/work")
    # THEN the maxReceiveCount comes out of its answer
    assert max_receive_count_of(attributes.get("RedrivePolicy")) == 4
