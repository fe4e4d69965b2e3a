"""parse_body: S3 notification documents into jobs; test events; poison with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.messages import Job, Jobs, Poison, TestEvent, parse_body


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
