"""Event parsing, key decoding, suffix matching and skip rules: pure functions, no AWS."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from lew_launcher.events import EventKind, ObjectNotice, UnsupportedEvent, parse_event
from lew_launcher.keys import decode_key
from lew_launcher.settings import Settings
from lew_launcher.skips import matches_suffix, skip_reason

LoadEvent = Callable[[str], dict[str, Any]]

SETTINGS = Settings.from_env(
    {"QUEUE_URL": "https://queue", "CLUSTER": "lew", "TASK_DEFINITION": "lew-worker", "SUBNETS": "subnet-1"}
)


@pytest.mark.parametrize(
    ("key", "suffixes", "expected"),
    [
        ("incoming/a.zip", (".zip",), True),
        ("incoming/A.ZIP", (".zip",), True),
        ("incoming/a.tar.gz", (".zip", ".tar.gz"), True),
        ("incoming/a.TGZ", (".tgz",), True),
        ("incoming/a.gz", (".tar.gz",), False),
        ("incoming/a.zip.txt", (".zip",), False),
        ("incoming/zip", (".zip",), False),
        ("incoming/notes.txt", (), True),
        ("incoming/anything", (), True),
    ],
)
def test_matches_suffix_is_case_insensitive_and_empty_accepts_all(
    key: str, suffixes: tuple[str, ...], expected: bool
) -> None:
    assert matches_suffix(key, suffixes) is expected


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("incoming/my+sc%C3%A8ne.zip", "incoming/my scène.zip"),
        ("incoming%2Fbatch%2Fb+c.tar.gz", "incoming/batch/b c.tar.gz"),  # moto encodes '/' too
        ("incoming/d%2Be.tgz", "incoming/d+e.tgz"),  # a literal plus
        ("incoming/100%25.zip", "incoming/100%.zip"),
        ("incoming/plain.zip", "incoming/plain.zip"),
    ],
)
def test_decode_key_undoes_s3_notification_encoding(raw: str, decoded: str) -> None:
    assert decode_key(raw) == decoded


def test_parse_event_s3_put_decodes_the_key(load_event: LoadEvent) -> None:
    parsed = parse_event(load_event("s3-put"))

    assert parsed.kind is EventKind.S3_NOTIFICATION
    (notice,) = parsed.objects
    assert notice.bucket == "lew-uploads-example"
    assert notice.key == "incoming/my scène.zip"
    assert notice.size == 48213
    assert notice.etag == "9b2cf535f27731c974343645a3985328"
    assert notice.version_id == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    assert notice.event_name == "ObjectCreated:Put"
    assert notice.bucket_arn == "arn:aws:s3:::lew-uploads-example"


def test_parse_event_reads_every_record_not_only_the_first(load_event: LoadEvent) -> None:
    event = load_event("s3-put-many")

    parsed = parse_event(event)

    assert len(parsed.objects) == len(event["Records"])
    assert [notice.key for notice in parsed.objects][:4] == [
        "incoming/batch/a.zip",
        "incoming/batch/b c.tar.gz",
        "incoming/batch/d+e.tgz",
        "incoming/batch/SCENE.TAR",
    ]


def test_parse_event_s3_test_event(load_event: LoadEvent) -> None:
    parsed = parse_event(load_event("s3-test-event"))

    assert parsed.kind is EventKind.S3_TEST
    assert parsed.objects == ()


def test_parse_event_scheduled_reconcile(load_event: LoadEvent) -> None:
    parsed = parse_event(load_event("scheduled-reconcile"))

    assert parsed.kind is EventKind.RECONCILE
    assert parsed.objects == ()


def test_parse_event_eventbridge_object_created(load_event: LoadEvent) -> None:
    parsed = parse_event(load_event("eventbridge-object-created"))

    assert parsed.kind is EventKind.EVENTBRIDGE
    (notice,) = parsed.objects
    assert notice.bucket == "lew-uploads-example"
    assert notice.key == "incoming/eventbridge/my scène 2.tar.gz"
    assert notice.size == 73412
    assert notice.etag == "b1946ac92492d2347c6235b4d2611184"
    assert notice.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert notice.sequencer == "617f08299329d189"
    assert notice.event_name == "ObjectCreated:Put"
    assert notice.region == "us-east-1"
    assert notice.bucket_arn == "arn:aws:s3:::lew-uploads-example"


@pytest.mark.parametrize(
    ("reason", "event_name"),
    [
        ("PutObject", "ObjectCreated:Put"),
        ("POST Object", "ObjectCreated:Post"),
        ("CopyObject", "ObjectCreated:Copy"),
        ("CompleteMultipartUpload", "ObjectCreated:CompleteMultipartUpload"),
    ],
)
def test_parse_event_eventbridge_reason_becomes_s3_event_name(
    load_event: LoadEvent, reason: str, event_name: str
) -> None:
    event = load_event("eventbridge-object-created")
    event["detail"]["reason"] = reason

    assert parse_event(event).objects[0].event_name == event_name


def test_parse_event_eventbridge_object_deleted_is_parsed_then_skipped(load_event: LoadEvent) -> None:
    event = load_event("eventbridge-object-created")
    event["detail-type"] = "Object Deleted"

    (notice,) = parse_event(event).objects

    assert skip_reason(notice, SETTINGS) == "event 'Object Deleted' is not an object creation"


@pytest.mark.parametrize("key", ["incoming/a+b.zip", "incoming/100%.zip", "incoming/my scène.zip", "incoming/x%2F.zip"])
def test_parse_event_eventbridge_key_is_taken_as_it_is(load_event: LoadEvent, key: str) -> None:
    # GIVEN an EventBridge event, whose keys S3 does not URL-encode, for a key with '+', '%' or a space
    event = load_event("eventbridge-object-created")
    event["detail"]["object"]["key"] = key
    # WHEN parsed
    (notice,) = parse_event(event).objects
    # THEN the key is the object's key, not decoded ('+' stays a plus)
    assert notice.key == key


def _sns_event(load_event: LoadEvent, *messages: object) -> dict[str, Any]:
    """The committed S3 -> SNS -> Lambda sample, with one SNS record per message (JSON-encoded unless a str)."""
    event = load_event("sns-s3-put")
    template = event["Records"][0]
    event["Records"] = []
    for message in messages:
        record = copy.deepcopy(template)
        record["Sns"]["Message"] = message if isinstance(message, str) else json.dumps(message)
        event["Records"].append(record)
    return event


def test_parse_event_s3_notification_through_sns(load_event: LoadEvent) -> None:
    # GIVEN the S3 event S3 published to an SNS topic, delivered to the launcher by its subscription
    # WHEN parsed
    parsed = parse_event(load_event("sns-s3-put"))
    # THEN it gives the same object as the S3 event delivered directly
    assert parsed.kind is EventKind.SNS
    assert parsed.objects == parse_event(load_event("s3-put")).objects
    assert parsed.objects[0].key == "incoming/my scène.zip"
    assert parsed.test_events == 0


def test_parse_event_every_sns_record_and_every_s3_record_inside(load_event: LoadEvent) -> None:
    # GIVEN two SNS records: a two-record S3 notification and an EventBridge event (EventBridge -> SNS -> Lambda)
    many = load_event("s3-put-many")
    bridge = load_event("eventbridge-object-created")
    # WHEN parsed
    parsed = parse_event(_sns_event(load_event, many, bridge))
    # THEN every object of both is there, in order
    assert [notice.key for notice in parsed.objects] == [
        *(notice.key for notice in parse_event(many).objects),
        "incoming/eventbridge/my scène 2.tar.gz",
    ]


def test_parse_event_s3_test_event_through_sns_is_a_test_event(load_event: LoadEvent) -> None:
    parsed = parse_event(load_event("sns-s3-test-event"))

    assert (parsed.kind, parsed.objects, parsed.test_events) == (EventKind.SNS, (), 1)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("example message", "an SNS notification whose Message is not an S3 event: not JSON ('example message')"),
        ({"hello": "world"}, "an SNS notification whose Message is not an S3 event (top-level keys: hello;"),
        ([1, 2], "an SNS notification whose Message is not an S3 event (JSON list)"),
        (
            {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
            "whose Message is not an S3 event (top-level keys: detail, detail-type, source; source='aws.events'",
        ),
        ({"Records": [{"eventSource": "aws:s3", "s3": {}}]}, "S3 notification record 0 lacks a field"),
    ],
)
def test_parse_event_sns_message_that_is_not_an_s3_event_is_refused_naming_it(
    load_event: LoadEvent, message: object, reason: str
) -> None:
    # GIVEN an SNS record whose Message is something else than an S3 event
    event = _sns_event(load_event, message)
    # WHEN parsed, THEN it is refused, naming the record, the topic and what the Message was
    with pytest.raises(UnsupportedEvent) as raised:
        parse_event(event)
    assert str(raised.value).startswith("SNS record 0 (topic 'arn:aws:sns:us-east-1:123456789012:lew-uploads'): ")
    assert reason in str(raised.value)


def test_parse_event_sns_record_without_a_message_string_is_refused(load_event: LoadEvent) -> None:
    event = load_event("sns-s3-put")
    event["Records"][0]["Sns"]["Message"] = None

    with pytest.raises(UnsupportedEvent, match="an SNS notification whose Message is not a string: None"):
        parse_event(event)


def test_parse_event_sns_event_mixing_other_records_is_refused(load_event: LoadEvent) -> None:
    event = load_event("sns-s3-put")
    event["Records"].append(load_event("s3-put")["Records"][0])

    with pytest.raises(UnsupportedEvent, match=r"SNS record 1 is not an SNS record"):
        parse_event(event)


def _broken_s3_event(load_event: LoadEvent, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    event = copy.deepcopy(load_event("s3-put"))
    change(event)
    return event


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(Records=[]), "'Records' must be a non-empty list"),
        (lambda e: e.update(Records="nope"), "'Records' must be a non-empty list"),
        (lambda e: e["Records"][0].update(eventSource="aws:sqs"), "eventSource 'aws:sqs', not 'aws:s3'"),
        (lambda e: e["Records"][0]["s3"]["object"].pop("key"), "record 0 lacks a field the launcher needs: 'key'"),
        (lambda e: e["Records"][0]["s3"]["object"].update(key=""), "s3.object.key must be a non-empty string"),
        (lambda e: e["Records"][0]["s3"]["bucket"].update(name=7), "s3.bucket.name must be a non-empty string"),
        (lambda e: e["Records"][0]["s3"]["object"].update(size="big"), "s3.object.size must be a whole number"),
        (lambda e: e["Records"][0]["s3"]["object"].update(size=-1), "s3.object.size must be a byte count"),
        (lambda e: e["Records"][0].pop("s3"), "record 0 lacks a field the launcher needs: 's3'"),
        (lambda e: e["Records"].append("junk"), "record 1 is not a JSON object"),
    ],
)
def test_parse_event_malformed_s3_notification_names_the_problem(
    load_event: LoadEvent, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(UnsupportedEvent, match=re.escape(message)):
        parse_event(_broken_s3_event(load_event, change))


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([1, 2], "expected a JSON object, got list"),
        ("s3-put", "expected a JSON object, got str"),
        ({}, "top-level keys: no keys"),
        ({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}, "aws.ec2"),
        ({"source": "aws.events", "detail-type": "Something Else"}, "detail-type='Something Else'"),
        ({"body": "{}", "messageId": "1"}, "top-level keys: body, messageId"),
        ({"source": "aws.s3", "detail-type": "Object Created"}, "has no 'detail' object"),
        ({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}}, "lacks detail.bucket"),
        (
            {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {}}},
            "detail.object.key must be a non-empty string",
        ),
    ],
)
def test_parse_event_unsupported_shapes_raise_naming_what_was_seen(event: object, message: str) -> None:
    with pytest.raises(UnsupportedEvent) as raised:
        parse_event(event)

    assert message in str(raised.value)


def _notice(key: str, *, size: int | None = 10, event_name: str = "ObjectCreated:Put") -> ObjectNotice:
    return ObjectNotice(bucket="b", key=key, event_name=event_name, event_time="t", region="us-east-1", size=size)


@pytest.mark.parametrize(
    ("notice", "reason"),
    [
        (_notice("incoming/a.zip"), None),
        (_notice("incoming/deep/er/A.TGZ", size=None), None),
        (_notice("incoming/a.zip", event_name="ObjectRemoved:Delete"), "is not an object creation"),
        (_notice("results/a/out.zip"), "under RESULT_PREFIX 'results/'"),
        (_notice("other/a.zip"), "outside INPUT_PREFIX 'incoming/'"),
        (_notice("incoming/folder/", size=0), "folder marker"),
        (_notice("incoming/folder.zip/"), "folder marker"),
        (_notice("incoming/notes.txt"), "suffix is not one of SUFFIXES '.zip,.tar,.tar.gz,.tgz'"),
        (_notice("incoming/empty.zip", size=0), "empty (0 bytes)"),
    ],
)
def test_skip_reason_for_each_rule(notice: ObjectNotice, reason: str | None) -> None:
    got = skip_reason(notice, SETTINGS)

    if reason is None:
        assert got is None
    else:
        assert got is not None
        assert reason in got


def test_skip_reason_empty_input_prefix_accepts_keys_anywhere_but_results() -> None:
    settings = Settings.from_env(
        {"QUEUE_URL": "q", "CLUSTER": "c", "TASK_DEFINITION": "t", "SUBNETS": "s", "INPUT_PREFIX": "", "SUFFIXES": ""}
    )

    assert skip_reason(_notice("anywhere/notes.txt"), settings) is None
    assert skip_reason(_notice("results/x/manifest.json"), settings) is not None


def test_skip_reasons_of_the_many_records_sample(load_event: LoadEvent) -> None:
    # GIVEN the sample that exercises every rule
    notices = parse_event(load_event("s3-put-many")).objects

    # WHEN each record is judged
    reasons = {notice.key: skip_reason(notice, SETTINGS) for notice in notices}

    # THEN four are accepted and each of the others says why not
    assert [key for key, reason in reasons.items() if reason is None] == [
        "incoming/batch/a.zip",
        "incoming/batch/b c.tar.gz",
        "incoming/batch/d+e.tgz",
        "incoming/batch/SCENE.TAR",
    ]
    assert "RESULT_PREFIX" in str(reasons["results/batch/a/render.zip"])
    assert "INPUT_PREFIX" in str(reasons["other/x.zip"])
    assert "folder" in str(reasons["incoming/batch/folder/"])
    assert "0 bytes" in str(reasons["incoming/batch/empty.zip"])
    assert "not an object creation" in str(reasons["incoming/batch/old.zip"])
