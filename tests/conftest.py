"""Fixtures shared by every tier of tests: fake credentials, moto, sample events and a Lambda context."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a fixed region, so that no test can ever reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # Powertools: metrics need a namespace, and tracing must stay off outside Lambda.
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "lew-tests")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "lew-tests")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    """moto's in-process mock of every AWS service; start it before any client exists."""
    with mock_aws():
        yield


@pytest.fixture
def load_event() -> Callable[[str], dict[str, Any]]:
    """Load a committed sample event from events/ (the same files `sam local invoke -e` uses)."""

    def load(name: str) -> dict[str, Any]:
        path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    return load


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context that Powertools reads."""

    function_name: str = "lew-launcher"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:lew-launcher"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def moto_server(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real moto server on 127.0.0.1 (for tests that run real processes); yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's backends are process-global: without a reset, a server sees the data of earlier tests.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield endpoint
    finally:
        server.stop()
