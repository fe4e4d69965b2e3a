"""Runs lew's local stack (moto server, local Lambda runtime, local ECS agent) in a process of its own, uploads
archives into its bucket and records, for each, the seconds from the end of its upload to its manifest.

`python -m bench.e2e_probe --archive FILE --count N --out FILE --log FILE`
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.05
DEADLINE_SECONDS = 180.0


def measure(archive: Path, count: int, log: Path) -> dict[str, Any]:
    from lew.local.output import FileSink
    from lew.local.settings import build_settings
    from lew.local.stack import LocalStack
    from worker.paths import manifest_key

    sink = FileSink(log)
    settings = build_settings(processor="inventory")
    payload = archive.read_bytes()
    try:
        with LocalStack(settings, sink=sink) as stack:
            assert stack.resources is not None
            s3, bucket = stack.s3, stack.resources.bucket
            uploaded: dict[str, float] = {}
            for index in range(count):
                key = f"incoming/e2e/scene-{index:02d}.zip"
                s3.put_object(Bucket=bucket, Key=key, Body=payload)
                uploaded[manifest_key(key, "incoming/", "results/")] = time.perf_counter()
            seen: dict[str, float] = {}
            deadline = time.perf_counter() + DEADLINE_SECONDS
            while len(seen) < count and time.perf_counter() < deadline:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="results/e2e%2F"):
                    for item in page.get("Contents", []):
                        if item["Key"] in uploaded and item["Key"] not in seen:
                            seen[item["Key"]] = time.perf_counter()
                time.sleep(POLL_SECONDS)
            statuses = [
                json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).get("status") for key in sorted(seen)
            ]
            tasks_started = stack.agent.tasks_started if stack.agent is not None else None
    finally:
        sink.close()
    return {
        "latencies": [seen[key] - uploaded[key] for key in sorted(seen)],
        "missing": sorted(set(uploaded) - set(seen)),
        "statuses": statuses,
        "tasks_started": tasks_started,
        "max_workers": settings.parameter("MaxWorkers"),
        "overrides": [f"{item.name}={item.local_value} ({item.reason})" for item in settings.overrides],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_probe")
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    result = measure(args.archive, args.count, args.log)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
