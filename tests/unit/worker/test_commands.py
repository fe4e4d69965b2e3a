"""run_command: no shell, its own session, a time limit that kills the whole tree, and a cancel switch."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from worker.commands import MAX_CAUSE_CHARS, last_lines, processor_environment, read_tail, run_command
from worker.errors import JobAborted, ProcessorTimeout

SPAWN_GRANDCHILD = (
    "import os, pathlib, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "pathlib.Path(sys.argv[1]).write_text(f'{os.getpid()} {child.pid}')\n"
    "print('working', flush=True)\n"
    "time.sleep(60)\n"
)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until_gone(pids: list[int], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(gone(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_run_command_returns_the_exit_code_and_the_output_tail(tmp_path: Path) -> None:
    result = run_command(
        [
            sys.executable,
            "-c",
            "import sys; print('x' * 5000, flush=True); print('the end', file=sys.stderr); sys.exit(4)",
        ],
        cwd=tmp_path,
        env=processor_environment(tmp_path),
        log_path=tmp_path / "log",
        timeout=30,
        cancel=threading.Event(),
    )

    assert result.returncode == 4
    assert result.log_tail.endswith("the end\n")
    assert len(result.log_tail) == 4096


def test_run_command_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    # GIVEN a command that starts a grandchild and both sleep
    pid_file = tmp_path / "pids"

    # WHEN it overruns its time limit
    with pytest.raises(ProcessorTimeout, match="JOB_TIMEOUT") as raised:
        run_command(
            [sys.executable, "-c", SPAWN_GRANDCHILD, str(pid_file)],
            cwd=tmp_path,
            env=processor_environment(tmp_path),
            log_path=tmp_path / "log",
            timeout=1.5,
            cancel=threading.Event(),
        )

    # THEN the child and the grandchild are gone, and the output so far is kept
    pids = [int(pid) for pid in pid_file.read_text().split()]
    assert wait_until_gone(pids)
    assert "working" in (raised.value.processor_log or "")


def test_run_command_cancel_kills_the_tree_and_aborts(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    cancel = threading.Event()
    threading.Timer(1.5, cancel.set).start()

    with pytest.raises(JobAborted):
        run_command(
            [sys.executable, "-c", SPAWN_GRANDCHILD, str(pid_file)],
            cwd=tmp_path,
            env=processor_environment(tmp_path),
            log_path=tmp_path / "log",
            timeout=60,
            cancel=cancel,
        )

    assert wait_until_gone([int(pid) for pid in pid_file.read_text().split()])


def test_run_command_gives_a_minimal_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    code = "import json, os; print(json.dumps(dict(os.environ)))"

    result = run_command(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=processor_environment(tmp_path, {"LEW_OUTPUT_DIR": "/out"}),
        log_path=tmp_path / "log",
        timeout=30,
        cancel=threading.Event(),
    )

    import json

    seen = json.loads(result.log_tail)
    assert "AWS_SECRET_ACCESS_KEY" not in seen
    assert seen["HOME"] == str(tmp_path)
    assert seen["TMPDIR"] == str(tmp_path)
    assert seen["LEW_OUTPUT_DIR"] == "/out"
    assert {"PATH", "LANG"} <= set(seen)


def test_read_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_tail(tmp_path / "nope") == ""


def test_run_command_keeps_stderr_apart_for_error_messages(tmp_path: Path) -> None:
    # GIVEN a command that talks on both streams
    code = "import sys; print('progress'); print('error: disk quota', file=sys.stderr); print('done')"

    # WHEN it runs
    result = run_command(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=processor_environment(tmp_path),
        log_path=tmp_path / "log",
        timeout=30,
        cancel=threading.Event(),
    )

    # THEN the log has both, and the stderr tail only stderr, which `cause` puts on one line
    assert sorted(result.log_tail.split("\n")) == ["", "done", "error: disk quota", "progress"]
    assert result.stderr_tail == "error: disk quota\n"
    assert result.cause() == "error: disk quota"


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("", ""),
        ("\n\n", ""),
        ("one\n\ntwo\nthree\n\n", "two / three"),
        (
            "Traceback (most recent call last):\n  File 'x', line 1\nValueError: boom\n",
            "File 'x', line 1 / ValueError: boom",
        ),
        ("10%\r50%\r100%\nfailed\n", "100% / failed"),  # progress redrawn with \r counts as its last state
        ("\x1b[31mred error\x1b[0m\n", "[31mred error [0m"),  # control characters become spaces, one line
    ],
)
def test_last_lines_puts_the_end_of_stderr_on_one_line(stderr: str, expected: str) -> None:
    assert last_lines(stderr) == expected


def test_last_lines_cuts_the_start_so_that_the_last_line_survives() -> None:
    text = "x" * 1000 + "\nthe real error\n"

    line = last_lines(text)

    assert len(line) == MAX_CAUSE_CHARS
    assert line.startswith("…")
    assert line.endswith(" / the real error")
