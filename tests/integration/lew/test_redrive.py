"""`lew redrive`'s fallback move (receive, send, delete), against moto: everything moves once, nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from lew.errors import LewError
from lew.ops import move_messages
from lew.queues import queue_depths

REGION = "us-east-1"


@pytest.fixture
def queues(aws: None) -> Iterator[tuple[Any, str, str]]:
    """An SQS client, a work queue URL and a DLQ URL."""
    sqs = boto3.client("sqs", region_name=REGION)
    work = sqs.create_queue(QueueName="lew-work")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="lew-dlq")["QueueUrl"]
    yield sqs, work, dlq


def bodies(sqs: Any, queue_url: str) -> list[str]:
    """Every body on a queue (received with a long visibility timeout so none is seen twice)."""
    found: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    ):
        found.extend(message["Body"] for message in messages)
    return found


def test_every_dead_letter_moves_back_once_with_its_attributes(queues: tuple[Any, str, str]) -> None:
    # GIVEN 23 messages in the DLQ (three batches), each with the reason it was moved aside
    sqs, work, dlq = queues
    for number in range(23):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=f"body-{number}",
            MessageAttributes={"reason": {"DataType": "String", "StringValue": f"reason {number}"}},
        )
    # WHEN they are moved
    moved = move_messages(sqs, dlq, work)
    # THEN all 23 are on the work queue, once each, with their reason; the DLQ is empty
    assert moved == 23
    assert queue_depths(sqs, dlq) == (0, 0)
    received = sqs.receive_message(QueueUrl=work, MaxNumberOfMessages=1, MessageAttributeNames=["All"])["Messages"]
    assert received[0]["MessageAttributes"]["reason"]["StringValue"] == received[0]["Body"].replace("body-", "reason ")
    assert sorted([received[0]["Body"], *bodies(sqs, work)]) == sorted(f"body-{number}" for number in range(23))


def test_a_message_sent_straight_back_by_a_worker_is_not_moved_again(queues: tuple[Any, str, str]) -> None:
    # GIVEN one poison message in the DLQ, and a worker that moves every message it sees on the work queue straight
    # back to the DLQ (it is still poison) the moment it arrives
    sqs, work, dlq = queues
    sqs.send_message(QueueUrl=dlq, MessageBody="still poison")
    worker = boto3.client("sqs", region_name=REGION)
    bounces = 0

    def worker_moves_it_back(**_: Any) -> None:
        nonlocal bounces
        if bounces >= 20:  # the old, unbounded loop would never stop on its own: end it so the test can fail
            return
        for message in worker.receive_message(QueueUrl=work, MaxNumberOfMessages=10).get("Messages", []):
            worker.send_message(QueueUrl=dlq, MessageBody=message["Body"])
            worker.delete_message(QueueUrl=work, ReceiptHandle=message["ReceiptHandle"])
            bounces += 1

    sqs.meta.events.register("after-call.sqs.SendMessageBatch", worker_moves_it_back)
    # WHEN the redrive runs
    moved = move_messages(sqs, dlq, work)
    # THEN it moved the one message it found and stopped; the bounced copy waits in the DLQ for the next redrive
    assert moved == 1
    assert bounces == 1
    assert bodies(sqs, dlq) == ["still poison"]


def test_messages_that_cannot_be_sent_stay_in_the_dlq_and_visible(queues: tuple[Any, str, str]) -> None:
    # GIVEN two dead letters and a work queue that refuses one of them
    sqs, work, dlq = queues
    for body in ("fine", "refused"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)

    plain = boto3.client("sqs", region_name=REGION)

    def refuse_one(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        # SQS fails entries one by one (moto never does): send the others, answer "Failed" for the refused one.
        request = json.loads(params["body"])  # SQS speaks the JSON protocol
        successful, failed = [], []
        for entry in request["Entries"]:
            if entry["MessageBody"] == "refused":
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "boom"})
            else:
                plain.send_message(QueueUrl=request["QueueUrl"], MessageBody=entry["MessageBody"])
                successful.append({"Id": entry["Id"], "MessageId": "m", "MD5OfMessageBody": "x"})
        return AWSResponse(request["QueueUrl"], 200, {}, None), {"Successful": successful, "Failed": failed}

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", refuse_one)
    # WHEN the redrive runs
    with pytest.raises(LewError, match="moved 1, but 1 could not be sent"):
        move_messages(sqs, dlq, work)
    # THEN the refused one is still in the DLQ and visible at once (no 60 s wait), the other moved
    assert queue_depths(sqs, dlq) == (1, 0)
    assert bodies(sqs, work) == ["fine"]
