"""The ECS task identity, from the container metadata endpoint v4."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from worker.metadata import TaskIdentity, task_identity

TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/lew/0123456789abcdef"


class MetadataHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/task"):
            body = {"TaskARN": TASK_ARN, "Family": "lew-worker"}
        else:
            body = {"Name": "worker", "LogOptions": {"awslogs-group": "/lew", "awslogs-stream": "worker/worker/0123"}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def metadata_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MetadataHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v4/abc"
    finally:
        server.shutdown()


def test_task_identity_reads_the_task_arn_and_log_stream(metadata_endpoint: str) -> None:
    identity = task_identity({"ECS_CONTAINER_METADATA_URI_V4": metadata_endpoint})

    assert identity == TaskIdentity(task_arn=TASK_ARN, log_stream="worker/worker/0123")


def test_task_identity_outside_ecs_is_empty() -> None:
    assert task_identity({}) == TaskIdentity()


def test_task_identity_gives_up_quickly_when_the_endpoint_fails() -> None:
    dead = "http://127.0.0.1:9/v4/nothing"
    started = time.monotonic()

    identity = task_identity({"ECS_CONTAINER_METADATA_URI_V4": dead}, timeout=0.5)

    assert identity == TaskIdentity()
    assert time.monotonic() - started < 3
