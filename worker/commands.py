"""Run a processor's command: no shell, its own session, a time limit, and the whole tree killed at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.errors import JobAborted, ProcessorTimeout

LOG_TAIL_BYTES = 4096
# How long a process group gets between SIGTERM and SIGKILL.
TERM_GRACE_SECONDS = 2.0
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class CommandResult:
    """How a command ended, with the tail of its combined output."""

    returncode: int
    log_tail: str
    duration: float


def processor_environment(job_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The minimal environment of a processor: no AWS credentials or worker settings leak into it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(job_dir),
        "TMPDIR": str(job_dir),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    env.update(extra or {})
    return env


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
    cancel: threading.Event,
) -> CommandResult:
    """Run argv to completion; raise ProcessorTimeout after `timeout` s, JobAborted when `cancel` is set."""
    started = time.monotonic()
    deadline = started + timeout
    with log_path.open("wb") as log:
        # A new session makes the command the leader of its own process group, so that killing the
        # group also kills whatever it started (renderers fork helpers; shells run pipelines).
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            try:
                returncode = process.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel.is_set():
                kill_tree(process)
                raise JobAborted(f"{argv[0]} was stopped because the worker is shutting down")
            if time.monotonic() >= deadline:
                kill_tree(process)
                raise ProcessorTimeout(
                    f"{argv[0]} ran longer than JOB_TIMEOUT ({timeout:g} s) and was killed",
                    processor_log=read_tail(log_path),
                )
    finally:
        # Even after a clean exit, helpers left in the group (daemonised children) must not outlive the job.
        _signal_group(process.pid, signal.SIGKILL)
    return CommandResult(returncode, read_tail(log_path), time.monotonic() - started)


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if the leader has not gone after a short grace."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=TERM_GRACE_SECONDS)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(pgid, signum)


def read_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The last `limit` bytes of a file, decoded leniently ('' when it does not exist)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
