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
STDERR_TAIL_BYTES = 4096  # of stderr alone, kept in memory for the error message
MAX_CAUSE_CHARS = 300  # the stderr lines an error message quotes
READ_BYTES = 65536
# How long a process group gets between SIGTERM and SIGKILL.
TERM_GRACE_SECONDS = 2.0
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class CommandResult:
    """How a command ended, with the tail of its combined output."""

    returncode: int
    log_tail: str
    duration: float
    stderr_tail: str = ""  # the end of stderr alone (the log has stdout and stderr together)

    def cause(self) -> str:
        """The last lines the command wrote to stderr, on one bounded line ('' when it wrote none)."""
        return last_lines(self.stderr_tail)


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
    log_path.write_bytes(b"")
    # Append mode for both writers: the command's stdout and the tee's copy of its stderr land in order,
    # neither overwriting the other.
    with log_path.open("ab") as log:
        # A new session makes the command the leader of its own process group, so that killing the
        # group also kills whatever it started (renderers fork helpers; shells run pipelines).
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    tee = _StderrTee(process, log_path)
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
                tee.finish()
                raise ProcessorTimeout(
                    f"{argv[0]} ran longer than JOB_TIMEOUT ({timeout:g} s) and was killed",
                    processor_log=read_tail(log_path),
                )
    finally:
        # Even after a clean exit, helpers left in the group (daemonised children) must not outlive the job.
        _signal_group(process.pid, signal.SIGKILL)
        tee.finish()
    return CommandResult(returncode, read_tail(log_path), time.monotonic() - started, tee.tail())


class _StderrTee(threading.Thread):
    """Copies a command's stderr into its log as it comes, keeping the last STDERR_TAIL_BYTES of it apart."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        super().__init__(name="stderr-tee", daemon=True)
        if process.stderr is None:  # pragma: no cover - Popen was given stderr=PIPE
            raise ValueError("the command's stderr is not a pipe")
        self._pipe = process.stderr
        self._log_path = log_path
        self._tail = bytearray()
        self._lock = threading.Lock()
        self.start()

    def run(self) -> None:
        with self._log_path.open("ab") as log:
            while chunk := os.read(self._pipe.fileno(), READ_BYTES):
                log.write(chunk)
                log.flush()
                with self._lock:
                    self._tail += chunk
                    del self._tail[:-STDERR_TAIL_BYTES]

    def finish(self) -> None:
        """Wait for the end of stderr; a helper that left the process group may hold it open, so not for long."""
        self.join(timeout=TERM_GRACE_SECONDS)
        if not self.is_alive():
            self._pipe.close()

    def tail(self) -> str:
        with self._lock:
            return bytes(self._tail).decode("utf-8", errors="replace")


def last_lines(text: str, count: int = 2, limit: int = MAX_CAUSE_CHARS) -> str:
    """The last `count` non-empty lines of `text` on one line, joined with ' / ', at most `limit` characters.

    Progress redrawn with carriage returns counts as its last state; other control characters become spaces.
    When too long, the start is cut, so that the last line (where programs put their error) survives.
    """
    lines = []
    for raw in text.split("\n"):  # not splitlines(), which would split progress at each carriage return
        line = raw.rstrip("\r").rsplit("\r", 1)[-1]
        line = "".join(" " if ord(char) < 32 or ord(char) == 127 else char for char in line).strip()
        if line:
            lines.append(line)
    joined = " / ".join(lines[-count:])
    return joined if len(joined) <= limit else "…" + joined[-(limit - 1) :]


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
