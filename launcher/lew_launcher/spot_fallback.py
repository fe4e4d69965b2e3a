"""Falling back from FARGATE_SPOT to FARGATE for a cool-down after a capacity failure, kept in a cluster tag.

Where the cool-down is kept: a tag on the workers' cluster, ``lew:spot-fallback-until``, whose value is the end
of the cool-down (ISO 8601, UTC). The launcher is stateless across cold starts and may run in several execution
environments, so the state must live outside it; the cluster tag needs no new service (the launcher already calls
ECS for this cluster), costs nothing, survives cold starts, is read and written in one call each
(DescribeClusters with ``include=TAGS``, TagResource), and shows the fallback to operators where they look: the
cluster's tags in the console, and ``lew status``. An expired tag needs no clean-up: a time in the past means Spot.

This module imports only the standard library, so that ``lew status`` can read the same tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_ecs.client import ECSClient

FALLBACK_TAG: Final = "lew:spot-fallback-until"
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class ClusterFallback:
    """The cluster's ARN and the end of its Spot fallback (None: no fallback recorded, or unreadable)."""

    cluster_arn: str
    until: datetime | None

    def active(self, now: datetime) -> bool:
        return self.until is not None and now < self.until


def parse_until(value: str) -> datetime | None:
    """The tag's time, or None when it is not one (a hand-edited tag must not break scaling)."""
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def fallback_from_tags(tags: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The end of the fallback recorded in an ECS tag list (``[{"key": ..., "value": ...}]``), if any."""
    for tag in tags:
        if tag.get("key") == FALLBACK_TAG:
            return parse_until(str(tag.get("value", "")))
    return None


def read_fallback(ecs: ECSClient, cluster: str) -> ClusterFallback | None:
    """The cluster's ARN and fallback, with one DescribeClusters call; None when ECS does not know the cluster."""
    clusters = ecs.describe_clusters(clusters=[cluster], include=["TAGS"]).get("clusters", [])
    if not clusters:
        return None
    described = clusters[0]
    return ClusterFallback(str(described.get("clusterArn", cluster)), fallback_from_tags(described.get("tags") or []))


def begin_fallback(ecs: ECSClient, cluster_arn: str, seconds: int, now: datetime) -> datetime:
    """Record a fallback of ``seconds`` from ``now`` on the cluster (TagResource); return its end."""
    until = (now + timedelta(seconds=seconds)).replace(microsecond=0)
    ecs.tag_resource(resourceArn=cluster_arn, tags=[{"key": FALLBACK_TAG, "value": until.strftime(TIME_FORMAT)}])
    return until
