"""Runs the real launcher handler in a process of its own, as Lambda would, and records what it did.

`python -m bench.launcher_probe latency --bucket B --records N --repeat R --out FILE` times R invocations with
an N-record S3 event. `python -m bench.launcher_probe burst --bucket B --events N --out FILE` sends N one-record
events one after another (the template's reserved concurrency of 1 makes Lambda run them that way) and counts
the RunTask calls and the tasks they started, with a botocore hook on the launcher's own ECS client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.events import REGION, s3_record


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context that Powertools reads."""

    function_name: str = "lew-launcher"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:lew-launcher"
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def s3_event(bucket: str, keys: list[str]) -> dict[str, Any]:
    """An S3 event notification with one record per key, as S3 sends it to Lambda."""
    return {
        "Records": [
            s3_record(bucket, key, size=6000, etag=uuid.uuid4().hex, configuration_id="lew-launcher") for key in keys
        ]
    }


def latency(bucket: str, records: int, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    from lew_launcher import app

    imported = time.perf_counter() - started
    import boto3

    # moto's SendMessageBatch and GetQueueAttributes slow down as its queue grows (they walk every message),
    # so each invocation gets an empty queue of its own, made outside the timed part (the handler reads
    # QUEUE_URL from the environment on every invocation, as in Lambda).
    sqs: Any = boto3.client("sqs")
    durations = []
    for invocation in range(repeat):
        os.environ["QUEUE_URL"] = sqs.create_queue(QueueName=f"bench-latency-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        event = s3_event(bucket, [f"incoming/latency/{invocation}-{index}.zip" for index in range(records)])
        begin = time.perf_counter()
        app.handler(event, FakeLambdaContext())
        durations.append(time.perf_counter() - begin)
    return {"import_seconds": imported, "durations": durations}


def burst(bucket: str, events: int) -> dict[str, Any]:
    from lew_launcher import app

    run_task_calls = 0
    tasks_started = 0

    def count_run_task(parsed: dict[str, Any], **_: Any) -> None:
        nonlocal run_task_calls, tasks_started
        run_task_calls += 1
        tasks_started += len(parsed.get("tasks", []))

    _, ecs = app.aws_clients()
    ecs.meta.events.register("after-call.ecs.RunTask", count_run_task)
    begin = time.perf_counter()
    for index in range(events):
        app.handler(s3_event(bucket, [f"incoming/burst/{index:05d}.zip"]), FakeLambdaContext())
    return {
        "seconds": time.perf_counter() - begin,
        "run_task_calls": run_task_calls,
        "tasks_started": tasks_started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.launcher_probe")
    commands = parser.add_subparsers(dest="command", required=True)
    latency_parser = commands.add_parser("latency")
    latency_parser.add_argument("--bucket", required=True)
    latency_parser.add_argument("--records", type=int, required=True)
    latency_parser.add_argument("--repeat", type=int, required=True)
    latency_parser.add_argument("--out", type=Path, required=True)
    burst_parser = commands.add_parser("burst")
    burst_parser.add_argument("--bucket", required=True)
    burst_parser.add_argument("--events", type=int, required=True)
    burst_parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "latency":
        result = latency(args.bucket, args.records, args.repeat)
    else:
        result = burst(args.bucket, args.events)
    # The handler's logs go to stdout, as in Lambda; the figures go to a file of their own.
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
