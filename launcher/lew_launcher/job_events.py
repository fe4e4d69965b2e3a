"""The launcher's job state-change event, `queued` (docs/ARCHITECTURE.md, "Job state-change events").

Self-contained, because the Lambda package holds no worker code: the event has the shape the worker's events have
(worker/events.py), and the tests check both against docs/job-event.schema.json. Publishing is bounded (short
timeouts, one retry, batches of 10) and never fails the invocation: what EventBridge does not take is logged and
counted in the `EventsNotPublished` metric.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.config import Config

from lew_launcher.events import ObjectNotice
from lew_launcher.observability import logger

SOURCE = "lew"
DETAIL_TYPE = "lew Job State Change"
SCHEMA_VERSION = 1
PUT_EVENTS_BATCH = 10


def queued_detail(notice: ObjectNotice, now: datetime | None = None) -> dict[str, Any]:
    """The `detail` of the `queued` event of one enqueued object."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "queued",
        "job": {
            "bucket": notice.bucket,
            "key": notice.key,
            "version_id": notice.version_id,
            "etag": notice.etag.strip('"') if notice.etag else None,
            "size": notice.size,
            "run": notice.run.to_dict() if notice.run is not None else None,
        },
        "attempt": None,
        "task_arn": None,
        "message_id": None,
        "manifest_key": None,
        "outputs": None,
        "parameters": None,  # in the object's metadata, which the launcher does not read: the worker's GET does
        "error": None,
        "durations": {},
        "progress": None,
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def publish_queued(notices: Sequence[ObjectNotice], *, bus_name: str, client: Any | None = None) -> int:
    """Publish a `queued` event per notice to `bus_name` ("" publishes nothing); return how many were accepted.

    Never raises: a failed call or refused entries are logged and counted (`EventsNotPublished`), and the launch
    goes on. `client` is an EventBridge client (default: one with short timeouts, made on first use).
    """
    if not bus_name or not notices:
        return 0
    sent = 0
    for start in range(0, len(notices), PUT_EVENTS_BATCH):
        batch = notices[start : start + PUT_EVENTS_BATCH]
        entries = [
            {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(queued_detail(notice), ensure_ascii=False),
                "Resources": [f"arn:aws:s3:::{notice.bucket}/{notice.key}"],
                "EventBusName": bus_name,
            }
            for notice in batch
        ]
        try:
            events = client or events_client(os.environ.get("AWS_ENDPOINT_URL"))
            response = events.put_events(Entries=entries)
        except Exception as error:  # noqa: BLE001 - an event must never fail the launch
            _not_published(len(entries), f"{type(error).__name__}: {error}", bus_name)
            continue
        failed = [entry for entry in response.get("Entries", []) if entry.get("ErrorCode")]
        sent += len(entries) - len(failed)
        if failed:
            reasons = sorted({f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage', '')}" for entry in failed})
            _not_published(len(failed), "; ".join(reasons), bus_name)
    return sent


@functools.cache
def events_client(endpoint_url: str | None) -> Any:
    """An EventBridge client with short timeouts (per endpoint: the local stack's changes between stacks)."""
    config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=3)
    return boto3.client("events", config=config, endpoint_url=endpoint_url)


def _not_published(count: int, reason: str, bus_name: str) -> None:
    logger.warning(
        "job events not published (the launch goes on)", extra={"events": count, "bus": bus_name, "error": reason}
    )
    try:
        with single_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=count) as metric:
            metric.add_dimension(name="service", value="lew-launcher")
    except Exception:  # noqa: BLE001, S110 - a metric must not fail the launch either; the warning above stays
        pass
