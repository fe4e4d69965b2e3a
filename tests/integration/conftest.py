"""Helpers shared by the integration tests of lew and of the worker (moto in process)."""

from __future__ import annotations

from lew.target import Target

REGION = "us-east-1"


def moto_target(
    bucket: str, queue_url: str, dlq_url: str, *, input_prefix: str = "incoming/", result_prefix: str = "results/"
) -> Target:
    """The lew Target of a bucket and its queues in moto: no cluster, so lew's S3 and SQS operations only."""
    return Target(
        description="moto",
        bucket=bucket,
        queue_url=queue_url,
        dlq_url=dlq_url,
        cluster="",
        task_family="",
        input_prefix=input_prefix,
        result_prefix=result_prefix,
        suffixes=(".zip",),
        region=REGION,
    )
