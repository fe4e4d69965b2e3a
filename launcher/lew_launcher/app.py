"""The Lambda handler, ``lew_launcher.app.handler``: it wires settings and clients, then calls ``launch``.

What the launcher does lives in the package's other modules (see ``lew_launcher``); this module holds only what a
warm execution environment keeps between invocations: the AWS clients and the tasks it started recently.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from lew_launcher.launch import launch
from lew_launcher.observability import DEFAULT_METRICS_NAMESPACE, logger, metrics, tracer
from lew_launcher.retry import DEFAULT_RETRY
from lew_launcher.scaling import LaunchMemory
from lew_launcher.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_sqs.client import SQSClient

# Kept across invocations of a warm execution environment (see LaunchMemory).
LAUNCH_MEMORY = LaunchMemory()


@functools.cache
def aws_clients() -> tuple[SQSClient, ECSClient]:
    """SQS and ECS clients, created on first use (never at import) and reused by warm invocations."""
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=15)
    return boto3.client("sqs", config=config), boto3.client("ecs", config=config)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: read the settings, then enqueue the event's objects and scale the workers."""
    # Without a namespace Powertools would fail the flush after the work is done, and Lambda would retry it.
    metrics.namespace = metrics.namespace or DEFAULT_METRICS_NAMESPACE
    settings = Settings.from_env(os.environ)
    sqs, ecs = aws_clients()
    # DEFAULT_RETRY is read here, at call time, so that tests can give the handler retries that do not sleep.
    return launch(event, settings=settings, sqs=sqs, ecs=ecs, retry=DEFAULT_RETRY, memory=LAUNCH_MEMORY)
