"""Fault matrix rows 1 and 2: a worker SIGKILLed or SIGTERMed in the middle of a job loses nothing.

Both run on the local stack. The processor is a `command` that is slow on its first run only (a marker
file remembers that it ran), so that the first worker is caught mid-job and the next one finishes quickly.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.faults.conftest import StartedStack
from tests.faults.harness import manifest_key_for, read_json, verdict, wait_for, zip_archive

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(150)]


def slow_first_time_command(marker: Path) -> str:
    """A PROCESS_COMMAND that sleeps for a minute the first time it runs, and then writes its output at once."""
    script = (
        "import os, pathlib, time; "
        f"marker = pathlib.Path({str(marker)!r}); "
        "first = not marker.exists(); marker.touch(); "
        "time.sleep(60 if first else 0); "
        "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'render.txt').write_text('rendered')"
    )
    return f'{sys.executable} -c "{script}"'


def start_slow_stack(local_stack: Callable[..., StartedStack], tmp_path: Path, **parameters: str) -> StartedStack:
    return local_stack(
        processor="command",
        parameters=parameters,
        environment={"PROCESS_COMMAND": slow_first_time_command(tmp_path / "ran-once")},
    )


def wait_until_the_job_runs(started: StartedStack, tmp_path: Path) -> psutil.Process:
    """Wait for the first worker to be inside its job (the command started); return the worker's process."""
    wait_for((tmp_path / "ran-once").exists, 60, "the first worker to start the slow command")
    (worker,) = [w for w in started.agent.workers.values() if w.running]
    assert worker.process is not None
    return psutil.Process(worker.process.pid)


def test_worker_sigkilled_mid_job_its_message_returns_and_the_next_worker_processes_it_once(
    local_stack: Callable[..., StartedStack], tmp_path: Path
) -> None:
    # GIVEN a stack whose messages stay hidden 5 s after the last heartbeat, and one archive being processed
    started = start_slow_stack(local_stack, tmp_path, VisibilityTimeout="5")
    key = "incoming/killed/scene.zip"
    started.upload(key, zip_archive(key))
    worker = wait_until_the_job_runs(started, tmp_path)
    # WHEN the worker's container dies at once (SIGKILL to the worker and everything it started)
    family = [worker, *worker.children(recursive=True)]
    command = next(p for p in psutil.process_iter(["cmdline"]) if "ran-once" in " ".join(p.info["cmdline"] or []))
    for process in [*family, command]:
        process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    # THEN no success is reported for the half-done job
    assert read_json(started.stack.s3, started.bucket, manifest_key_for(key)) is None
    # AND the message comes back after its visibility timeout, and a new worker (started by a reconcile tick)
    # processes it: exactly one success manifest, from the second delivery
    wait_for(lambda: verdict(started.stack.s3, started.bucket, [key]).all_succeeded, 60, "the manifest")
    assert time.monotonic() - killed_at >= 2  # it waited for the visibility timeout, not for nothing
    manifest = read_json(started.stack.s3, started.bucket, manifest_key_for(key))
    assert manifest is not None
    assert manifest["status"] == "succeeded" and manifest["attempt"] == 2
    assert [output["key"].rsplit("/", 1)[-1] for output in manifest["outputs"]] == ["render.txt"]
    wait_for(started.idle, 30, "the queue to empty and the workers to exit")
    assert started.agent.tasks_started >= 2
    assert started.successes_per_key() == {key: 1}
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}


def test_worker_sigtermed_mid_job_releases_its_message_at_once_and_it_is_processed_later(
    local_stack: Callable[..., StartedStack], tmp_path: Path
) -> None:
    # GIVEN a long visibility timeout (a minute), a 2 s stop grace, and one archive being processed
    started = start_slow_stack(local_stack, tmp_path, VisibilityTimeout="60", StopGraceSeconds="2")
    key = "incoming/stopped/scene.zip"
    started.upload(key, zip_archive(key))
    wait_until_the_job_runs(started, tmp_path)
    (task_arn,) = [arn for arn, w in started.agent.workers.items() if w.running]
    # WHEN ECS stops the task (scale-in, Spot interruption): the local agent sends the worker SIGTERM
    started.stack.ecs.stop_task(cluster=started.resources.cluster, task=task_arn, reason="scale-in")
    stopped_at = time.monotonic()
    # THEN the worker gives up the job after its grace period and releases the message: it is processed again
    # long before the minute-long visibility timeout would have let it out
    wait_for(lambda: verdict(started.stack.s3, started.bucket, [key]).all_succeeded, 40, "the manifest")
    assert time.monotonic() - stopped_at < 40
    first = started.agent.workers[task_arn]
    wait_for(lambda: not first.running, 10, "the first worker to exit")
    assert first.exit_code == 0  # a clean, signalled stop
    assert started.log.events("message settled", first.label) and any(
        record.get("action") == "release" for record in started.log.events("message settled", first.label)
    )
    wait_for(started.idle, 30, "the queue to empty and the workers to exit")
    assert started.successes_per_key() == {key: 1}
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}
    # AND no process of the first job survived it
    assert not [p for p in psutil.process_iter(["cmdline"]) if "ran-once" in " ".join(p.info["cmdline"] or [])]
    assert (tmp_path / "ran-once").exists()
