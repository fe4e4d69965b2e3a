"""Fixtures for the worker's integration tests: a bucket, a work queue with a DLQ, archives and S3 event bodies."""

from __future__ import annotations

import io
import json
import logging
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse

from lew.queues import create_work_queue, queue_depths
from lew.target import Target
from tests.integration.conftest import moto_target
from worker.dispatch import handle_message
from worker.drain import Summary, drain
from worker.events import JobEvents
from worker.heartbeat import Heartbeat
from worker.job import JobRuntime
from worker.log import get_logger
from worker.paths import manifest_key
from worker.processors import load_processor
from worker.redrive import max_receive_count
from worker.settings import Settings
from worker.shutdown import Shutdown

BUCKET = "lew-test-bucket"
REGION = "us-east-1"
MAX_RECEIVE_COUNT = 5


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive holding these members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tgz_bytes(members: dict[str, bytes]) -> bytes:
    """A gzipped tar archive holding these members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def s3_record(
    bucket: str, key: str, *, etag: str | None = None, size: int | None = None, emulator: bool = False
) -> dict[str, Any]:
    """One S3 notification record, the key encoded as S3 does (or as a local emulator does, `/` as %2F)."""
    encoded = quote_plus(key) if emulator else quote_plus(key, safe="/")
    obj: dict[str, Any] = {"key": encoded}
    if etag is not None:
        obj["eTag"] = etag
    if size is not None:
        obj["size"] = size
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": obj},
    }


@dataclass
class Stack:
    """The AWS side of a worker: clients, bucket, queues, settings; with helpers to upload and enqueue."""

    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    settings: Settings

    def upload(self, key: str, data: bytes) -> str:
        """Put an object; return its bare ETag."""
        etag: str = self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"].strip('"')
        return etag

    def enqueue(self, *keys: str, emulator: bool = False) -> None:
        """Send one message whose body notifies these keys (one record each)."""
        records = []
        for key in keys:
            try:
                head = self.s3.head_object(Bucket=BUCKET, Key=key)
                etag, size = head["ETag"].strip('"'), head["ContentLength"]
            except self.s3.exceptions.ClientError:
                etag, size = "0" * 32, 1
            records.append(s3_record(BUCKET, key, etag=etag, size=size, emulator=emulator))
        self.send({"Records": records})

    def send(self, body: dict[str, Any] | str) -> None:
        """Send a raw body to the work queue."""
        text = body if isinstance(body, str) else json.dumps(body)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text)

    def manifest(self, key: str) -> dict[str, Any]:
        """The manifest of an upload, found by the rule of docs/worker.md ("Where results go")."""
        body = self.s3.get_object(Bucket=BUCKET, Key=manifest_key(key, "incoming/", "results/"))["Body"].read()
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def fail_puts(self, under: str, status: int, code: str, message: str = "") -> None:
        """From now on, S3 answers every PUT of a key under `under` with this HTTP status and error code (after
        botocore's own retries): a refusal (403), a throttle (503) or an outage (500) of that part of the bucket."""
        said = f"<Message>{message}</Message>" if message else ""
        body = f"<Error><Code>{code}</Code>{said}</Error>".encode()

        def answer(request: Any, **_: Any) -> AWSResponse | None:
            if request.method == "PUT" and BUCKET in request.url and f"/{under}" in request.url:
                return AWSResponse(request.url, status, {}, _RawBody(body))
            return None

        self.s3.meta.events.register("before-send.s3", answer)

    def queue_counts(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        return queue_depths(self.sqs, url or self.queue_url)

    def run(self, *, events: JobEvents | None = None, **overrides: Any) -> Summary:
        """Drain the queue in this process, with settings overridden, until it is empty (publishing `events`)."""
        settings = replace(self.settings, **overrides)
        shutdown = Shutdown(settings.stop_grace_seconds)
        runtime = JobRuntime(
            s3=self.s3,
            settings=settings,
            processor=load_processor(settings),
            abort=shutdown.abort,
            max_receive_count=max_receive_count(self.sqs, settings.queue_url),  # read as `python -m worker` does
            events=events or JobEvents(),
        )
        heartbeat = Heartbeat(
            self.sqs, settings.queue_url, settings.visibility_timeout, settings.heartbeat_interval, runtime.claims
        )

        def handle(message: Any) -> Any:
            return handle_message(message, runtime, self.sqs, settings.queue_url, settings.dlq_url)

        with heartbeat.running():
            return drain(self.sqs, settings, handle, shutdown, heartbeat)


class _RawBody:
    """The raw stream an AWSResponse reads its body from."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def stream(self, **_: Any) -> Any:
        yield self._stream.read()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    """Poll an observable condition (never a fixed sleep); fail naming `what` after a generous overall limit."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def make_stack(endpoint: str | None = None) -> Stack:
    """Create the bucket and queues (against moto in process, or a moto server at `endpoint`)."""
    if endpoint:
        # The server's backends live in this process and outlive a test: start from an empty account.
        requests.post(f"{endpoint}/moto-api/reset", timeout=5).raise_for_status()
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    queue_url, dlq_url = create_work_queue(
        sqs, name="lew-work", dead_letter_name="lew-dlq", visibility_timeout=30, max_receive_count=MAX_RECEIVE_COUNT
    )
    settings = Settings(
        queue_url=queue_url,
        region=REGION,
        wait_time_seconds=0,
        idle_polls=1,
        visibility_timeout=30,
        job_timeout=20,
        stop_grace_seconds=5,
        dlq_url=dlq_url,
    )
    return Stack(s3=s3, sqs=sqs, queue_url=queue_url, dlq_url=dlq_url, settings=settings)


def target_of(stack: Stack) -> Target:
    """The stack as lew's Target (for lew.client, lew.ops, `lew rerun` against the worker's bucket and queues)."""
    return moto_target(
        BUCKET,
        stack.queue_url,
        stack.dlq_url,
        input_prefix=stack.settings.input_prefix,
        result_prefix=stack.settings.result_prefix,
    )


@pytest.fixture
def stack(aws: None) -> Stack:
    """A bucket and a work queue with a DLQ, in moto (in process)."""
    return make_stack()


@pytest.fixture
def server_stack(moto_server: str) -> Stack:
    """The same against a real moto server, for tests that run `python -m worker` as a process."""
    return make_stack(moto_server)


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The worker's JSON log lines, as dicts (read from a handler with the worker's own formatter)."""
    logger = get_logger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def python_command() -> Callable[[str], str]:
    """A PROCESS_COMMAND running a Python snippet with this interpreter (no shell involved)."""

    def command(code: str) -> str:
        import shlex

        return shlex.join([sys.executable, "-c", code])

    return command


@pytest.fixture
def worker_env(server_stack: Stack, moto_server: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a `python -m worker` process against the moto server."""
    import os

    env = {
        "PATH": os.environ["PATH"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
        "QUEUE_URL": server_stack.queue_url,
        "DLQ_URL": server_stack.dlq_url,
        "WAIT_TIME_SECONDS": "1",
        "IDLE_POLLS": "1",
        "VISIBILITY_TIMEOUT": "30",
        "JOB_TIMEOUT": "30",
        "STOP_GRACE_SECONDS": "1",
        "TMPDIR": str(tmp_path),
    }
    yield env
