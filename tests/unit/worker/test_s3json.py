"""get_json_object / read_json_object: one GET of a small JSON document, read defensively (botocore Stubber)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from worker.s3json import MISSING_KEY_CODES, get_json_object, read_json_object

BUCKET, KEY = "bucket", "results/scene.zip/manifest.json"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def answer(stub: Stubber, body: bytes) -> None:
    response = {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": '"abc"', "LastModified": WHEN}
    stub.add_response("get_object", response, {"Bucket": BUCKET, "Key": KEY})


def test_read_json_object_returns_the_object(stubbed_s3: tuple[Any, Stubber]) -> None:
    # GIVEN an object whose body is a JSON object
    client, stub = stubbed_s3
    answer(stub, b'{"status": "succeeded"}')

    # WHEN it is read THEN the document comes back, from one GET
    assert read_json_object(client, BUCKET, KEY) == {"status": "succeeded"}


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"null", b""])
def test_read_json_object_reads_a_body_that_is_not_a_json_object_as_none(
    stubbed_s3: tuple[Any, Stubber], body: bytes
) -> None:
    # GIVEN an object whose body is not JSON, not UTF-8, or JSON that is not an object
    client, stub = stubbed_s3
    answer(stub, body)

    # WHEN it is read THEN there is no document
    assert read_json_object(client, BUCKET, KEY) is None


def test_get_json_object_tells_a_damaged_document_from_a_missing_one(stubbed_s3: tuple[Any, Stubber]) -> None:
    # GIVEN a damaged object, then none
    client, stub = stubbed_s3
    answer(stub, b"{truncated")
    stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)

    # WHEN each is fetched
    damaged = get_json_object(client, BUCKET, KEY)
    missing = get_json_object(client, BUCKET, KEY)

    # THEN the damaged one is there, without a document but with its GET answer; the missing one is None
    assert damaged is not None and damaged.document is None
    assert (damaged.response["ETag"], damaged.response["LastModified"]) == ('"abc"', WHEN)
    assert missing is None


@pytest.mark.parametrize("code", ["NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"])
def test_read_json_object_reads_every_gone_code_as_none_by_default(stubbed_s3: tuple[Any, Stubber], code: str) -> None:
    client, stub = stubbed_s3
    stub.add_client_error("get_object", service_error_code=code, http_status_code=404)
    assert read_json_object(client, BUCKET, KEY) is None


def test_read_json_object_raises_a_missing_bucket_when_only_missing_keys_are_absent(
    stubbed_s3: tuple[Any, Stubber],
) -> None:
    # GIVEN a bucket that does not exist, and a caller for whom only a missing key means "none"
    client, stub = stubbed_s3
    stub.add_client_error("get_object", service_error_code="NoSuchBucket", http_status_code=404)
    stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)

    # WHEN the bucket is missing THEN that is raised; WHEN only the key is THEN it is None
    with pytest.raises(ClientError, match="NoSuchBucket"):
        read_json_object(client, BUCKET, KEY, absent=MISSING_KEY_CODES)
    assert read_json_object(client, BUCKET, KEY, absent=MISSING_KEY_CODES) is None


@pytest.mark.parametrize("code", ["AccessDenied", "InternalError", "SlowDown"])
def test_read_json_object_raises_other_s3_errors(stubbed_s3: tuple[Any, Stubber], code: str) -> None:
    client, stub = stubbed_s3
    stub.add_client_error("get_object", service_error_code=code, http_status_code=403)
    with pytest.raises(ClientError, match=code):
        read_json_object(client, BUCKET, KEY)
