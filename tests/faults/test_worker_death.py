"""Fault matrix rows 1 and 2: a worker SIGKILLed or SIGTERMed in the middle of a job loses nothing.

Both run on the local stack. The processor is a `command` that is slow on its first run only (a marker
file remembers that it ran), so that the first worker is caught mid-job and the next one finishes quickly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import psutil
import pytest

from lew.queues import queue_depths
from tests.faults.conftest import StartedStack
from tests.faults.harness import (
    REGION,
    TEST_TIMEOUT_SECONDS,
    manifest_key_for,
    read_json,
    verdict,
    wait_for,
    work_message,
    zip_archive,
)
from tests.faults.proxy import FaultProxy, Rule, blackhole

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]


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
    started.wait_for((tmp_path / "ran-once").exists, "the first worker to start the slow command")
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
    started.wait_for(lambda: verdict(started.stack.s3, started.bucket, [key]).all_succeeded, "the manifest")
    assert time.monotonic() - killed_at >= 2  # it waited for the visibility timeout, not for nothing
    manifest = read_json(started.stack.s3, started.bucket, manifest_key_for(key))
    assert manifest is not None
    assert manifest["status"] == "succeeded" and manifest["attempt"] == 2
    assert [output["key"].rsplit("/", 1)[-1] for output in manifest["outputs"]] == ["render.txt"]
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
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
    # THEN the worker gives up the job after its grace period and releases the message (visibility 0): it is
    # processed again without waiting for the minute-long visibility timeout
    first = started.agent.workers[task_arn]
    started.wait_for(
        lambda: any(record.get("action") == "release" for record in started.log.events("message settled", first.label)),
        "the first worker to release the message",
    )
    started.wait_for(lambda: verdict(started.stack.s3, started.bucket, [key]).all_succeeded, "the manifest")
    started.wait_for(lambda: not first.running, "the first worker to exit")
    assert first.exit_code == 0  # a clean, signalled stop
    assert started.log.events("message settled", first.label) and any(
        record.get("action") == "release" for record in started.log.events("message settled", first.label)
    )
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
    assert started.successes_per_key() == {key: 1}
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}
    # AND no process of the first job survived it
    assert not [p for p in psutil.process_iter(["cmdline"]) if "ran-once" in " ".join(p.info["cmdline"] or [])]
    assert (tmp_path / "ran-once").exists()


def start_worker_process(
    proxy: FaultProxy, queue_url: str, log_path: Path, *, idle_polls: int = 2
) -> subprocess.Popen[bytes]:
    """`python -m worker` talking to moto through the proxy, with short timeouts, its output in a file."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "QUEUE_URL": queue_url,
        "PROCESSOR": "inventory",
        "VISIBILITY_TIMEOUT": "4",
        "WAIT_TIME_SECONDS": "1",
        "IDLE_POLLS": str(idle_polls),
        "STOP_GRACE_SECONDS": "2",
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )


def test_worker_killed_after_uploading_outputs_but_before_its_manifest_reports_no_success(
    moto_server: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    # GIVEN one announced archive, and the manifest's PutObject held in the proxy (it never lands)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    bucket, key = "lew-half", "incoming/half/scene.zip"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName="lew-work", Attributes={"VisibilityTimeout": "4"})["QueueUrl"]
    s3.put_object(Bucket=bucket, Key=key, Body=zip_archive(key))
    sqs.send_message(QueueUrl=queue_url, MessageBody=work_message(s3, bucket, key))
    held = proxy.add(Rule("PutObject", blackhole(30), times=1, path_contains="manifest.json"))
    first = start_worker_process(proxy, queue_url, tmp_path / "worker-1.log")
    try:
        # WHEN the worker is killed while its manifest is being written (its outputs are already uploaded)
        wait_for(lambda: held.hits == 1, "the worker to reach its manifest")
        first.send_signal(signal.SIGKILL)
        first.wait()  # SIGKILL cannot be ignored: it ends
    finally:
        first.kill()
    # THEN the outputs are there, but without a manifest nothing says the job succeeded
    uploaded = s3.list_objects_v2(Bucket=bucket, Prefix="results/half%2Fscene.zip/").get("Contents", [])
    assert [item["Key"] for item in uploaded] == ["results/half%2Fscene.zip/inventory.json"]
    assert read_json(s3, bucket, manifest_key_for(key)) is None
    # WHEN the message comes back after its visibility timeout, and a new worker takes it
    proxy.clear()
    second = start_worker_process(proxy, queue_url, tmp_path / "worker-2.log", idle_polls=10)
    assert second.wait() == 0  # it exits once the queue has stayed empty for its idle polls
    # THEN it redoes the job and writes the one success manifest, which lists the outputs it uploaded
    result = verdict(s3, bucket, [key])
    assert result.all_succeeded, (result, (tmp_path / "worker-2.log").read_text())
    manifest = read_json(s3, bucket, manifest_key_for(key))
    assert manifest is not None and manifest["attempt"] == 2
    assert [output["key"] for output in manifest["outputs"]] == ["results/half%2Fscene.zip/inventory.json"]
    succeeded = [
        line for line in (tmp_path / "worker-2.log").read_text().splitlines() if '"message":"job succeeded"' in line
    ]
    assert len(succeeded) == 1
    assert queue_depths(sqs, queue_url) == (0, 0)
    assert json.loads(s3.get_object(Bucket=bucket, Key="results/half%2Fscene.zip/inventory.json")["Body"].read())
