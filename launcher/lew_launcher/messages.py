"""The work message: an S3 event notification holding exactly one object, as S3 itself sends it to SQS.

A scheduled job's record also carries a `lew` block naming its run (lew_launcher.schedule).
"""

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
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        # A scheduled run is not an S3 event: say who made the record (worker/runs.py reads its `lew` block).
        "eventSource": "aws:s3" if notice.run is None else "lew:schedule",
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
    if notice.run is not None:
        record["lew"] = notice.run.message_block()
    return json.dumps({"Records": [record]}, ensure_ascii=False, separators=(",", ":"))
