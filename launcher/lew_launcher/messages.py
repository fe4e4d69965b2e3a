"""The work message: an S3 event notification holding exactly one object, as S3 itself sends it to SQS."""

from __future__ import annotations

import json
from typing import Any, Final

from lew_launcher.events import ObjectNotice
from lew_launcher.keys import encode_key

CONFIGURATION_ID: Final = "lew-launcher"


def message_body(notice: ObjectNotice) -> str:
    """The work message: an S3 event notification holding exactly this object, in the shape S3 sends to SQS."""
    s3_object: dict[str, Any] = {"key": encode_key(notice.key)}
    if notice.size is not None:
        s3_object["size"] = notice.size
    optional = {"eTag": notice.etag, "versionId": notice.version_id, "sequencer": notice.sequencer}
    s3_object.update({name: value for name, value in optional.items() if value is not None})
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": notice.region,
        "eventTime": notice.event_time,
        "eventName": notice.event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": CONFIGURATION_ID,
            "bucket": {"name": notice.bucket, "arn": notice.bucket_arn or f"arn:aws:s3:::{notice.bucket}"},
            "object": s3_object,
        },
    }
    return json.dumps({"Records": [record]}, ensure_ascii=False, separators=(",", ":"))
