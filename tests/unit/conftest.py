"""Fixtures of the unit tests: an S3 client whose answers are scripted (botocore's Stubber; no network, no moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber


@pytest.fixture
def stubbed_s3() -> Iterator[tuple[Any, Stubber]]:
    """An S3 client and its Stubber: queue answers with `add_response` / `add_client_error`; all must be used."""
    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()
