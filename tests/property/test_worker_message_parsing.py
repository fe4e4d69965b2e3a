"""Property tests of the worker's message parsing: any body gives jobs, a test event, or a worded Poison."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.property.strategies import (
    eventbridge_events,
    json_values,
    s3_like_records,
    sns_notification,
    valid_records,
)
from worker.messages import Job, Jobs, Poison, TestEvent, parse_body

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_outcome(body: str) -> Jobs | TestEvent | Poison:
    """parse_body never raises, and what it returns is well formed."""
    parsed = parse_body(body)
    assert isinstance(parsed, Jobs | TestEvent | Poison)
    if isinstance(parsed, Poison):
        assert parsed.reason and "Traceback" not in parsed.reason
        assert any(word in parsed.reason for word in ("JSON", "Records", "record", "S3")), parsed.reason
    if isinstance(parsed, Jobs):
        for job in parsed.jobs:
            assert isinstance(job, Job)
            assert isinstance(job.bucket, str) and job.bucket
            assert isinstance(job.key, str) and job.key
            assert job.size is None or (type(job.size) is int and job.size >= 0)
            assert job.etag is None or isinstance(job.etag, str)
            assert job.version_id is None or isinstance(job.version_id, str)
            assert job.event_name.startswith("ObjectCreated")
            assert job.sequencer is None or isinstance(job.sequencer, str)
    return parsed


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_parse_body_of_any_text_never_raises(body: str) -> None:
    check_outcome(body)


@PROPERTY_SETTINGS
@given(json_values)
def test_parse_body_of_any_json_never_raises(document: Any) -> None:
    check_outcome(json.dumps(document))


@PROPERTY_SETTINGS
@given(st.lists(s3_like_records(), min_size=0, max_size=3))
def test_parse_body_of_s3_like_records_never_raises(records: list[dict[str, Any]]) -> None:
    outcome = check_outcome(json.dumps({"Records": records}))
    if not records:
        assert isinstance(outcome, Poison)


@PROPERTY_SETTINGS
@given(st.lists(valid_records(), min_size=1, max_size=4))
def test_parse_body_decodes_every_key_as_s3_encoded_it(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    # GIVEN a body as S3 itself sends it to a queue (keys quote_plus-encoded), WHEN parsed
    outcome = check_outcome(json.dumps({"Records": [record for record, _ in pairs]}))
    # THEN each record is a job with its decoded key, in order
    assert isinstance(outcome, Jobs)
    assert [(j.bucket, j.key, j.etag, j.size, j.version_id) for j in outcome.jobs] == [
        (f["bucket"], f["key"], f["etag"], f["size"], f["version_id"]) for _, f in pairs
    ]


def test_parse_body_recognises_the_s3_test_event() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert isinstance(parse_body(body), TestEvent)


@PROPERTY_SETTINGS
@given(json_values)
def test_parse_body_of_an_sns_notification_of_any_json_never_raises(message: Any) -> None:
    # GIVEN an SNS notification whose Message is any JSON (or any text)
    for text in (json.dumps(message), str(message)):
        parsed = check_outcome(json.dumps(sns_notification(text)))
        # THEN what is not an S3 event is poison that says it came in an SNS notification
        if isinstance(parsed, Poison):
            assert "SNS notification" in parsed.reason, parsed.reason


@PROPERTY_SETTINGS
@given(st.lists(s3_like_records(), min_size=1, max_size=3))
def test_parse_body_of_sns_wrapped_records_is_what_the_plain_notification_gives(records: list[dict[str, Any]]) -> None:
    # GIVEN any S3-like notification, plain and wrapped in an SNS notification
    plain = parse_body(json.dumps({"Records": records}))
    wrapped = check_outcome(json.dumps(sns_notification(json.dumps({"Records": records}))))
    # THEN both give the same jobs, or both are poison (the wrapped reason naming the envelope)
    if isinstance(plain, Poison):
        assert isinstance(wrapped, Poison)
        assert wrapped.reason.endswith(plain.reason)
    else:
        assert wrapped == plain


@PROPERTY_SETTINGS
@given(eventbridge_events())
def test_parse_body_of_eventbridge_events_keeps_every_fact(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    event, facts = pair
    for body in (json.dumps(event), json.dumps(sns_notification(json.dumps(event)))):
        parsed = check_outcome(body)
        assert isinstance(parsed, Jobs)
        (job,) = parsed.jobs
        # The key is the object's own (EventBridge does not encode it), and so is every other fact.
        assert (job.bucket, job.key, job.size, job.etag, job.version_id, job.sequencer) == (
            facts["bucket"],
            facts["key"],
            facts["size"],
            facts["etag"],
            facts["version_id"],
            facts["sequencer"],
        )
