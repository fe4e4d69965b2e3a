"""Scheduled jobs through `lew local up` and `lew schedule`, as a user runs them: an ETL script and its configuration
in an archive, run by the command processor, fired twice; each run has its own results, and knows its time."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lew.state import state_path
from tests.e2e.conftest import make_zip, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

FAST = ["--param", "WaitTimeSeconds=1", "--reconcile-seconds", "2"]
# An ETL step: reads its configuration, writes a report naming the run it was and the job parameter it was given.
ETL = """\
import json, os
config = json.load(open("config.json"))
report = {
    "run": os.environ.get("LEW_RUN_ID"),
    "scheduled_time": os.environ.get("LEW_SCHEDULED_TIME"),
    "mode": os.environ.get("LEW_PARAM_MODE"),
    "tables": config["tables"],
}
with open(os.path.join(os.environ["LEW_OUTPUT_DIR"], "report.json"), "w") as out:
    json.dump(report, out)
"""
RUN_LINE = re.compile(r"^started schedules/etl\.zip \(run (\S+)\)", re.MULTILINE)


def lew(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # Generous: `--wait` returns on the job's outcome; this only stops a hung command from hanging the suite.
    return subprocess.run(
        [sys.executable, "-m", "lew.cli", *argv], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


@contextmanager
def local_up(cwd: Path, *options: str) -> Iterator[list[str]]:
    """`lew local up` in `cwd` until the block ends; yields a list that receives its output once it has stopped."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    up = subprocess.Popen(
        [sys.executable, "-m", "lew.cli", "local", "up", *FAST, *options],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        wait_for(lambda: state_path(cwd).exists() or up.poll() is not None, timeout=120, what="lew local up to start")
        assert up.poll() is None, up.communicate()[0]
        yield output
    finally:
        up.send_signal(signal.SIGTERM)
        output.append(up.communicate(timeout=120)[0])
    assert up.returncode == 0, output[0]


def test_a_scheduled_job_fired_twice_gives_two_results(tmp_path: Path) -> None:
    # GIVEN a stack whose schedule runs an ETL archive with the command processor (a cron schedule: the local
    # stack's clock runs only rate(), so its runs are fired on demand)
    archive = make_zip(tmp_path / "etl.zip", {"etl.py": ETL, "config.json": json.dumps({"tables": ["orders"]})})
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
        assert (report["mode"], report["tables"]) == ("full", ["orders"])
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
