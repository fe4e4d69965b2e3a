"""The state file that `lew local up` writes, so that other `lew` commands find the running local stack."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from lew.errors import LewError

STATE_FILE = Path(".lew") / "local.json"


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
    """The running stack's state; None when there is no file or its process has gone (a stale file)."""
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
