"""Property tests of the launcher's event parsing: any event gives a result or a clear UnsupportedEvent."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lew_launcher.events import EventKind, ObjectNotice, ParsedEvent, UnsupportedEvent, parse_event
from lew_launcher.messages import message_body
from tests.property.strategies import eventbridge_events, json_values, s3_like_records, sns_lambda_event, valid_records
from worker.messages import Jobs, parse_body

# A record that is right but for the type of one optional field: S3 never sends it, a hand-made event might.
WRONG_TYPED_ETAG = {
    "eventSource": "aws:s3",
    "eventName": "ObjectCreated:Put",
    "s3": {"bucket": {"name": "bkt"}, "object": {"key": "incoming/a.zip", "size": 3, "eTag": 5, "sequencer": 1}},
}

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_well_typed(notice: ObjectNotice) -> None:
    """A parsed object has the types its dataclass declares: nothing half-parsed leaks through."""
    assert isinstance(notice.bucket, str) and notice.bucket
    assert isinstance(notice.key, str) and notice.key
    assert isinstance(notice.event_name, str) and notice.event_name
    assert notice.size is None or (isinstance(notice.size, int) and not isinstance(notice.size, bool))
    for optional in (notice.etag, notice.version_id, notice.sequencer, notice.bucket_arn):
        assert optional is None or isinstance(optional, str), optional


def parse_or_refuse(event: object, *, check_types: bool = True) -> ParsedEvent | UnsupportedEvent:
    """parse_event's outcome; anything but a ParsedEvent or an UnsupportedEvent fails the test."""
    try:
        parsed = parse_event(event)
    except UnsupportedEvent as refused:
        message = str(refused)
        assert message and "Traceback" not in message
        assert message.startswith(("unsupported", "S3 notification record", "EventBridge", "SNS record")), message
        return refused
    assert isinstance(parsed, ParsedEvent)
    for notice in parsed.objects if check_types else ():
        assert_well_typed(notice)
    return parsed


@PROPERTY_SETTINGS
@given(json_values)
def test_parse_event_of_any_json_is_a_result_or_a_clear_refusal(event: Any) -> None:
    parse_or_refuse(event)


@PROPERTY_SETTINGS
@given(st.dictionaries(st.sampled_from(["Records", "source", "detail-type", "detail", "Event"]), json_values))
def test_parse_event_of_any_event_like_object_is_a_result_or_a_clear_refusal(event: dict[str, Any]) -> None:
    parse_or_refuse(event)


@PROPERTY_SETTINGS
@given(st.lists(s3_like_records(), min_size=1, max_size=3))
@example([WRONG_TYPED_ETAG])
def test_parse_event_of_s3_like_records_is_a_result_or_a_clear_refusal(records: list[dict[str, Any]]) -> None:
    parse_or_refuse({"Records": records})


@PROPERTY_SETTINGS
@given(st.lists(valid_records(), min_size=1, max_size=5))
def test_parse_event_decodes_every_record_key(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    # GIVEN an S3 notification whose keys S3 URL-encoded
    event = {"Records": [record for record, _ in pairs]}
    # WHEN parsed
    parsed = parse_event(event)
    # THEN every record is there, with its key decoded and its facts kept
    assert parsed.kind is EventKind.S3_NOTIFICATION
    assert [(n.bucket, n.key, n.size, n.etag, n.version_id) for n in parsed.objects] == [
        (f["bucket"], f["key"], f["size"], f["etag"], f["version_id"]) for _, f in pairs
    ]


@PROPERTY_SETTINGS
@given(st.lists(s3_like_records(), min_size=1, max_size=2))
@example([WRONG_TYPED_ETAG])
def test_every_message_the_launcher_builds_is_a_job_for_the_worker(records: list[dict[str, Any]]) -> None:
    # GIVEN any event the launcher accepts
    outcome = parse_or_refuse({"Records": records}, check_types=False)
    if isinstance(outcome, UnsupportedEvent):
        return
    for notice in outcome.objects:
        # WHEN the launcher turns an object into a work message, and the worker parses it
        parsed = parse_body(message_body(notice))
        # THEN the worker sees exactly that object (never poison: the launcher checked it)
        assert isinstance(parsed, Jobs), parsed
        if notice.created:
            (job,) = parsed.jobs
            assert (job.bucket, job.key, job.size, job.version_id) == (
                notice.bucket,
                notice.key,
                notice.size,
                notice.version_id,
            )


@PROPERTY_SETTINGS
@given(valid_records())
def test_launcher_message_round_trips_the_key_through_the_worker(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    record, facts = pair
    (notice,) = parse_event({"Records": [record]}).objects
    body = message_body(notice)
    # The body is the S3 shape, with the key encoded as S3 encodes it.
    assert json.loads(body)["Records"][0]["s3"]["object"]["key"] == record["s3"]["object"]["key"]
    parsed = parse_body(body)
    assert isinstance(parsed, Jobs)
    (job,) = parsed.jobs
    assert (job.bucket, job.key, job.etag, job.size) == (facts["bucket"], facts["key"], facts["etag"], facts["size"])


@PROPERTY_SETTINGS
@given(json_values)
def test_parse_event_of_an_sns_event_of_any_json_is_a_result_or_a_clear_refusal(message: Any) -> None:
    for text in (json.dumps(message), str(message)):
        outcome = parse_or_refuse(sns_lambda_event(text))
        if isinstance(outcome, UnsupportedEvent):
            assert str(outcome).startswith("SNS record 0 (topic "), outcome


@PROPERTY_SETTINGS
@given(st.lists(valid_records(), min_size=1, max_size=3), st.integers(min_value=1, max_value=3))
def test_parse_event_through_sns_gives_the_objects_of_the_plain_event(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]], copies: int
) -> None:
    # GIVEN an S3 notification, and an SNS event of several records carrying it
    plain = parse_event({"Records": [record for record, _ in pairs]})
    message = json.dumps({"Records": [record for record, _ in pairs]})
    # WHEN parsed
    wrapped = parse_event(sns_lambda_event(*[message] * copies))
    # THEN the SNS event gives the plain event's objects, once per SNS record
    assert wrapped.kind is EventKind.SNS
    assert wrapped.objects == plain.objects * copies


@PROPERTY_SETTINGS
@given(eventbridge_events())
def test_eventbridge_key_reaches_the_worker_unchanged(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    # GIVEN an EventBridge event from S3, directly or through SNS
    event, facts = pair
    for delivered in (event, sns_lambda_event(json.dumps(event))):
        (notice,) = parse_event(delivered).objects
        # WHEN the launcher makes its work message and the worker parses it
        parsed = parse_body(message_body(notice))
        # THEN the worker's job is the object EventBridge named, key unchanged
        assert isinstance(parsed, Jobs)
        (job,) = parsed.jobs
        assert (job.bucket, job.key, job.version_id, job.sequencer) == (
            facts["bucket"],
            facts["key"],
            facts["version_id"],
            facts["sequencer"],
        )
