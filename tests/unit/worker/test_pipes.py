"""Dagster Pipes metadata on an upload: what the worker accepts, and the one line naming what it refuses."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from dagster_pipes import encode_param

from worker.errors import is_permanent
from worker.pipes import CONTEXT_METADATA, MESSAGES_METADATA, MessageRelay, PipesMetadataInvalid, PipesRequest

BUCKET = "lew-bucket"
FOLDER = "results/.lew-pipes/"


def metadata(context: object, messages: object) -> dict[str, str]:
    return {CONTEXT_METADATA: encode_param(context), MESSAGES_METADATA: encode_param(messages)}


def test_pipes_request_is_none_without_pipes_metadata() -> None:
    # GIVEN an upload whose metadata has nothing about Pipes
    # WHEN / THEN there is no session
    assert PipesRequest.from_metadata({"other": "x"}, BUCKET, "results/") is None


def test_pipes_request_reads_what_dagster_aws_writes() -> None:
    # GIVEN the params of PipesS3ContextInjector and PipesS3MessageReader under the Pipes folder
    given = metadata(
        {"bucket": BUCKET, "key": f"{FOLDER}abc/context.json"},
        {"bucket": BUCKET, "key_prefix": f"{FOLDER}def", "include_stdio_in_messages": True},
    )
    # WHEN they are read
    request = PipesRequest.from_metadata(given, BUCKET, "results/")
    # THEN the session knows both places
    assert request == PipesRequest(
        BUCKET, {"bucket": BUCKET, "key": f"{FOLDER}abc/context.json"}, f"{FOLDER}def", include_stdio=True
    )


def test_pipes_request_accepts_the_context_itself() -> None:
    # GIVEN a context passed by value (PipesEnvContextInjector's form)
    given = metadata({"data": {"run_id": "r"}}, {"bucket": BUCKET, "key_prefix": f"{FOLDER}m"})
    # WHEN / THEN it is kept as it is
    request = PipesRequest.from_metadata(given, BUCKET, "results/")
    assert request is not None and request.context == {"data": {"run_id": "r"}}


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({CONTEXT_METADATA: encode_param({"data": {}})}, "but no dagster-pipes-messages"),
        ({MESSAGES_METADATA: encode_param({})}, "but no dagster-pipes-context"),
        ({CONTEXT_METADATA: "not base64!", MESSAGES_METADATA: "x"}, "dagster-pipes-context: not a dagster-pipes"),
        (metadata(["a list"], {}), "dagster-pipes-context: not a JSON object"),
        (metadata({"data": "text"}, {}), "'data' is not a JSON object"),
        (metadata({"bucket": "other", "key": f"{FOLDER}c.json"}, {}), "bucket 'other' is not the upload's"),
        (metadata({"bucket": BUCKET, "key": "incoming/x.json"}, {}), "key 'incoming/x.json' is not under"),
        (metadata({"bucket": BUCKET, "key": FOLDER}, {}), "is not under"),
        (metadata({"bucket": BUCKET, "key": f"{FOLDER}../x.json"}, {}), "'..' segment"),
        (metadata({"data": {}}, {"stdio": "stdout"}), "dagster-pipes-messages: bucket None"),
        (metadata({"data": {}}, {"bucket": BUCKET, "key_prefix": "results/x"}), "key_prefix 'results/x' is not"),
        (metadata({"data": {}}, {"bucket": BUCKET, "key_prefix": f"{FOLDER}a//b"}), "empty"),
    ],
)
def test_pipes_request_refuses_bad_metadata_naming_it(given: dict[str, str], named: str) -> None:
    # GIVEN Pipes metadata that cannot be used
    # WHEN it is read
    with pytest.raises(PipesMetadataInvalid) as raised:
        PipesRequest.from_metadata(given, BUCKET, "results/")
    # THEN the job fails for good with one line that says what is wrong
    assert named in str(raised.value)
    assert "\n" not in str(raised.value)
    assert is_permanent(raised.value)


class FlakyS3:
    """Just what MessageRelay calls: put_object fails `failures` times, then stores; no chunks listed at first."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:  # noqa: N803 - boto3's names
        if self.failures:
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url="http://s3")
        self.objects[Key] = Body

    def get_paginator(self, name: str) -> Any:
        return SimpleNamespace(paginate=lambda **_: [{"Contents": []}])


def test_message_relay_keeps_what_it_could_not_send_for_the_next_chunk(tmp_path: Path) -> None:
    # GIVEN a relay whose first upload fails, and two messages, the second one torn (no newline yet)
    s3 = FlakyS3(failures=1)
    messages = tmp_path / "messages.jsonl"
    messages.write_text('{"method": "opened"}\n{"method": "lo', encoding="utf-8")
    relay = MessageRelay(s3, BUCKET, f"{FOLDER}m", messages)  # type: ignore[arg-type]

    # WHEN it relays while the processor runs, then at the end, after the rest was written
    with relay.running(interval=3600):
        assert relay.relay() == 0  # the upload failed: nothing is lost
        assert relay.relay() == 1  # the complete line, as chunk 1
        with messages.open("a", encoding="utf-8") as file:
            file.write('g"}\n{"method": "closed"}')

    # THEN every message arrived once, in order, numbered from 1, the last one sent although it had no newline
    assert s3.objects == {
        f"{FOLDER}m/1.json": b'{"method": "opened"}',
        f"{FOLDER}m/2.json": b'{"method": "log"}\n{"method": "closed"}',
    }
