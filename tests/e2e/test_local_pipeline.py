"""The whole pipeline on one machine: the real launcher and `python -m worker` processes against moto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lew.local.stack import LocalStack
from tests.e2e.conftest import MAX_WORKERS, LogCollector, fast_settings, make_zip, manifest, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_local_stack_processes_two_good_archives_and_rejects_a_hostile_one(tmp_path: Path, logs: LogCollector) -> None:
    # GIVEN two good archives and one that tries to write outside its folder
    good = [
        make_zip(tmp_path / "alpha.zip", {"alpha.txt": "a" * 100, "nested/beta.txt": "b"}),
        make_zip(tmp_path / "gamma.zip", {"gamma.txt": "g"}),
    ]
    hostile = make_zip(tmp_path / "slip.zip", {"ok.txt": "fine", "../escape.txt": "must not escape"})

    with LocalStack(fast_settings(), sink=logs) as stack:
        resources = stack.resources
        assert resources is not None and stack.agent is not None

        # WHEN they are uploaded under the input prefix
        for archive in [*good, hostile]:
            stack.s3.upload_file(str(archive), resources.bucket, f"incoming/{archive.name}")

        # THEN every archive gets a manifest
        manifests = wait_for(
            lambda: (
                (found := {s: manifest(stack, s) for s in ("alpha", "gamma", "slip")}) and all(found.values()) and found
            ),
            timeout=90,
            what="three manifests",
        )
        # ... the good ones succeeded, with their outputs uploaded
        for stem in ("alpha", "gamma"):
            document = manifests[stem]
            assert document["status"] == "succeeded", document
            assert document["source"]["key"] == f"incoming/{stem}.zip"
            assert document["source"]["bucket"] == resources.bucket
            assert document["outputs"], document
            for output in document["outputs"]:
                head = stack.s3.head_object(Bucket=resources.bucket, Key=output["key"])
                assert head["ContentLength"] == output["size"]
        inventory = json.loads(
            stack.s3.get_object(Bucket=resources.bucket, Key=manifests["alpha"]["outputs"][0]["key"])["Body"].read()
        )
        assert "alpha.txt" in json.dumps(inventory)
        # ... and the hostile one failed permanently, saying why
        rejected = manifests["slip"]
        assert rejected["status"] == "failed"
        assert rejected["error"]["permanent"] is True
        assert "escape.txt" in rejected["error"]["message"]
        assert rejected["outputs"] == []

        # ... the workers drain the queue and exit on their own, and their tasks are stopped
        wait_for(lambda: stack.agent.tasks_started and stack.agent.running_count == 0, timeout=60, what="idle exit")
        wait_for(lambda: all(w.task_stopped for w in stack.agent.workers.values()), timeout=10, what="tasks stopped")
        assert stack.queue_counts() == {"queued": 0, "in_flight": 0, "dead": 0}
        ecs = stack.ecs
        assert ecs.list_tasks(cluster=resources.cluster, desiredStatus="RUNNING")["taskArns"] == []
        stopped = ecs.list_tasks(cluster=resources.cluster, desiredStatus="STOPPED")["taskArns"]
        described = ecs.describe_tasks(cluster=resources.cluster, tasks=stopped)["tasks"]
        assert {task["stoppedReason"] for task in described} == {"exit 0"}
        assert all(code == 0 for code in stack.agent.exit_codes().values())
        # ... and RunTask never started more tasks than MAX_WORKERS allows (3 messages, 5 per worker: one)
        assert 1 <= len(stopped) <= MAX_WORKERS
        assert stack.agent.peak_running <= MAX_WORKERS
        assert stack.runtime is not None
        assert stack.runtime.stats.failed_events == 0
        processes = [worker.process for worker in stack.agent.workers.values()]

    # AND after stopping, no worker process is left
    assert processes
    assert all(process is not None and process.poll() is not None for process in processes)
