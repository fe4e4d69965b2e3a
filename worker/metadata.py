"""Who is running: the ECS task ARN and log stream, from the container metadata endpoint (v4) when present."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

METADATA_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class TaskIdentity:
    """The task ARN and CloudWatch log stream recorded in every manifest (None outside ECS)."""

    task_arn: str | None = None
    log_stream: str | None = None


def task_identity(environ: Mapping[str, str], timeout: float = METADATA_TIMEOUT_SECONDS) -> TaskIdentity:
    """Ask the metadata endpoint once; outside ECS, or when it fails, quickly give up and return Nones."""
    base = environ.get("ECS_CONTAINER_METADATA_URI_V4", "").rstrip("/")
    if not base.startswith(("http://", "https://")):
        return TaskIdentity()
    task = _get_json(f"{base}/task", timeout)
    container = _get_json(base, timeout)
    task_arn = task.get("TaskARN")
    log_options = container.get("LogOptions")
    log_stream = log_options.get("awslogs-stream") if isinstance(log_options, dict) else None
    return TaskIdentity(
        task_arn=task_arn if isinstance(task_arn, str) else None,
        log_stream=log_stream if isinstance(log_stream, str) else None,
    )


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the http(s) URL ECS gives us
            document = json.loads(response.read())
    except (OSError, ValueError):
        return {}  # metadata is informative only: a job must not fail for want of it
    return document if isinstance(document, dict) else {}
