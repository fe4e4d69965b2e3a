"""The `lew` command against the local stack: `lew demo` exit codes, and `lew local up` driven by the others."""

from __future__ import annotations

import contextlib
import json
import os
import pty
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
from tests.conftest import free_port
from tests.e2e.conftest import LOCAL_UP_FAST, lew, make_zip, start_local_up, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

INVENTORY = ["--processor", "inventory"]  # not povray, which `lew local up` takes when it is installed
FAST = [*INVENTORY, *LOCAL_UP_FAST]


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


def test_local_up_serves_submit_status_results_rerun_and_redrive_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    up = start_local_up(tmp_path, *INVENTORY, "--port", str(port))
    try:
        state_file = state_path(tmp_path)
        wait_for(state_file.exists, timeout=60, what="lew local up to write its state file")
        state = json.loads(state_file.read_text())
        assert state["endpoint"] == f"http://127.0.0.1:{port}"
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
        assert "moved 0 messages" in redriven.stdout
        with zipfile.ZipFile(archive) as bundle:
            assert bundle.namelist() == ["scene.pov"]

        # AND the stack is found from any folder below, as git finds its repository
        deeper = tmp_path / "sub" / "deeper"
        deeper.mkdir(parents=True)
        from_below = lew(deeper, "status")
        assert from_below.returncode == 0, from_below.stderr
        assert from_below.stdout.startswith(f"local stack at http://127.0.0.1:{port}\n")

        # AND `lew status | head -1` ends quietly once its reader has gone
        read_end, write_end = os.pipe()
        os.close(read_end)
        piped = subprocess.run(
            [sys.executable, "-m", "lew.cli", "status"], cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        os.close(write_end)
        assert (piped.returncode, piped.stderr) == (cli.EXIT_BROKEN_PIPE, "")

        # AND a second `lew local up` in the same folder is refused at once, leaving the first one alone
        second = subprocess.run(
            [sys.executable, "-m", "lew.cli", "local", "up", *FAST], cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert second.returncode == 1
        assert second.stderr == (
            f"lew: error: a local stack already runs in this folder (pid {state['pid']}, http://127.0.0.1:{port}): "
            "use it, stop it first (Ctrl-C in its terminal), or start another in a different folder\n"
        )
        assert json.loads(state_file.read_text()) == state
        assert lew(tmp_path, "status").returncode == 0
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
    assert f"  {Path(sys.executable)} -m lew.cli submit scene.zip" in output  # the hint works as printed
    assert not state_path(tmp_path).exists()
    listening = {conn.laddr.port for conn in psutil.net_connections(kind="tcp") if conn.status == "LISTEN"}
    assert port not in listening
    worker_pids = [int(match) for match in re.findall(r"\(pid (\d+)\)", output)]
    assert worker_pids
    assert not [pid for pid in worker_pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_local_up_keeps_its_port_across_restarts_and_refuses_a_port_in_use(tmp_path: Path) -> None:
    # GIVEN a stack that ran once in this folder on some port
    first = start_local_up(tmp_path, *INVENTORY, "--port", "0")
    try:
        wait_for(state_path(tmp_path).exists, timeout=60, what="the first stack's state file")
        endpoint = json.loads(state_path(tmp_path).read_text())["endpoint"]
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)

    # WHEN it starts again without --port
    again = start_local_up(tmp_path, *INVENTORY)
    try:
        wait_for(state_path(tmp_path).exists, timeout=60, what="the second stack's state file")

        # THEN it has the same endpoint, so commands and scripts written against it keep working
        assert json.loads(state_path(tmp_path).read_text())["endpoint"] == endpoint

        # AND a --port that another program holds is refused in one line (another folder: no lock in the way)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        taken = endpoint.rsplit(":", 1)[1]
        busy = subprocess.run(
            [sys.executable, "-m", "lew.cli", "local", "up", *FAST, "--port", taken], cwd=elsewhere,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert busy.returncode == 1
        assert busy.stderr == (
            f"lew: error: port {taken} is in use by another program: choose another --port, or 0 for any free port\n"
        )
    finally:
        again.send_signal(signal.SIGTERM)
        output, _ = again.communicate(timeout=60)
    assert again.returncode == 0, output


@pytest.mark.parametrize(
    ("args", "start", "names"),
    [
        (["--param", "MaxWorkers=2.5"], "lew: error: the launcher would refuse its configuration: ", "MAX_WORKERS"),
        (["--param", "IdlePolls=1.5"], "lew: error: the workers would refuse their configuration: ", "IDLE_POLLS"),
        (["--processor", "command"], "lew: error: the workers would refuse their configuration: ", "PROCESS_COMMAND"),
    ],
)
def test_demo_refuses_before_starting_what_the_launcher_or_a_worker_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], start: str, names: str
) -> None:
    # GIVEN a value template.yaml allows (a Number) that the launcher or the worker refuses (not a whole number),
    # or the command processor without a command
    out = tmp_path / "results"

    # WHEN the demo runs with it
    code = cli.main(["demo", *FAST, *args, "--out", str(out), "--timeout", "600"])

    # THEN it stops before starting anything with one line naming the problem, exit 1; no results folder is touched
    err = capsys.readouterr().err
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(start), err
    assert names in lines[0]
    assert lines[0].endswith("; nothing was started")
    assert not out.exists()


def test_demo_on_a_terminal_shows_only_lews_own_output(tmp_path: Path) -> None:
    # GIVEN a terminal (the live progress display is drawn only on one)
    main_fd, terminal_fd = pty.openpty()
    demo = subprocess.Popen(
        [sys.executable, "-m", "lew.cli", "demo", *FAST, "--timeout", "120"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=terminal_fd,
        stderr=terminal_fd,
    )
    os.close(terminal_fd)
    shown = bytearray()
    with contextlib.suppress(OSError):  # EIO once the demo has exited and closed the terminal
        while chunk := os.read(main_fd, 65536):
            shown += chunk
    os.close(main_fd)

    # THEN the launcher's EMF metrics and Powertools' warnings stay in the log file, off the screen
    assert demo.wait(timeout=60) == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert "all 3 archives ended as expected" in text
    for noise in ('"_aws"', "No application metrics", "Warning", "[launcher]", "[worker-"):
        assert noise not in text
    log = (tmp_path / "results" / "lew-demo.log").read_text()
    assert '"_aws"' in log


def test_a_second_demo_leaves_only_its_own_results_and_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the results of a demo of the bundled samples
    out = tmp_path / "results"
    assert cli.main(["demo", *FAST, "--out", str(out), "--timeout", "120"]) == 0
    assert (out / "marbles.zip" / "manifest.json").is_file()

    # WHEN another demo runs into the same folder, on another archive
    good = make_zip(tmp_path / "good.zip", {"good.txt": "fine"})
    assert cli.main(["demo", *FAST, "--out", str(out), "--timeout", "120", str(good)]) == 0
    capsys.readouterr()

    # THEN the folder describes that run only, and its log holds that run only
    assert sorted(path.name for path in out.iterdir()) == [".lew-demo.json", "good.zip", "lew-demo.log"]
    log = (out / "lew-demo.log").read_text()
    assert log.count("lew demo run at ") == 1
    assert "good.zip" in log
    assert "marbles" not in log


def test_local_up_stops_cleanly_when_the_reader_of_its_output_goes(tmp_path: Path) -> None:
    # GIVEN `lew local up | head`-like: a reader that reads the banner, then goes away
    up = subprocess.Popen(
        [sys.executable, "-m", "lew.cli", "local", "up", *FAST],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert up.stdout is not None
    try:
        assert up.stdout.readline().startswith("lew local stack running at ")
        state = json.loads(state_path(tmp_path).read_text())
        up.stdout.close()

        # WHEN the stack has something to log (an upload for the launcher, unless a log line has come first)
        archive = make_zip(tmp_path / "scene.zip", {"scene.pov": "sphere {}"})
        lew(tmp_path, "submit", str(archive))

        # THEN it stops by itself, quietly, as a command whose reader has gone: exit 141, nothing on stderr
        assert up.wait(timeout=60) == cli.EXIT_BROKEN_PIPE
    finally:
        if up.poll() is None:
            up.kill()
    assert up.stderr is not None
    assert up.stderr.read() == ""
    assert not state_path(tmp_path).exists()
    assert not psutil.pid_exists(state["pid"]) or psutil.Process(state["pid"]).status() == "zombie"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--param", "IdlePolls=1.5"], "IDLE_POLLS must be a whole number, got '1.5' (template parameter IdlePolls)"),
        (["--processor", "command"], "PROCESS_COMMAND is required by PROCESSOR=command and is not set"),
        (["--processor", "command", "--param", "ProcessCommand=true", "--param",
          "ProcessParameters=threshold:integer:0..100"], "the kind must be one of int, float, bool, choice, text"),
    ],
)  # fmt: skip
def test_local_up_refuses_before_starting_what_a_worker_would_refuse(
    tmp_path: Path, args: list[str], named: str
) -> None:
    # GIVEN a configuration the workers would refuse on their first job
    # WHEN the stack is started with it
    up = subprocess.run(
        [sys.executable, "-m", "lew.cli", "local", "up", *FAST, *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    # THEN it refuses at once, in one line naming the variable, exit 1, and starts nothing (no state for submit)
    assert up.returncode == 1, up.stdout
    assert up.stderr.startswith("lew: error: the workers would refuse their configuration: "), up.stderr
    assert named in up.stderr
    assert up.stderr.endswith("; nothing was started\n")
    assert len(up.stderr.splitlines()) == 1
    assert up.stdout == ""
    assert not state_path(tmp_path).exists()


WRITES_ITS_LABEL = "import os, sys; open(sys.argv[1] + '/label.txt', 'w').write(os.environ['LEW_PARAM_LABEL'])"


def test_demo_sends_its_job_params_with_every_upload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a command processor that declares a `label` job parameter and writes it into its output
    command = f'{sys.executable} -c "{WRITES_ITS_LABEL}" {{output_dir}}'
    archive = make_zip(tmp_path / "scene.zip", {"scene.txt": "anything"})
    out = tmp_path / "results"

    # WHEN the demo runs on an archive with --job-param label=hello
    code = cli.main([
        "demo", *FAST, "--processor", "command", "--param", f"ProcessCommand={command}",
        "--param", "ProcessParameters=label:text:64", "--job-param", "label=hello",
        "--out", str(out), "--timeout", "300", str(archive),
    ])  # fmt: skip

    # THEN the job got the parameter: the command read it, and the manifest records it
    assert code == 0, capsys.readouterr()
    assert (out / "scene.zip" / "label.txt").read_text() == "hello"
    assert json.loads((out / "scene.zip" / "manifest.json").read_text())["parameters"] == {"label": "hello"}
