"""Scheduled runs against moto: each run is a job of its own, in its own folder; a redelivered run is a skip.

The work messages are the launcher's own (`lew_launcher.messages.message_body` of a parsed schedule event), so the
launcher's and the worker's sides of the contract are tested together.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from lew import ops
from lew.client import Client
from lew.errors import LewError
from lew.rerun import rerun
from lew_launcher.events import parse_event
from lew_launcher.messages import message_body
from lew_launcher.schedule import schedule_event
from tests.integration.worker.conftest import BUCKET, Stack, target_of, zip_bytes
from worker.paths import manifest_key

pytestmark = pytest.mark.timeout(180)

KEY = "schedules/etl.zip"


def run_message(key: str, scheduled_time: str) -> str:
    """The launcher's work message for one tick of a schedule of `key`."""
    (notice,) = parse_event(
        schedule_event(BUCKET, key, scheduled_time, "arn:aws:scheduler:::schedule/default/s")
    ).objects
    return message_body(notice)


def run_manifest(stack: Stack, key: str, run: str) -> dict[str, Any]:
    body = stack.s3.get_object(Bucket=BUCKET, Key=manifest_key(key, "incoming/", "results/", run))["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def result_keys(stack: Stack) -> list[str]:
    listing = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="results/")
    return sorted(item["Key"] for item in listing.get("Contents", []) if ".lew-claims/" not in item["Key"])


def test_a_schedule_fired_twice_gives_two_results(stack: Stack) -> None:
    # GIVEN a scheduled archive outside the input prefix
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))

    # WHEN two ticks of its schedule are processed, one after the other
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))
    assert stack.run().to_dict()["processed"] == 1
    stack.send(run_message(KEY, "2026-12-01T03:00:00Z"))
    assert stack.run().to_dict()["processed"] == 1

    # THEN each run has its own folder, outputs and success manifest naming the run
    assert result_keys(stack) == [
        "results/.lew-runs/schedules%2Fetl.zip/20261130T030000Z/inventory.json",
        "results/.lew-runs/schedules%2Fetl.zip/20261130T030000Z/manifest.json",
        "results/.lew-runs/schedules%2Fetl.zip/20261201T030000Z/inventory.json",
        "results/.lew-runs/schedules%2Fetl.zip/20261201T030000Z/manifest.json",
    ]
    for run, when in (("20261130T030000Z", "2026-11-30T03:00:00Z"), ("20261201T030000Z", "2026-12-01T03:00:00Z")):
        manifest = run_manifest(stack, KEY, run)
        assert manifest["status"] == "succeeded"
        assert manifest["source"]["key"] == KEY
        assert manifest["run"] == {
            "id": run,
            "scheduled_time": when,
            "schedule": "arn:aws:scheduler:::schedule/default/s",
        }
        assert manifest["outputs"][0]["key"].startswith(f"results/.lew-runs/schedules%2Fetl.zip/{run}/")


def test_a_redelivered_run_is_a_skip_once_it_has_its_outcome(stack: Stack) -> None:
    # GIVEN a run that succeeded
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))
    assert stack.run().to_dict()["processed"] == 1
    first = run_manifest(stack, KEY, "20261130T030000Z")

    # WHEN the same tick's message comes again (a retried invocation, a redelivery), even for a new object version
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl v2')\n"}))
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))
    summary = stack.run().to_dict()

    # THEN it is skipped: the run's manifest is the first one, untouched
    assert (summary["processed"], summary["skipped"]) == (0, 1)
    assert run_manifest(stack, KEY, "20261130T030000Z") == first


def test_a_run_is_never_skipped_for_an_uploads_success_nor_an_upload_for_a_runs(stack: Stack) -> None:
    # GIVEN a scheduled key under the input prefix, processed as an upload
    key = "incoming/etl.zip"
    stack.upload(key, zip_bytes({"etl.py": b"print('etl')\n"}))
    stack.enqueue(key)
    assert stack.run().to_dict()["processed"] == 1

    # WHEN a run of it comes (same bytes, same ETag)
    stack.send(run_message(key, "2026-11-30T03:00:00Z"))
    # THEN it is processed into its own folder, and the upload's manifest is untouched
    assert stack.run().to_dict()["processed"] == 1
    assert run_manifest(stack, key, "20261130T030000Z")["run"]["id"] == "20261130T030000Z"
    assert stack.manifest(key)["run"] is None

    # AND a redelivery of the upload's own message is still a skip (its manifest, not the run's, decides)
    stack.enqueue(key)
    assert stack.run().to_dict()["skipped"] == 1


