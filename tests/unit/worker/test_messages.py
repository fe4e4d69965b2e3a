"""parse_body: S3 notification documents into jobs; test events; poison with a reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from worker.messages import Job, Jobs, Poison, TestEvent, parse_body, without_results


def record(key: str, **obj: Any) -> dict[str, Any]:
    return {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "bucket"}, "object": {"key": key, **obj}},
    }


def test_parse_body_returns_one_job_per_record_with_decoded_keys() -> None:
    body = json.dumps(
        {
            "Records": [
                record("incoming/my+scene+%C3%A9.zip", size=10, eTag="abc", versionId="v1"),
                record("incoming%2Fa%2Fb.tgz"),  # a local emulator encodes '/' too
            ]
        }
    )

    parsed = parse_body(body)

    assert parsed == Jobs(
        (
            Job("bucket", "incoming/my scene é.zip", size=10, etag="abc", version_id="v1"),
            Job("bucket", "incoming/a/b.tgz"),
        )
    )


def test_parse_body_ignores_records_that_are_not_creations() -> None:
    removed = record("incoming/x.zip") | {"eventName": "ObjectRemoved:Delete"}

    parsed = parse_body(json.dumps({"Records": [removed, record("incoming/y.zip")]}))

    assert isinstance(parsed, Jobs)
    assert [job.key for job in parsed.jobs] == ["incoming/y.zip"]
    assert parsed.ignored == ("ObjectRemoved:Delete s3://bucket/incoming/x.zip",)


def test_parse_body_strips_quotes_from_etags() -> None:
    parsed = parse_body(json.dumps({"Records": [record("k.zip", eTag='"quoted"')]}))

    assert isinstance(parsed, Jobs)
    assert parsed.jobs[0].etag == "quoted"


def test_parse_body_recognises_the_s3_test_event() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "bucket"})

    assert parse_body(body) == TestEvent()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        ("[1, 2]", "JSON list"),
        ('"text"', "JSON str"),
        ("{}", "no 'Records'"),
        ('{"Records": []}', "no 'Records'"),
        ('{"Records": [42]}', "record 0"),
        ('{"Records": [{"s3": {}}]}', "missing field 'bucket'"),
        ('{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {}}}]}', "missing field 'key'"),
        ('{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": ""}}}]}', "key"),
        ('{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": "big"}}}]}', "size"),
        ('{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k", "eTag": 5}}}]}', "eTag"),
    ],
)
def test_parse_body_calls_unparseable_bodies_poison(body: str, reason: str) -> None:
    parsed = parse_body(body)

    assert isinstance(parsed, Poison)
    assert reason in parsed.reason


# --- Envelopes: SNS notifications and EventBridge events on the work queue ----------------------------------------

LoadEvent = Callable[[str], dict[str, Any]]
TOPIC = "arn:aws:sns:us-east-1:123456789012:lew-uploads"


def sns_body(message: object, **fields: Any) -> str:
    """An SNS notification as SNS delivers it to an SQS queue without raw message delivery."""
    notification = {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": TOPIC,
        "Subject": "Amazon S3 Notification",
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-11-21T19:30:00.512Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
    }
    return json.dumps(notification | fields)


PUT_JOB = Job(
    "lew-uploads-example",
    "incoming/my scène.zip",
    size=48213,
    etag="9b2cf535f27731c974343645a3985328",
    version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    sequencer="0065A1B2C3D4E5F601",
)
BRIDGE_JOB = Job(
    "lew-uploads-example",
    "incoming/eventbridge/my scène 2.tar.gz",
    size=73412,
    etag="b1946ac92492d2347c6235b4d2611184",
    version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
    event_name="ObjectCreated:PutObject",
    sequencer="617f08299329d189",
)


def test_parse_body_plain_notification_exposes_the_sequencer(load_event: LoadEvent) -> None:
    # GIVEN S3's notification as S3 sends it to SQS (or SNS with raw message delivery)
    # WHEN parsed, THEN the job has the decoded key and the record's sequencer
    assert parse_body(json.dumps(load_event("s3-put"))) == Jobs((PUT_JOB,))


def test_parse_body_without_sequencer_has_none() -> None:
    (job,) = parse_body(json.dumps({"Records": [record("k.zip")]})).jobs

    assert job.sequencer is None


def test_parse_body_sns_notification_is_processed_as_the_s3_event_it_carries(load_event: LoadEvent) -> None:
    # GIVEN the committed body of S3 -> SNS -> SQS without raw message delivery
    body = json.dumps(load_event("sqs-body-sns-notification"))
    # WHEN parsed
    # THEN it is the same job as the plain notification (key decoded, sequencer kept)
    assert parse_body(body) == Jobs((PUT_JOB,))


def test_parse_body_eventbridge_event_is_a_job_with_its_key_as_it_is(load_event: LoadEvent) -> None:
    # GIVEN the EventBridge event S3 -> EventBridge -> SQS delivers (its key is not URL-encoded)
    # WHEN parsed, THEN it is one job: key unchanged, sequencer from detail.object.sequencer
    assert parse_body(json.dumps(load_event("eventbridge-object-created"))) == Jobs((BRIDGE_JOB,))


@pytest.mark.parametrize("key", ["incoming/a+b.zip", "incoming/100%25.zip", "incoming/x y.zip"])
def test_parse_body_eventbridge_keys_are_not_decoded(load_event: LoadEvent, key: str) -> None:
    event = load_event("eventbridge-object-created")
    event["detail"]["object"]["key"] = key

    (job,) = parse_body(json.dumps(event)).jobs

    assert job.key == key


def test_parse_body_eventbridge_event_through_sns(load_event: LoadEvent) -> None:
    # GIVEN S3 -> EventBridge -> SNS -> SQS: the SNS Message is the EventBridge event
    body = sns_body(load_event("eventbridge-object-created"))
    # WHEN parsed, THEN it is the same job as the EventBridge event on its own
    assert parse_body(body) == Jobs((BRIDGE_JOB,))


@pytest.mark.parametrize("detail_type", ["Object Deleted", "Object Restore Completed", "Object Tags Added"])
def test_parse_body_eventbridge_other_detail_types_are_ignored(load_event: LoadEvent, detail_type: str) -> None:
    event = load_event("eventbridge-object-created") | {"detail-type": detail_type}

    parsed = parse_body(json.dumps(event))

    assert parsed == Jobs((), (f"{detail_type} s3://lew-uploads-example/incoming/eventbridge/my scène 2.tar.gz",))


def test_parse_body_eventbridge_reason_names_the_creation(load_event: LoadEvent) -> None:
    event = load_event("eventbridge-object-created")
    event["detail"]["reason"] = "CompleteMultipartUpload"

    (job,) = parse_body(json.dumps(event)).jobs

    assert job.event_name == "ObjectCreated:CompleteMultipartUpload"


def test_parse_body_s3_test_event_through_sns_is_a_test_event(load_event: LoadEvent) -> None:
    assert parse_body(sns_body(load_event("s3-test-event"))) == TestEvent()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            sns_body("example message"),
            f"an SNS notification from topic {TOPIC!r} whose Message is not an S3 event: not JSON ('example message')",
        ),
        (
            sns_body({"hello": "world"}),
            f"an SNS notification from topic {TOPIC!r} whose Message is not an S3 event: is a JSON object with no "
            "'Records' (keys: hello)",
        ),
        (sns_body([1]), "whose Message is not an S3 event: is JSON list, not an object"),
        (sns_body({"Records": [{"s3": {}}]}), "whose Message is not an S3 event: record 0 is not an S3 event record"),
        (sns_body(sns_body({"Records": []})), "whose Message is not an S3 event: is a JSON object with no 'Records'"),
        (
            sns_body("{}", Type="SubscriptionConfirmation", SubscribeURL="https://sns.example/confirm"),
            f"an SNS 'SubscriptionConfirmation' message from topic {TOPIC!r}, not an S3 event: confirm the queue's "
            "subscription by visiting its SubscribeURL",
        ),
        (sns_body("{}", Type="UnsubscribeConfirmation"), "an SNS 'UnsubscribeConfirmation' message from topic"),
        (sns_body("x", Message=7), "whose Message is not a string: 7"),
        (
            json.dumps({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}),
            "an EventBridge event from 'aws.ec2' ('EC2 Instance State-change Notification'), not an S3 event",
        ),
        (
            json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
            "an EventBridge event from aws.s3 ('Object Created') without detail.bucket or .object",
        ),
        (
            json.dumps(
                {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {}}}
            ),
            "an EventBridge event from aws.s3 that is not an S3 event: detail.object.key is not a non-empty string",
        ),
        (
            sns_body({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}, "object": {}}}),
            "whose Message is not an S3 event: an EventBridge event from aws.s3",
        ),
    ],
)
def test_parse_body_envelope_that_holds_no_s3_event_is_poison_naming_the_shape(body: str, reason: str) -> None:
    parsed = parse_body(body)

    assert isinstance(parsed, Poison)
    assert reason in parsed.reason


def test_without_results_ignores_the_workers_own_keys() -> None:
    # GIVEN jobs for an upload and for keys under RESULT_PREFIX (announced by an unfiltered EventBridge rule)
    parsed = Jobs(
        (Job("b", "incoming/a.zip"), Job("b", "results/a/manifest.json"), Job("b", "results/.lew-claims/a.claim.json"))
    )
    # WHEN the worker's own keys are taken out
    kept = without_results(parsed, "results/")
    # THEN only the upload is a job; the others are ignored records saying why
    assert kept.jobs == (Job("b", "incoming/a.zip"),)
    assert kept.ignored == (
        "ObjectCreated:Put s3://b/results/a/manifest.json (under RESULT_PREFIX: the worker's own)",
        "ObjectCreated:Put s3://b/results/.lew-claims/a.claim.json (under RESULT_PREFIX: the worker's own)",
    )
    assert without_results(kept, "results/") == kept
