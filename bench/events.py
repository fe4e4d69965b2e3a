"""The S3 event record that the benchmarks feed the launcher and the worker. Standard library only, so that the
launcher probe can import it without loading anything before the import it times."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

REGION = "us-east-1"


def s3_record(bucket: str, key: str, *, size: int, etag: str, configuration_id: str) -> dict[str, Any]:
    """One ObjectCreated:Put record, its key URL-encoded as S3 sends it."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag.strip('"')},
        },
    }
