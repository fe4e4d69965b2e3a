"""The `lew` command against the local stack: `lew demo` exit codes, and `lew local up` driven by the others."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import psutil
import pytest

from lew import cli
from lew.state import state_path
from tests.e2e.conftest import make_zip, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

FAST = ["--processor", "inventory", "--param", "WaitTimeSeconds=1", "--reconcile-seconds", "2"]


def test_demo_with_the_bundled_samples_exits_0_and_shows_the_rejection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"

    code = cli.main(["demo", *FAST, "--out", str(out), "--timeout", "120"])

    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "rejected as expected: UnsafeArchive" in printed
    assert json.loads((out / "marbles.zip" / "manifest.json").read_text())["status"] == "succeeded"
    assert (out / "marbles.zip" / "inventory.json").is_file()
    assert json.loads((out / "hostile-zip-slip.zip" / "manifest.json").read_text())["status"] == "failed"
    assert not (tmp_path / "escape.txt").exists()


def test_demo_exits_1_when_a_user_archive_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = make_zip(tmp_path / "good.zip", {"good.txt": "fine"})
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")

    code = cli.main(["demo", *FAST, "--out", str(tmp_path / "out"), "--timeout", "120", str(good), str(bad)])

    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "not as expected: bad.zip" in printed
    assert json.loads((tmp_path / "out" / "good.zip" / "manifest.json").read_text())["status"] == "succeeded"


def lew(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lew.cli", *argv], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_local_up_serves_submit_status_results_rerun_and_redrive_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    up = subprocess.Popen(
        [sys.executable, "-m", "lew.cli", "local", "up", *FAST],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state_file = state_path(tmp_path)
        wait_for(state_file.exists, timeout=60, what="lew local up to write its state file")
        state = json.loads(state_file.read_text())
        archive = make_zip(tmp_path / "scene one.zip", {"scene.pov": "sphere {}"})

        submitted = lew(tmp_path, "submit", str(archive))
        assert submitted.returncode == 0, submitted.stderr
        assert "incoming/scene one.zip" in submitted.stdout

        def finished() -> bool:
            return "succeeded" in lew(tmp_path, "results").stdout

        wait_for(finished, timeout=60, what="the submitted archive's manifest", interval=1.0)
        status = lew(tmp_path, "status", "--endpoint", state["endpoint"])
        assert status.returncode == 0, status.stderr
        assert "queued 0" in status.stdout
        downloaded = lew(tmp_path, "results", "--download", "fetched")
        assert downloaded.returncode == 0, downloaded.stderr
        first = json.loads((tmp_path / "fetched" / "scene one.zip" / "manifest.json").read_text())
        assert first["status"] == "succeeded"
        # `lew results KEY` finds one upload's manifest by the results folder rule; `lew rerun` processes it again
        one = lew(tmp_path, "results", "scene one.zip")
        assert one.returncode == 0 and "incoming/scene one.zip" in one.stdout, one.stderr
        rerun = lew(tmp_path, "rerun", "scene one.zip")
        assert rerun.returncode == 0, rerun.stderr
        assert "results/scene one.zip/manifest.json" in rerun.stdout

        def processed_again() -> bool:
            lew(tmp_path, "results", "scene one.zip", "--download", "again")
            again = tmp_path / "again" / "scene one.zip" / "manifest.json"
            return again.exists() and json.loads(again.read_text())["claim"] != first["claim"]

        wait_for(processed_again, timeout=60, what="the re-run's new manifest", interval=1.0)
        redriven = lew(tmp_path, "redrive")
        assert redriven.returncode == 0, redriven.stderr
        assert "moved 0 message(s)" in redriven.stdout
        with zipfile.ZipFile(archive) as bundle:
            assert bundle.namelist() == ["scene.pov"]
    finally:
        # WHEN it gets SIGTERM
        up.send_signal(signal.SIGTERM)
        output, _ = up.communicate(timeout=60)

    # THEN it stops cleanly: exit 0, state file gone, no worker left, port free, logs were tagged by source
    assert up.returncode == 0, output
    assert "Traceback" not in output
    assert "[lew] stopped" in output
    assert "[launcher] " in output
    assert "[worker-1] " in output
    assert not state_path(tmp_path).exists()
    port = int(state["endpoint"].rsplit(":", 1)[1])
    listening = {conn.laddr.port for conn in psutil.net_connections(kind="tcp") if conn.status == "LISTEN"}
    assert port not in listening
    worker_pids = [int(match) for match in re.findall(r"\(pid (\d+)\)", output)]
    assert worker_pids
    assert not [pid for pid in worker_pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
