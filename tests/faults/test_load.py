"""Fault matrix row 8: N archives through the local stack with MAX_WORKERS=4; each processed exactly once.

CI runs N=40 (LEW_LOAD_N sets it); the full N=500 run is done by hand and recorded in docs/RELIABILITY.md:

    LEW_LOAD_N=500 .venv/bin/pytest tests/faults/test_load.py -s -p no:randomly
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import psutil
import pytest

from tests.faults.conftest import StartedStack
from tests.faults.harness import TEST_TIMEOUT_SECONDS, verdict, wait_for, zip_archive

LOAD_N = int(os.environ.get("LEW_LOAD_N", "40"))
MAX_WORKERS = 4

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS + LOAD_N * 6)]


def worker_processes() -> list[psutil.Process]:
    """Every `python -m worker` process that is a child of this test process."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if child.is_running() and child.cmdline()[-2:] == ["-m", "worker"]
    ]


def test_load_every_archive_has_exactly_one_success_and_nothing_is_left(
    local_stack: Callable[..., StartedStack],
) -> None:
    # GIVEN the local stack with MAX_WORKERS=4 and the default MESSAGES_PER_WORKER
    started = local_stack(parameters={"MaxWorkers": str(MAX_WORKERS), "VisibilityTimeout": "30"})
    keys = [f"incoming/load/{index // 50:02d}/archive-{index:04d}.zip" for index in range(LOAD_N)]
    # WHEN N archives are uploaded as fast as the client can
    began = time.monotonic()
    for key in keys:
        started.upload(key, zip_archive(key))
    # THEN every one gets its success manifest
    wait_for(
        lambda: not verdict(started.stack.s3, started.bucket, keys).missing,
        f"{LOAD_N} manifests",
        progress=started.progress,
        interval=2,  # the verdict reads every manifest: poll it gently
    )
    elapsed = time.monotonic() - began
    result = verdict(started.stack.s3, started.bucket, keys)
    assert result.all_succeeded, result
    # AND no message is left, and no worker process is left
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}
    started.wait_for(lambda: not worker_processes(), "every worker process to exit")
    # AND each archive was processed exactly once, by at most MAX_WORKERS workers at a time
    successes = started.successes_per_key()
    duplicates = {key: count for key, count in successes.items() if count != 1}
    assert set(successes) == set(keys) and not duplicates, duplicates
    assert 1 <= started.agent.peak_running <= MAX_WORKERS
    print(
        f"\nload: {len(result.succeeded)}/{LOAD_N} processed, {len(result.missing)} lost, {len(duplicates)} duplicates,"
        f" {len(started.skips())} skips, {started.agent.tasks_started} tasks, peak {started.agent.peak_running}"
        f" workers, {elapsed:.1f} s",
        file=sys.__stdout__ or sys.stdout,
    )
