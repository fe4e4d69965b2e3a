"""What every benchmark gets: the server, set-up clients, a scratch folder, the mode, and where to report."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.events import s3_record
from bench.harness import RecordingMotoServer, clients
from bench.report import Section


@dataclass
class Context:
    server: RecordingMotoServer
    workdir: Path
    smoke: bool
    console: Console
    profile: bool  # profile a benchmark that misses its target (on by default for full runs)
    sections: list[Section] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # figures other benchmarks or the report reuse
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    @property
    def ecs(self) -> Any:
        return self.client("ecs")

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    def client(self, name: str) -> Any:
        if not self._clients:
            self._clients.update(clients(self.server.endpoint))
        return self._clients[name]

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/]")


def unique(prefix: str) -> str:
    """A name no earlier run used (buckets and queues are never shared between runs)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def notification_body(bucket: str, key: str, size: int, etag: str) -> str:
    """A work message: an S3 event notification with one record, key URL-encoded as S3 sends it."""
    record = s3_record(bucket, key, size=size, etag=etag, configuration_id="lew-bench")
    return json.dumps({"Records": [record]})


def send_messages(sqs: Any, queue_url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies[start : start + 10])]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        if failed:
            raise RuntimeError(f"set-up could not enqueue messages: {failed}")
