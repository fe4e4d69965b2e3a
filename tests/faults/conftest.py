"""Fixtures of the fault matrix: a fault-injecting proxy in front of a real moto server."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lew.local.ecs_agent import LocalEcsAgent
from lew.local.resources import LocalResources
from lew.local.settings import build_settings
from lew.local.stack import LocalStack
from tests.faults.harness import wait_for
from tests.faults.proxy import FaultProxy


@pytest.fixture
def proxy(moto_server: str) -> Iterator[FaultProxy]:
    """A started fault proxy in front of the test's moto server; its ``endpoint`` is what clients should use."""
    with FaultProxy(moto_server) as started:
        yield started


class LineSink:
    """Collects the local stack's log lines (source, line), thread-safe, for assertions; also keeps them on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.lines: list[tuple[str, str]] = []

    def __call__(self, source: str, line: str) -> None:
        with self._lock:
            self.lines.append((source, line))
            with self.path.open("a", encoding="utf-8") as log:
                log.write(f"[{source}] {line}\n")

    def events(self, message: str, source_prefix: str = "worker-") -> list[dict[str, Any]]:
        """The structured (JSON) log records with this message, from sources starting with source_prefix."""
        with self._lock:
            lines = [line for source, line in self.lines if source.startswith(source_prefix) and message in line]
        records = []
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("message") == message:
                    records.append(record)
        return records

    def matching(self, text: str, source_prefix: str = "") -> list[str]:
        """The lines that contain the text (from sources starting with source_prefix)."""
        with self._lock:
            return [line for source, line in self.lines if text in line and source.startswith(source_prefix)]


# Local-stack parameters of the fault tests: short timeouts so that every row runs in seconds.
FAST_PARAMETERS = {
    "VisibilityTimeout": "5",
    "WaitTimeSeconds": "1",
    "IdlePolls": "2",
    "StopGraceSeconds": "3",
    "MaxReceiveCount": "3",
}


@dataclass
class StartedStack:
    """A running local stack, its log lines, and helpers to use it."""

    stack: LocalStack
    log: LineSink

    @property
    def resources(self) -> LocalResources:
        assert self.stack.resources is not None
        return self.stack.resources

    @property
    def bucket(self) -> str:
        return self.resources.bucket

    @property
    def agent(self) -> LocalEcsAgent:
        assert self.stack.agent is not None
        return self.stack.agent

    def upload(self, key: str, body: bytes) -> None:
        self.stack.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def counts(self) -> dict[str, int]:
        return self.stack.queue_counts()

    def successes_per_key(self) -> Counter[str]:
        """How many times the workers logged 'job succeeded' for each key: the double-processing detector."""
        return Counter(str(record.get("key")) for record in self.log.events("job succeeded"))

    def skips(self) -> list[dict[str, Any]]:
        """The workers' 'already processed: skipping' records."""
        return self.log.events("already processed: skipping")

    def idle(self) -> bool:
        """Nothing queued or in flight, and no worker process running."""
        counts = self.counts()
        return counts["queued"] == 0 and counts["in_flight"] == 0 and self.agent.running_count == 0

    def progress(self) -> tuple[int, int, int]:
        """What changes whenever the stack takes a step: its log lines, the launcher's invocations, tasks started."""
        runtime = self.stack.runtime
        return len(self.log.lines), runtime.stats.invocations if runtime else 0, self.agent.tasks_started

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until the condition holds, for as long as the stack keeps doing something (see harness.wait_for)."""
        wait_for(condition, what, progress=self.progress)


@pytest.fixture
def local_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., StartedStack]]:
    """Start the local stack (moto server, launcher runtime, ECS agent) with fast parameters; stopped at the end.

    ``local_stack(processor="command", parameters={...}, environment={"PROCESS_COMMAND": ...})``: the
    environment is what the worker processes inherit (the agent passes on every non-AWS variable).
    """
    started: list[LocalStack] = []

    def start(
        *,
        processor: str = "inventory",
        parameters: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
        reconcile_seconds: float = 1.0,
    ) -> StartedStack:
        for name, value in (environment or {}).items():
            monkeypatch.setenv(name, value)
        settings = build_settings(
            processor=processor,
            parameters={**FAST_PARAMETERS, **(parameters or {})},
            reconcile_seconds=reconcile_seconds,
            worker_kill_grace_seconds=5.0,
            check=False,  # visibility timeouts of a few seconds, below the template's MinValue 30, on purpose
        )
        log = LineSink(tmp_path / "stack.log")
        stack = LocalStack(settings, sink=log)
        started.append(stack)
        stack.start()
        return StartedStack(stack, log)

    yield start
    for stack in reversed(started):
        stack.stop()
