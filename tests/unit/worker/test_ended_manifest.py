"""worker/job.py's _ended_manifest: the one manifest builder of a failed and of a cancelled job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from worker.job import _ended_manifest
from worker.manifest import CANCELLED, FAILED, Source
from worker.metadata import TaskIdentity

SOURCE = Source("bucket", "incoming/scene.zip", "abc", "v1", 10)
ERROR = {"type": "UnsafeArchive", "message": "../x leaves the folder", "permanent": True}


def runtime() -> SimpleNamespace:
    identity = TaskIdentity(task_arn="arn:aws:ecs:us-east-1:1:task/lew/0", log_stream="worker/lew/0")
    return SimpleNamespace(processor=SimpleNamespace(name="inventory"), identity=identity)


def test_ended_manifest_records_who_ran_the_job_when_and_for_how_long() -> None:
    # GIVEN a job that started a minute ago, with the times of its phases so far
    started_at = datetime.now(UTC) - timedelta(minutes=1)
    timings = {"download": 1.5}

    # WHEN its failure manifest is built
    manifest = _ended_manifest(
        FAILED,
        3,
        runtime(),  # type: ignore[arg-type]
        source=SOURCE,
        started_at=started_at,
        timings=timings,
        error=ERROR,
        processor_log="results/scene.zip/processor.log",
        ignored=[{"name": "__MACOSX/x", "rule": "macos-metadata"}],
    )

    # THEN it names the upload, processor, attempt, task and log stream, the error, and the job's total time,
    # which the caller's dict (reported by the job event) holds too
    document = manifest.to_dict()
    assert (document["status"], document["processor"], document["attempt"]) == (FAILED, "inventory", 3)
    assert (document["task_arn"], document["log_stream"]) == ("arn:aws:ecs:us-east-1:1:task/lew/0", "worker/lew/0")
    assert document["source"]["key"] == "incoming/scene.zip"
    assert document["error"] == ERROR
    assert document["processor_log"] == "results/scene.zip/processor.log"
    assert document["ignored"] == [{"name": "__MACOSX/x", "rule": "macos-metadata"}]
    assert manifest.started_at == started_at
    assert timings["total"] == (manifest.finished_at - started_at).total_seconds() >= 60
    assert manifest.timings is timings
    assert document["outputs"] == [] and document["claim"] is None


def test_ended_manifest_of_a_cancel_has_no_processor_log_and_nothing_ignored() -> None:
    started_at = datetime.now(UTC)
    manifest = _ended_manifest(
        CANCELLED,
        1,
        runtime(),  # type: ignore[arg-type]
        source=SOURCE,
        started_at=started_at,
        timings={},
        error=ERROR,
    )
    assert (manifest.status, manifest.processor_log, manifest.ignored) == (CANCELLED, None, [])
    assert manifest.finished_at >= started_at
