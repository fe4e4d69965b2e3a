"""Hypothesis strategies for the property tests: arbitrary JSON, and S3-like records that are nearly right."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Any JSON document: what a misconfigured source could send to the Lambda or put on the queue.
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

# S3 object keys: any text S3 accepts (up to 1024 UTF-8 bytes); biased towards the awkward characters.
awkward_characters = st.sampled_from([*" +%/&=?#;:,@$!'()*[]{}\\^`|~<>\"\t", "é", "中", "🎉", "\u00a0"])
object_keys = st.lists(awkward_characters | st.characters(codec="utf-8"), min_size=1, max_size=60).map("".join)
bucket_names = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True)
etags = st.from_regex(r"[0-9a-f]{32}(-[0-9]{1,4})?", fullmatch=True)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or a value of the wrong type: half-right records are the interesting ones."""
    return strategy | json_values


@st.composite
def s3_like_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record shaped like an S3 notification record, with any field possibly missing or of the wrong type."""
    s3_object: dict[str, Any] = {
        "key": draw(maybe(object_keys)),
        "size": draw(maybe(st.integers(min_value=0, max_value=5 * 2**40))),
        "eTag": draw(maybe(etags)),
        "versionId": draw(maybe(st.text(max_size=10))),
        "sequencer": draw(maybe(st.text(max_size=10))),
    }
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": draw(st.sampled_from(["aws:s3", "aws:s3", "aws:sqs"]) | json_values),
        "awsRegion": draw(maybe(st.just("us-east-1"))),
        "eventTime": draw(maybe(st.just("2026-11-21T19:30:00.000Z"))),
        "eventName": draw(
            maybe(
                st.sampled_from(["ObjectCreated:Put", "ObjectCreated:CompleteMultipartUpload", "ObjectRemoved:Delete"])
            )
        ),
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": draw(maybe(bucket_names)), "arn": draw(maybe(st.just("arn:aws:s3:::b")))},
            "object": draw(st.just(s3_object) | json_values),
        },
    }
    # Drop some fields entirely.
    for name in draw(st.lists(st.sampled_from(["eventSource", "eventName", "s3", "awsRegion"]), max_size=2)):
        record.pop(name, None)
    return record


@st.composite
def valid_records(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A well-formed record whose key is URL-encoded as S3 sends it, and the decoded facts it describes."""
    from urllib.parse import quote_plus

    key = draw(object_keys)
    facts = {
        "bucket": draw(bucket_names),
        "key": key,
        "size": draw(st.integers(min_value=1, max_value=5 * 2**40)),
        "etag": draw(etags),
        "version_id": draw(st.none() | st.text(alphabet="abcdefABCDEF0123456789._", min_size=1, max_size=32)),
    }
    s3_object: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": facts["size"], "eTag": facts["etag"]}
    if facts["version_id"] is not None:
        s3_object["versionId"] = facts["version_id"]
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T19:30:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "notify",
            "bucket": {"name": facts["bucket"], "arn": f"arn:aws:s3:::{facts['bucket']}"},
            "object": s3_object,
        },
    }
    return record, facts


@st.composite
def eventbridge_events(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A well-formed EventBridge "Object Created" event from S3 (its key is not URL-encoded), and its facts."""
    facts = {
        "bucket": draw(bucket_names),
        "key": draw(object_keys),
        "size": draw(st.integers(min_value=1, max_value=5 * 2**40)),
        "etag": draw(etags),
        "version_id": draw(st.none() | st.text(alphabet="abcdefABCDEF0123456789._", min_size=1, max_size=32)),
        "sequencer": draw(st.from_regex(r"[0-9A-F]{16,20}", fullmatch=True)),
    }
    s3_object: dict[str, Any] = {
        "key": facts["key"],
        "size": facts["size"],
        "etag": facts["etag"],
        "sequencer": facts["sequencer"],
    }
    if facts["version_id"] is not None:
        s3_object["version-id"] = facts["version_id"]
    event = {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-21T19:30:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{facts['bucket']}"],
        "detail": {
            "version": "0",
            "bucket": {"name": facts["bucket"]},
            "object": s3_object,
            "reason": draw(st.sampled_from(["PutObject", "CopyObject", "CompleteMultipartUpload"])),
        },
    }
    return event, facts


def sns_notification(message: str) -> dict[str, Any]:
    """An SNS notification as SNS delivers it to an SQS queue (no raw message delivery) or in a Lambda record."""
    return {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:lew-uploads",
        "Subject": "Amazon S3 Notification",
        "Message": message,
        "Timestamp": "2026-11-21T19:30:00.512Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
    }


def sns_lambda_event(*messages: str) -> dict[str, Any]:
    """The event Lambda receives from an SNS subscription: one record per notification."""
    return {
        "Records": [
            {"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": sns_notification(message)} for message in messages
        ]
    }
