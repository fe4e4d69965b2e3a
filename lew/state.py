"""The state file that `lew local up` writes, so that other `lew` commands find the running local stack.

`lew local up` holds an exclusive `flock` on `.lew/local.lock` for the stack's whole life. The kernel drops it when
the process ends however it ends, so the lock, not the pid (which the system may give to another process), tells
whether the stack that wrote `.lew/local.json` still runs: a second `lew local up` in the same folder is refused
while it does, and a state file left by a crashed stack is recognised as stale.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlparse

from lew.errors import LewError

STATE_FILE = Path(".lew") / "local.json"
LOCK_FILE = Path(".lew") / "local.lock"
PORT_FILE = Path(".lew") / "local.port"  # the last stack's port, tried first by the next `lew local up`
ANSWER_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class LocalState:
    """Where a running local stack is and what it is made of."""

    endpoint: str
    region: str
    bucket: str
    queue_url: str
    dlq_url: str
    cluster: str
    task_family: str
    input_prefix: str
    result_prefix: str
    suffixes: str
    pid: int
    event_bus: str = ""
    events_queue_url: str = ""  # a queue every job event is copied to (`lew events`)
    inbox_url: str = ""  # the local launcher's inbox: `lew schedule fire` sends the schedule's event there
    schedule_key: str = ""  # ScheduleObjectKey: the object each scheduled run processes ("" for none)
    processor: str = ""  # the workers' processor and the command processor's declarations: lew checks job
    process_parameters: str = ""  # parameters against them before an upload ("" when not known)


def state_path(directory: Path | None = None) -> Path:
    """`.lew/local.json` in the given directory (the current one by default)."""
    return (directory or Path.cwd()) / STATE_FILE


def write_state(state: LocalState, path: Path) -> None:
    """Write atomically, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def read_state(path: Path) -> LocalState | None:
    """The running stack's state; None when there is no file or its stack has stopped (a stale file)."""
    if not is_locked(path.parent.parent):
        return None  # no `lew local up` holds this folder: whatever the file says is stale
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        state = LocalState(**raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        raise LewError(f"{path} is not a lew state file ({error}); delete it and run `lew local up` again") from None
    if not _process_alive(state.pid):
        return None
    return state


def remove_state(path: Path, pid: int) -> None:
    """Remove the file if it is still ours (another `lew local up` may have replaced it)."""
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(current, dict) and current.get("pid") == pid:
        path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# -- the lock -----------------------------------------------------------------------------------------------------


class StackLock:
    """`with StackLock(folder):` holds `.lew/local.lock` in `folder`, or refuses in one line if another stack does."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path.cwd()
        self._file: IO[str] | None = None

    def __enter__(self) -> StackLock:
        path = self.directory / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise LewError(self._refusal()) from None
        self._file = handle
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None

    def _refusal(self) -> str:
        where = _shown(self.directory)
        try:
            running = json.loads((self.directory / STATE_FILE).read_text(encoding="utf-8"))
            about = f" (pid {running['pid']}, {running['endpoint']})"
        except (OSError, ValueError, TypeError, KeyError):
            about = " (still starting)"
        return (
            f"a local stack already runs in {where}{about}: use it, stop it first (Ctrl-C in its terminal), "
            "or start another in a different folder"
        )


def is_locked(directory: Path) -> bool:
    """Whether a `lew local up` holds the lock of this folder right now."""
    try:
        handle = (directory / LOCK_FILE).open("r", encoding="utf-8")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


# -- discovery ----------------------------------------------------------------------------------------------------


def find_state(start: Path | None = None) -> LocalState | None:
    """The running stack of this folder or the nearest parent that has one, as git finds its repository.

    Stale state files on the way (their stack has stopped) are passed over. A stack whose lock is held but whose
    endpoint does not answer is an error that says so, rather than a hang or a connection error later.
    """
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / STATE_FILE
        if not path.exists():
            continue
        state = read_state(path)
        if state is None:
            continue
        if not _answers(state.endpoint):
            raise LewError(
                f"the local stack of {_shown(candidate)} (pid {state.pid}) does not answer at {state.endpoint}: "
                "it may still be starting, or be stuck (stop it with Ctrl-C in its terminal)"
            )
        return state
    return None


def _answers(endpoint: str) -> bool:
    parsed = urlparse(endpoint)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), ANSWER_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _shown(folder: Path) -> str:
    """A folder as the user would type it: relative to the current one when it is inside it."""
    try:
        relative = folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(folder)
    return "this folder" if relative == Path() else f"./{relative}"


# -- the port -----------------------------------------------------------------------------------------------------


def remembered_port(directory: Path | None = None) -> int:
    """The port of this folder's last stack (0: none remembered, or unreadable)."""
    try:
        port = int(((directory or Path.cwd()) / PORT_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def remember_port(port: int, directory: Path | None = None) -> None:
    """Keep this stack's port, so that the next `lew local up` here gets the same endpoint when it is free."""
    path = (directory or Path.cwd()) / PORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{port}\n", encoding="utf-8")
