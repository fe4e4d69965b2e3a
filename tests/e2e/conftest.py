"""Helpers of the end-to-end tests: a fast local stack, a log collector, polling, manifests, `lew` as users run it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lew.local.settings import LocalSettings, build_settings
from lew.local.stack import LocalStack
from lew.state import state_path
from worker.paths import manifest_key

T = TypeVar("T")
MAX_WORKERS = 2
# `lew local up` options that make its stack quick to answer (short polls, a frequent reconcile).
LOCAL_UP_FAST = ["--param", "WaitTimeSeconds=1", "--reconcile-seconds", "2"]


class LogCollector:
    """A thread-safe log sink that keeps every (source, line), and prints them when a test fails."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, source: str, line: str) -> None:
        with self._lock:
            self.lines.append((source, line))

    def text(self) -> str:
        with self._lock:
            return "\n".join(f"[{source}] {line}" for source, line in self.lines)


@pytest.fixture
def logs(request: pytest.FixtureRequest) -> Any:
    collector = LogCollector()
    yield collector
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(collector.text())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def fast_settings(*, parameters: Mapping[str, str] | None = None, **extra: Any) -> LocalSettings:
    """The real template, with timings short enough for tests (each override visible here), and `parameters` (e.g.
    the command processor's ProcessCommand, which lew checks before a stack starts)."""
    fast = {"MaxWorkers": str(MAX_WORKERS), "WaitTimeSeconds": "1", "IdlePolls": "2", "StopGraceSeconds": "2"}
    return build_settings(
        processor=extra.pop("processor", "inventory"),
        parameters={**fast, **(parameters or {})},
        reconcile_seconds=extra.pop("reconcile_seconds", 2.0),
        **{"lambda_retry_delays": (0.2, 0.2), "worker_kill_grace_seconds": 5.0, **extra},
    )


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.3) -> T:
    """Poll until `probe` returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def lew(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `lew ARGV...` in `cwd` as a user would (its own process); its exit code and output, never raised."""
    # Generous: `--wait` returns on the job's outcome; this only stops a hung command from hanging the suite.
    return subprocess.run(
        [sys.executable, "-m", "lew.cli", *argv], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def start_local_up(cwd: Path, *options: str) -> subprocess.Popen[str]:
    """`lew local up OPTIONS...` (fast polls) started in `cwd`, its output (stdout and stderr) on a pipe."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    return subprocess.Popen(
        [sys.executable, "-m", "lew.cli", "local", "up", *LOCAL_UP_FAST, *options],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def local_up(cwd: Path, *options: str) -> Iterator[list[str]]:
    """`lew local up` in `cwd` (fast polls) until the block ends, then SIGTERM and a clean exit checked; yields a
    list that receives its output once it has stopped."""
    up = start_local_up(cwd, *options)
    output: list[str] = []
    try:
        wait_for(lambda: state_path(cwd).exists() or up.poll() is not None, timeout=120, what="lew local up to start")
        assert up.poll() is None, up.communicate()[0]
        yield output
    finally:
        up.send_signal(signal.SIGTERM)
        output.append(up.communicate(timeout=120)[0])
    assert up.returncode == 0, output[0]


def make_zip(path: Path, members: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in members.items():
            bundle.writestr(name, text)
    path.write_bytes(buffer.getvalue())
    return path


def manifest(stack: LocalStack, stem: str) -> dict[str, Any] | None:
    """The manifest of the upload incoming/<stem>.zip, or None."""
    assert stack.resources is not None
    key = manifest_key(f"incoming/{stem}.zip", "incoming/", "results/")
    try:
        body = stack.s3.get_object(Bucket=stack.resources.bucket, Key=key)["Body"]
    except stack.s3.exceptions.NoSuchKey:
        return None
    loaded: dict[str, Any] = json.loads(body.read())
    return loaded
