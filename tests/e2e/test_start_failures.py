"""Failed task starts injected on the local stack: the launcher replaces the task at once, and `lew status` says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lew import cli
from lew.local.chaos import StartFailures
from lew.local.stack import LocalStack
from lew.stopped_tasks import stopped_tasks, stopped_tasks_report
from tests.e2e.conftest import LogCollector, fast_settings, make_zip, manifest, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
SEED_FAILING_THEN_STARTING = 1  # random.Random(1): 0.13 (< 0.5, fails), then 0.85 (starts)
NO_RECONCILE = 3600.0  # so that only the task's event can start the replacement


def task_stop_results(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.runtime is not None
    return [r for r in stack.runtime.stats.results if isinstance(r, dict) and r.get("event") == "ecs-task-stopped"]


def test_failed_start_is_replaced_by_the_launcher_at_once_and_shown_by_lew_status(
    tmp_path: Path, logs: LogCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a local stack whose first task fails to start (seeded share 0.5) and whose reconcile never fires
    failures = StartFailures.parse("0.5:TaskFailedToStart", seed=SEED_FAILING_THEN_STARTING)
    settings = fast_settings(task_start_failures=failures, reconcile_seconds=NO_RECONCILE)
    archive = make_zip(tmp_path / "scene.zip", {"scene.txt": "s"})

    with LocalStack(settings, sink=logs) as stack:
        assert stack.resources is not None and stack.agent is not None
        # WHEN an archive is uploaded
        stack.s3.upload_file(str(archive), stack.resources.bucket, "incoming/scene.zip")

        # THEN the first task fails to start, ECS's event reaches the launcher through the template's rule, and the
        # launcher starts a replacement at once (no reconcile tick could have), which processes the archive
        document = wait_for(lambda: manifest(stack, "scene"), timeout=90, what="the manifest")
        assert document["status"] == "succeeded", document
        assert stack.agent.failed_starts == 1
        (result,) = task_stop_results(stack)
        assert (result["start_failure"], result["stop_code"], result["tasks_started"]) == (True, "TaskFailedToStart", 1)
        assert "(injected by --fail-task-starts)" in result["reason"]

        # AND when the replacement's worker exits after draining the queue, its stop (it ran) does not match the rule
        wait_for(lambda: stack.agent is not None and stack.agent.running_count == 0, timeout=60, what="idle exit")
        stopped = wait_for(
            lambda: (
                len(found := stopped_tasks(stack.ecs, stack.resources.cluster, stack.resources.task_family)) == 2
                and found
            ),
            timeout=30,
            what="two stopped tasks",
        )
        assert len(task_stop_results(stack)) == 1
        failed, exited = stopped  # failed starts first
        assert (failed.stop_code, failed.started, failed.failed_to_start) == ("TaskFailedToStart", False, True)
        assert failed.reason.startswith("CannotPullContainerError")
        assert (exited.stop_code, exited.started, exited.failed_to_start) == ("EssentialContainerExited", True, False)

        # AND `lew status` lists both, with their stop codes and reasons
        capsys.readouterr()
        assert cli.main(["status", "--endpoint", stack.endpoint]) == 0
        out = capsys.readouterr().out
        assert "worker tasks stopped in the last hour: 2, 1 failed to start" in out
        assert "TaskFailedToStart" in out
        assert "CannotPullContainerError" in out
        assert "EssentialContainerExited" in out


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_every_start_failing_is_replaced_then_held_back_not_a_run_task_storm(
    logs: LogCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN every task start fails (a missing image, say) and work is waiting, with no reconcile tick
    settings = fast_settings(task_start_failures=StartFailures.parse("1"), reconcile_seconds=NO_RECONCILE)
    with LocalStack(settings, sink=logs) as stack:
        assert stack.resources is not None and stack.agent is not None and stack.runtime is not None
        stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=json.dumps({"Records": []}))
        stack.runtime.invoke_async(
            json.loads((Path(__file__).parents[2] / "events" / "scheduled-reconcile.json").read_text()),
            source="test",
        )

        # THEN the first failure is replaced at once, the second holds starts back: two tasks, then quiet
        results = wait_for(lambda: len(found := task_stop_results(stack)) >= 2 and found, timeout=60, what="2 stops")
        assert [result["tasks_started"] for result in results[:2]] == [1, 0]
        assert results[1]["starts_held_back_seconds"] > 0
        assert stack.agent.tasks_started == stack.agent.failed_starts == 2

        # AND `lew status` says that starts are held back, and why (the launcher's streak is in its memory only)
        resources = stack.resources
        hold = wait_for(
            lambda: stopped_tasks_report(stack.ecs, resources.cluster, resources.task_family).start_hold,
            timeout=30,
            what="the hold in the stopped tasks",
        )
        assert hold.failures == 2
        capsys.readouterr()
        assert cli.main(["status", "--endpoint", stack.endpoint]) == 0
        assert "starts held back: 2 worker tasks in a row failed to start (the last at " in capsys.readouterr().out
