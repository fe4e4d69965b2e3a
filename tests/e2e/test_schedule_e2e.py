"""Scheduled jobs through `lew local up` and `lew schedule`, as a user runs them: an ETL script and its configuration
in an archive, run by the command processor, fired twice; each run has its own results, and knows its time."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import lew, local_up, make_zip

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# The README's example: an ETL script and its configuration (examples/nightly_etl/).
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nightly_etl"
RUN_LINE = re.compile(r"^started schedules/etl\.zip \(run (\S+)\)", re.MULTILINE)


def test_a_scheduled_job_fired_twice_gives_two_results(tmp_path: Path) -> None:
    # GIVEN a stack whose schedule runs an ETL archive with the command processor (a cron schedule: the local
    # stack's clock runs only rate(), so its runs are fired on demand)
    members = {name: (EXAMPLE / name).read_text(encoding="utf-8") for name in ("etl.py", "config.json")}
    archive = make_zip(tmp_path / "etl.zip", members)
    template_parameters = {
        "ProcessCommand": shlex.join([sys.executable, "etl.py"]),
        "ProcessParameters": "mode:choice:full|delta",
        "ScheduleExpression": "cron(0 3 * * ? *)",
        "ScheduleObjectKey": "schedules/etl.zip",
    }
    options = [item for name, value in template_parameters.items() for item in ("--param", f"{name}={value}")]
    with local_up(tmp_path, "--processor", "command", *options) as up_output:
        # WHEN the archive is put in place with a job parameter, and the schedule is fired twice
        uploaded = lew(tmp_path, "schedule", "upload", str(archive), "--param", "mode=full")
        assert uploaded.returncode == 0, uploaded.stderr
        fired = [lew(tmp_path, "schedule", "fire", "--wait") for _ in range(2)]
        for result in fired:
            assert result.returncode == 0, result.stdout + result.stderr
        downloaded = lew(tmp_path, "results", "schedules/etl.zip", "--download", "fetched")
        assert downloaded.returncode == 0, downloaded.stderr

    # THEN there are two runs, each succeeded with its own report, in its own folder, knowing its run and time
    runs = [match.group(1) for result in fired for match in RUN_LINE.finditer(result.stdout)]
    assert len(set(runs)) == 2, [result.stdout for result in fired]
    manifests: dict[str, dict[str, Any]] = {}
    for path in (tmp_path / "fetched").rglob("manifest.json"):
        document = json.loads(path.read_text())
        report = json.loads((path.parent / "report.json").read_text())
        assert document["status"] == "succeeded", document["error"]
        assert report["run"] == document["run"]["id"] == path.parent.name
        assert report["scheduled_time"] == document["run"]["scheduled_time"]
        assert (report["mode"], report["tables"]) == ("full", ["orders", "refunds"])
        # (the day before the run's scheduled time: the window a nightly step processes)
        assert report["window"]["end"] == report["scheduled_time"][:10]
        assert document["parameters"] == {"mode": "full"}
        manifests[document["run"]["id"]] = document
    assert sorted(manifests) == sorted(runs)
    # AND `lew results KEY` listed the key's runs, named, and downloaded them into a visible runs/ folder
    for run in runs:
        assert f"schedules/etl.zip (run {run})" in downloaded.stdout
        assert (tmp_path / "fetched" / "runs" / "schedules%2Fetl.zip" / run / "report.json").is_file()
    # AND `lew local up` said how its cron schedule runs locally
    assert (
        "is not run by the local stack's clock (only rate() is): start a run with `lew schedule fire`" in (up_output[0])
    )
