"""The job lifecycle on the local stack: POV-Ray's progress, cancel of a running and of a queued job, success and
failure, and every state change delivered as an event on the stack's bus that matches the documented schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from lew.client import Client
from lew.local.settings import build_settings
from lew.local.stack import LocalStack
from lew.samples import SAMPLES_DIR
from lew.target import from_local_state
from tests.e2e.conftest import LogCollector, make_zip, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("povray") is None, reason="needs POV-Ray (apt-get install povray)"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO_ROOT / "docs" / "job-event.schema.json").read_text(encoding="utf-8"))


def scene(path: Path, *, width: int, height: int) -> Path:
    """The marbles sample as `<path>`, rendered at this size (a large one takes long enough to watch and cancel)."""
    name = path.name.removesuffix(".zip")
    ini = (SAMPLES_DIR / "marbles" / "marbles.ini").read_text(encoding="utf-8")
    ini = ini.replace("Width=480", f"Width={width}").replace("Height=320", f"Height={height}")
    ini = ini.replace("Output_File_Name=marbles.png", f"Output_File_Name={name}.png")
    pov = (SAMPLES_DIR / "marbles" / "marbles.pov").read_text(encoding="utf-8")
    return make_zip(path, {f"{name}.ini": ini, "marbles.pov": pov})


def test_progress_cancel_success_failure_and_their_events_on_the_local_stack(
    tmp_path: Path, logs: LogCollector
) -> None:
    # GIVEN a local stack with one worker at most, rendering with POV-Ray
    settings = build_settings(
        processor="povray",
        parameters={"MaxWorkers": "1", "WaitTimeSeconds": "1", "IdlePolls": "3", "StopGraceSeconds": "2"},
        reconcile_seconds=2.0,
        lambda_retry_delays=(0.2, 0.2),
        worker_kill_grace_seconds=5.0,
    )
    with LocalStack(settings, sink=logs) as stack:
        client = Client(from_local_state(stack.state()), poll_seconds=0.5)

        # WHEN a long render runs, its progress (POV-Ray's pixels) shows in the job's state
        long = client.submit(scene(tmp_path / "long.zip", width=2400, height=1800))
        running = wait_for(
            lambda: (state := client.state(long)).progress is not None and state,
            timeout=120,
            what="the render's progress",
        )
        assert running.status == "running"
        assert running.progress is not None and running.progress.total == 2400 * 1800
        # ... a second upload waits behind it (one worker), and is cancelled while queued
        queued = client.submit(scene(tmp_path / "queued.zip", width=64, height=48))
        assert client.cancel(queued).state == "queued"
        # ... and the long render is cancelled while it runs
        assert client.cancel(long).state == "running"

        # THEN both end cancelled, the running one long before its render could have finished
        long_state, queued_state = client.wait_all([long, queued], timeout=120)
        assert (long_state.status, queued_state.status) == ("cancelled", "cancelled")
        assert long_state.manifest is not None and queued_state.manifest is not None
        assert queued_state.manifest.document["timings"].get("process") is None  # never started

        # WHEN a good scene and a hostile archive follow
        good = client.submit(scene(tmp_path / "good.zip", width=64, height=48))
        hostile = client.submit(make_zip(tmp_path / "hostile.zip", {"x.ini": "", "../escape.txt": "no"}))
        good_state, hostile_state = client.wait_all([good, hostile], timeout=120)

        # THEN one succeeded and one failed, saying why
        assert good_state.status == "succeeded"
        assert hostile_state.status == "failed"
        assert hostile_state.error is not None and "escape.txt" in hostile_state.error

        # AND every state change arrived on the bus as a valid event
        events = list(client.events(follow=False, wait_seconds=1))
        for event in events:
            jsonschema.validate(event, SCHEMA, cls=jsonschema.Draft202012Validator)
        by_key: dict[str, list[str]] = {}
        for event in events:
            by_key.setdefault(event["detail"]["job"]["key"], []).append(event["detail"]["status"])
        # ... each job's first event is the launcher's `queued`
        assert all(statuses[0] == "queued" for statuses in by_key.values()), by_key
        long_statuses = by_key["incoming/long.zip"]
        assert long_statuses[1] == "started"
        assert "progress" in long_statuses
        assert long_statuses[-1] == "cancelled"
        assert by_key["incoming/queued.zip"] == ["queued", "cancelled"]
        assert [s for s in by_key["incoming/good.zip"] if s != "progress"] == ["queued", "started", "succeeded"]
        assert by_key["incoming/hostile.zip"] == ["queued", "started", "failed"]
