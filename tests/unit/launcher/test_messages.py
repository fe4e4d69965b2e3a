"""The work message body: one record in the shape S3 sends to SQS, with the key encoded as S3 encodes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from hypothesis import given
from hypothesis import strategies as st

from lew_launcher.events import ObjectNotice, parse_event
from lew_launcher.keys import decode_key, encode_key
from lew_launcher.messages import message_body

LoadEvent = Callable[[str], dict[str, Any]]


def test_message_body_has_exactly_one_record_in_s3_shape(load_event: LoadEvent) -> None:
    # GIVEN the object of the sample S3 event
    (notice,) = parse_event(load_event("s3-put")).objects

    # WHEN its work message is built
    body = json.loads(message_body(notice))

    # THEN it is an S3 notification with one record, key encoded the way S3 encodes it
    (record,) = body["Records"]
    assert record == {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T19:30:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "lew-launcher",
            "bucket": {"name": "lew-uploads-example", "arn": "arn:aws:s3:::lew-uploads-example"},
            "object": {
                "key": "incoming/my+sc%C3%A8ne.zip",
                "size": 48213,
                "eTag": "9b2cf535f27731c974343645a3985328",
                "versionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
                "sequencer": "0065A1B2C3D4E5F601",
            },
        },
    }


def test_message_body_reencodes_keys_that_moto_encoded_differently(load_event: LoadEvent) -> None:
    notices = parse_event(load_event("s3-put-many")).objects
    moto_style = next(notice for notice in notices if notice.key == "incoming/batch/b c.tar.gz")

    record = json.loads(message_body(moto_style))["Records"][0]

    assert record["s3"]["object"]["key"] == "incoming/batch/b+c.tar.gz"


def test_message_body_leaves_out_what_is_not_known() -> None:
    notice = ObjectNotice(bucket="b", key="incoming/a.zip", event_name="ObjectCreated:Put", event_time="t", region="r")

    s3 = json.loads(message_body(notice))["Records"][0]["s3"]

    assert s3["object"] == {"key": "incoming/a.zip"}
    assert s3["bucket"] == {"name": "b", "arn": "arn:aws:s3:::b"}


def test_message_body_from_eventbridge_matches_s3_shape(load_event: LoadEvent) -> None:
    (notice,) = parse_event(load_event("eventbridge-object-created")).objects

    record = json.loads(message_body(notice))["Records"][0]

    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"] == {
        "key": "incoming/eventbridge/my+sc%C3%A8ne+2.tar.gz",
        "size": 73412,
        "eTag": "b1946ac92492d2347c6235b4d2611184",
        "versionId": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "sequencer": "617f08299329d189",
    }


@given(st.text(min_size=1, max_size=200))
def test_message_body_key_round_trips_through_unquote_plus(key: str) -> None:
    notice = ObjectNotice(bucket="b", key=key, event_name="ObjectCreated:Put", event_time="t", region="r", size=1)

    encoded = json.loads(message_body(notice))["Records"][0]["s3"]["object"]["key"]

    # The worker decodes every body with unquote_plus, whoever sent it.
    assert unquote_plus(encoded) == key
    assert decode_key(encode_key(key)) == key
    assert " " not in encoded
