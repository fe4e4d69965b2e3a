"""The fault proxy itself: it recognises calls, injects what it is told, and boto3 retries through it."""

from __future__ import annotations

import json

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.faults.proxy import FaultProxy, Rule, classify, delay, error, reset, slow_down, throttling

pytestmark = [pytest.mark.faults, pytest.mark.slow]

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=2)
RETRIES = Config(retries={"total_max_attempts": 5, "mode": "standard"}, connect_timeout=2, read_timeout=2)


@pytest.mark.parametrize(
    ("method", "target", "headers", "body", "expected"),
    [
        ("POST", "/", {"x-amz-target": "AmazonSQS.ReceiveMessage"}, b"{}", "ReceiveMessage"),
        ("POST", "/", {"x-amz-target": "AmazonEC2ContainerServiceV20141113.RunTask"}, b"{}", "RunTask"),
        (
            "POST",
            "/",
            {"content-type": "application/x-www-form-urlencoded"},
            b"Action=GetCallerIdentity",
            "GetCallerIdentity",
        ),
        ("PUT", "/bucket/results/a/manifest.json", {}, b"", "PutObject"),
        ("PUT", "/bucket/k?partNumber=1&uploadId=x", {}, b"", "UploadPart"),
        ("PUT", "/bucket/k", {"x-amz-copy-source": "/bucket/j"}, b"", "CopyObject"),
        ("POST", "/bucket/k?uploads", {}, b"", "CreateMultipartUpload"),
        ("POST", "/bucket/k?uploadId=x", {}, b"", "CompleteMultipartUpload"),
        ("GET", "/bucket/incoming/a%20b.zip", {}, b"", "GetObject"),
        ("HEAD", "/bucket/k", {}, b"", "HeadObject"),
        ("GET", "/bucket?list-type=2&prefix=results%2F", {}, b"", "ListObjectsV2"),
        ("PUT", "/bucket", {}, b"", "CreateBucket"),
        ("DELETE", "/bucket/k", {}, b"", "DeleteObject"),
    ],
)
def test_classify_names_the_operation(
    method: str, target: str, headers: dict[str, str], body: bytes, expected: str
) -> None:
    assert classify(method, target, headers, body) == expected


def test_proxy_refuses_a_non_local_upstream() -> None:
    with pytest.raises(ValueError, match="only forwards to a local server"):
        FaultProxy("https://s3.amazonaws.com:443")


def test_proxy_forwards_sqs_json_and_s3_calls(proxy: FaultProxy) -> None:
    # GIVEN clients that talk to moto through the proxy
    s3 = boto3.client("s3", endpoint_url=proxy.endpoint, config=NO_RETRIES)
    sqs = boto3.client("sqs", endpoint_url=proxy.endpoint, config=NO_RETRIES)
    # WHEN they make ordinary calls
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="incoming/a b+c.zip", Body=b"x" * 10)
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"a": 1}))
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    # THEN they work, and the proxy saw each call under its operation name
    assert s3.get_object(Bucket="bkt", Key="incoming/a b+c.zip")["Body"].read() == b"x" * 10
    assert json.loads(received[0]["Body"]) == {"a": 1}
    for operation in ("CreateBucket", "PutObject", "GetObject", "CreateQueue", "SendMessage", "ReceiveMessage"):
        assert proxy.count(operation) == 1, operation
    assert proxy.injected() == []


@pytest.mark.parametrize(
    ("fault", "expected_code"),
    [(error(500, "InternalError"), "InternalError"), (slow_down(), "SlowDown"), (throttling(), "ThrottlingException")],
)
def test_proxy_error_answers_parse_as_aws_errors(proxy: FaultProxy, fault: object, expected_code: str) -> None:
    # GIVEN a queue, and a rule that fails the first ReceiveMessage and the first PutObject
    sqs = boto3.client("sqs", endpoint_url=proxy.endpoint, config=NO_RETRIES)
    s3 = boto3.client("s3", endpoint_url=proxy.endpoint, config=NO_RETRIES)
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    s3.create_bucket(Bucket="bkt")
    assert isinstance(fault, type(error()))
    proxy.add(Rule("ReceiveMessage", fault, nth=1))
    proxy.add(Rule("PutObject", fault, nth=1))
    # WHEN the calls are made without retries, THEN botocore sees the injected AWS error code
    with pytest.raises(botocore.exceptions.ClientError) as sqs_error:
        sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    with pytest.raises(botocore.exceptions.ClientError) as s3_error:
        s3.put_object(Bucket="bkt", Key="k", Body=b"1")
    assert sqs_error.value.response["Error"]["Code"] == expected_code
    assert s3_error.value.response["Error"]["Code"] == expected_code
    # AND the second calls go through
    sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    s3.put_object(Bucket="bkt", Key="k", Body=b"1")
    assert [c.operation for c in proxy.injected()] == ["ReceiveMessage", "PutObject"]


def test_proxy_reset_and_delay_are_retried_by_boto3(proxy: FaultProxy) -> None:
    # GIVEN a bucket, and rules that reset the first PutObject and hold the first GetObject past the timeout
    s3 = boto3.client("s3", endpoint_url=proxy.endpoint, config=RETRIES)
    s3.create_bucket(Bucket="bkt")
    proxy.add(Rule("PutObject", reset(), nth=1))
    proxy.add(Rule("PutObject", reset(after_forward=True), nth=2))
    proxy.add(Rule("GetObject", delay(3), nth=1))
    # WHEN the calls are made with retries
    s3.put_object(Bucket="bkt", Key="k", Body=b"payload")
    body = s3.get_object(Bucket="bkt", Key="k")["Body"].read()
    # THEN they succeed on a later attempt, and each fault was really injected
    assert body == b"payload"
    assert proxy.count("PutObject") == 3
    assert proxy.count("GetObject") == 2
    assert [c.action for c in proxy.injected()] == ["reset", "reset after forward", "delay 3s"]


def test_proxy_reset_without_retries_is_a_connection_error(proxy: FaultProxy) -> None:
    s3 = boto3.client("s3", endpoint_url=proxy.endpoint, config=NO_RETRIES)
    s3.create_bucket(Bucket="bkt")
    proxy.add(Rule("HeadBucket", reset(), times=None))
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        s3.head_bucket(Bucket="bkt")
