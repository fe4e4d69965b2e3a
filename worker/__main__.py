"""`python -m worker`: wire settings, clients and the loop.

Exit codes (worker.faults): 0 when drained or stopped by a signal; 2 when an environment variable is missing or
invalid; 3 when AWS cannot be used (no or bad credentials, endpoint unreachable, no such queue, access denied);
1 on a crash (a bug). Codes 2 and 3 come with one ERROR log line and no traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from worker.dispatch import handle_message
from worker.drain import Summary, drain
from worker.events import EventPublisher, JobEvents
from worker.faults import (
    EXIT_CONFIG,
    EXIT_CRASH,
    EXIT_ENVIRONMENT,
    EXIT_OK,
    Fault,
    check_queue,
    describe_fault,
)
from worker.heartbeat import Heartbeat
from worker.job import JobRuntime
from worker.log import get_logger
from worker.metadata import TaskIdentity, task_identity
from worker.processors import load_processor
from worker.redrive import max_receive_count_of
from worker.settings import ConfigurationError, Settings
from worker.shutdown import Shutdown

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def client_config(settings: Settings) -> Config:
    """Standard retries (throttling and 5xx with backoff), and timeouts longer than a long poll."""
    return Config(
        region_name=settings.region,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=max(60, settings.wait_time_seconds + 10),
        max_pool_connections=16,
    )


def job_events(settings: Settings, identity: TaskIdentity) -> JobEvents:
    """The job events publisher: to EVENT_BUS_NAME with short timeouts and one retry, or none when it is unset."""
    if not settings.event_bus_name:
        return JobEvents(task_arn=identity.task_arn)
    # An event must never hold up a job: fail fast, and let the publisher log and count what was not sent.
    config = Config(
        region_name=settings.region, retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=3
    )
    client = boto3.session.Session().client("events", config=config)
    return JobEvents(EventPublisher(client, settings.event_bus_name), task_arn=identity.task_arn)


def make_clients(settings: Settings) -> tuple[S3Client, SQSClient]:
    """One S3 and one SQS client per process (boto3 reads AWS_ENDPOINT_URL for a local emulator)."""
    session = boto3.session.Session()
    config = client_config(settings)
    return session.client("s3", config=config), session.client("sqs", config=config)


def run(settings: Settings, environ: Mapping[str, str], shutdown: Shutdown) -> Summary:
    """Build the runtime, check that the queue answers, and drain it."""
    processor = load_processor(settings)
    s3, sqs = make_clients(settings)
    attributes = check_queue(sqs, settings.queue_url)
    identity = task_identity(environ)
    runtime = JobRuntime(
        s3=s3,
        settings=settings,
        processor=processor,
        identity=identity,
        abort=shutdown.abort,
        max_receive_count=max_receive_count_of(attributes.get("RedrivePolicy")),
        events=job_events(settings, identity),
    )
    heartbeat = Heartbeat(
        sqs, settings.queue_url, settings.visibility_timeout, settings.heartbeat_interval, claims=runtime.claims
    )
    handle = functools.partial(
        handle_message, runtime=runtime, sqs=sqs, queue_url=settings.queue_url, dlq_url=settings.dlq_url
    )
    get_logger().info(
        "worker started",
        extra={"queue_url": settings.queue_url, "processor": processor.name, "task_arn": runtime.identity.task_arn},
    )
    try:
        with heartbeat.running():
            return drain(sqs, settings, handle, shutdown, heartbeat)
    finally:
        runtime.events.close()  # bounded: what EventBridge has not taken in a few seconds is dropped


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the worker until the queue is drained or a signal stops it; return the exit code."""
    environ = os.environ if environ is None else environ
    logger = get_logger()
    shutdown = Shutdown(grace_seconds=0)
    shutdown.install()  # first, so that a SIGTERM during start-up is not a traceback
    settings: Settings | None = None
    try:
        settings = Settings.from_env(environ)
        shutdown.grace_seconds = settings.stop_grace_seconds
        summary = run(settings, environ, shutdown)
    except ConfigurationError as error:
        return _stop(str(error), "configuration", EXIT_CONFIG)
    except Exception as error:  # the last line of defence: one line for the foreseeable, else a crash
        fault = _fault(error, settings, environ)
        if fault is None:
            logger.exception("worker crashed")
            return EXIT_CRASH
        return _stop(fault.message, fault.reason, EXIT_ENVIRONMENT)
    finally:
        shutdown.cancel_timer()
    logger.info("worker finished", extra=summary.to_dict())
    return EXIT_OK


def _stop(message: str, reason: str, exit_code: int) -> int:
    """One ERROR line for a foreseeable failure, without a traceback: the sentence says what to set."""
    get_logger().error(message, extra={"reason": reason, "exit_code": exit_code})
    return exit_code


def _fault(error: Exception, settings: Settings | None, environ: Mapping[str, str]) -> Fault | None:
    if settings is None:  # failed before any AWS call: not a fault of the surroundings
        return None
    return describe_fault(error, queue_url=settings.queue_url, region=settings.region, environ=environ)


if __name__ == "__main__":
    sys.exit(main())
