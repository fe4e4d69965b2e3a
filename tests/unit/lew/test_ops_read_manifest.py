"""lew's ops.read_manifest: a missing manifest is None, a missing bucket an error, a damaged one shown as unreadable."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lew import ops

KEY = "results/scene.zip/manifest.json"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("body", [b"{truncated", b"[1, 2]", b"null"])
def test_read_manifest_shows_a_damaged_manifest_as_unreadable(stubbed_s3: tuple[Any, Stubber], body: bytes) -> None:
    # GIVEN a manifest whose body is not a JSON object (a list used to end `lew status` with a traceback)
    client, stub = stubbed_s3
    stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "LastModified": WHEN})

    # WHEN lew reads it
    summary = ops.read_manifest(client, "bucket", KEY, "results/")

    # THEN it is listed, as unreadable, naming the key
    assert summary is not None
    assert (summary.folder, summary.status, summary.last_modified) == ("scene.zip", "unreadable", WHEN)
    assert summary.error == f"InvalidManifest: {KEY} is not a JSON object"


def test_read_manifest_is_none_for_a_missing_key_and_raises_a_missing_bucket(stubbed_s3: tuple[Any, Stubber]) -> None:
    client, stub = stubbed_s3
    stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
    stub.add_client_error("get_object", service_error_code="NoSuchBucket", http_status_code=404)

    assert ops.read_manifest(client, "bucket", KEY, "results/") is None
    with pytest.raises(ClientError, match="NoSuchBucket"):
        ops.read_manifest(client, "bucket", KEY, "results/")