def test_a_failed_run_keeps_its_failure_and_the_next_run_still_runs(stack: Stack) -> None:
    # GIVEN a scheduled object that is not a valid archive
    stack.upload(KEY, b"not a zip")
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))

    # WHEN its run fails, and the next tick comes after the object was fixed
    assert stack.run().to_dict()["failed"] == 1
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))
    stack.send(run_message(KEY, "2026-12-01T03:00:00Z"))
    assert stack.run().to_dict()["processed"] == 1

    # THEN each run says what happened to it
    failed = run_manifest(stack, KEY, "20261130T030000Z")
    assert failed["status"] == "failed"
    assert failed["error"]["message"].endswith(
        f"; once fixed, `lew rerun {KEY} --run 20261130T030000Z` runs this scheduled run again"
    )
    assert run_manifest(stack, KEY, "20261201T030000Z")["status"] == "succeeded"
    # AND a redelivery of the failed run is a skip, not a second try (its outcome is recorded)
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))
    assert stack.run().to_dict()["skipped"] == 1


def client_of(stack: Stack) -> Client:
    """lew's client of the stack, whose ScheduleObjectKey is KEY."""
    target = dataclasses.replace(target_of(stack), schedule_key=KEY)
    return Client(target, poll_seconds=0.05, dlq_poll_seconds=0.0)


def test_a_queued_run_cancelled_with_lew_cancel_run_is_not_run_and_the_next_run_is(stack: Stack) -> None:
    # GIVEN two queued runs of a scheduled key
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))
    stack.send(run_message(KEY, "2026-12-01T03:00:00Z"))
    client = client_of(stack)
    first, second = client.run_of(KEY, "20261130T030000Z"), client.run_of(KEY, "20261201T030000Z")
    assert client.state(first).status == "queued"

    # WHEN the first is cancelled (`lew cancel KEY --run ID`) and a worker drains the queue
    assert client.cancel(first, requested_by="ops").state == "queued"
    summary = stack.run().to_dict()

    # THEN the first run is cancelled, saying who asked, and the second ran: one run's cancel is not another's
    assert (summary["cancelled"], summary["processed"]) == (1, 1)
    cancelled, succeeded = client.wait(first, timeout=30), client.wait(second, timeout=30)
    assert cancelled.status == "cancelled" and "by ops" in (cancelled.error or "")
    assert succeeded.status == "succeeded"
    assert run_manifest(stack, KEY, "20261130T030000Z")["run"]["id"] == "20261130T030000Z"
    assert not client.cancel_requested(first)  # the worker honoured and removed the marker
    # AND a run of a time to come cannot be cancelled: nothing is written
    with pytest.raises(LewError, match=r"^run 20991130T030000Z of schedules/etl.zip is in the future: no such run"):
        client.cancel(client.run_of(KEY, "20991130T030000Z"))


def test_a_dead_lettered_run_is_that_runs_outcome_only(stack: Stack) -> None:
    # GIVEN a run whose message was dead-lettered, beside another run and the upload job of the same key
    client = client_of(stack)
    body = run_message(KEY, "2026-11-30T03:00:00Z")
    stack.sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody=body,
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "the run's reason"}},
    )
    # THEN waiting on that run ends with its reason, and the other run and the upload are not dead-lettered
    assert client.dead_letter_reason(client.run_of(KEY, "20261130T030000Z")) == "the run's reason"
    assert client.dead_letter_reason(client.run_of(KEY, "20261201T030000Z")) is None
    stack.upload(KEY, b"x")
    assert client.dead_letter_reason(client.upload(KEY)) is None


def test_lew_rerun_run_runs_a_failed_tick_again_into_its_own_folder(stack: Stack) -> None:
    # GIVEN a run that failed because its object was not there yet
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))
    assert stack.run().to_dict()["failed"] == 1
    failed = run_manifest(stack, KEY, "20261130T030000Z")
    assert failed["status"] == "failed"
    # (saying what happened and what to do for this run, not for an upload)
    assert "there was no object at the key when the run started" in failed["error"]["message"]
    assert failed["error"]["message"].endswith(
        f"to do: `lew schedule upload FILE {KEY}`, then `lew rerun {KEY} --run 20261130T030000Z`"
    )

    # WHEN the object is uploaded and that run is re-run (`lew rerun KEY --run ID`)
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))
    client = client_of(stack)
    (rerun,) = client.rerun([KEY], run="20261130T030000Z")
    assert stack.run().to_dict()["processed"] == 1

    # THEN the run's manifest is replaced by a success for the same run and its scheduled time
    state = client.wait(rerun, timeout=30)
    assert state.status == "succeeded"
    manifest = run_manifest(stack, KEY, "20261130T030000Z")
    assert manifest["run"]["scheduled_time"] == "2026-11-30T03:00:00Z"
    assert manifest["outputs"][0]["key"].startswith("results/.lew-runs/schedules%2Fetl.zip/20261130T030000Z/")
    # AND a run id of no real time is refused in one line
    with pytest.raises(LewError, match=r"^--run '20261130T990000Z' is not a run id of a real time"):
        client.rerun([KEY], run="20261130T990000Z")
    with pytest.raises(LewError, match="not a run id of a real time"):
        client.run_of(KEY, "20261130T990000Z")


def test_a_keys_runs_are_its_results_newest_first_and_download_into_runs(stack: Stack, tmp_path: Path) -> None:
    # GIVEN two runs of a scheduled key
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))
    for when in ("2026-11-30T03:00:00Z", "2026-12-01T03:00:00Z"):
        stack.send(run_message(KEY, when))
    assert stack.run().to_dict()["processed"] == 2
    target = client_of(stack).target

    # WHEN the key's results are asked for
    runs = ops.run_manifests(stack.s3, target, KEY)

    # THEN both runs are listed, newest first, named by run; and they download into a visible runs/ folder
    assert [summary.label for summary in runs] == [f"{KEY} (run 20261201T030000Z)", f"{KEY} (run 20261130T030000Z)"]
    assert [summary.label for summary in ops.run_manifests(stack.s3, target, KEY, limit=1)] == [runs[0].label]
    written = ops.download_results(stack.s3, target, runs[0], tmp_path)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == [
        "runs/schedules%2Fetl.zip/20261201T030000Z/inventory.json",
        "runs/schedules%2Fetl.zip/20261201T030000Z/manifest.json",
    ]


def test_a_wait_after_a_rerun_made_elsewhere_waits_for_the_reruns_outcome(stack: Stack) -> None:
    # GIVEN a failed run, re-run by another process (`lew rerun KEY --run ID`, then `lew wait KEY --run ID`)
    stack.send(run_message(KEY, "2026-11-30T03:00:00Z"))
    assert stack.run().to_dict()["failed"] == 1
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))
    client = client_of(stack)
    rerun(stack.s3, stack.sqs, client.target, [KEY], run="20261130T030000Z")

    # THEN a fresh wait does not take the failure for the re-run's outcome, and sees the success once written
    waiting = client.run_of(KEY, "20261130T030000Z")
    assert client.state(waiting).status == "queued"
    assert stack.run().to_dict()["processed"] == 1
    assert client.wait(waiting, timeout=30).status == "succeeded"


def test_what_no_run_can_be_is_refused_in_one_line(stack: Stack, tmp_path: Path) -> None:
    client = client_of(stack)
    stack.upload(KEY, zip_bytes({"etl.py": b"print('etl')\n"}))
    # a cancel of the scheduled object without a run: its jobs are runs
    with pytest.raises(LewError, match=r"is the scheduled job's object: name the run to cancel"):
        client.cancel(client.upload(KEY))
    # a re-run of a run to come
    with pytest.raises(LewError, match=r"^--run 20991130T030000Z is in the future"):
        client.rerun([KEY], run="20991130T030000Z")
    # the scheduled archive put where the launcher would refuse it
    archive = tmp_path / "etl.zip"
    archive.write_bytes(zip_bytes({"etl.py": b"print('etl')\n"}))
    with pytest.raises(LewError, match=r"results/x.zip is under the result prefix results/"):
        client.upload_scheduled(archive, "results/x.zip")
