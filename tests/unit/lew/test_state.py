"""The `.lew/local.json` state file that lets other commands find a running `lew local up`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lew.errors import LewError
from lew.state import LocalState, read_state, remove_state, state_path, write_state

STATE = LocalState(
    endpoint="http://127.0.0.1:5000",
    region="us-east-1",
    bucket="b",
    queue_url="http://127.0.0.1:5000/123/q",
    dlq_url="http://127.0.0.1:5000/123/d",
    cluster="c",
    task_family="c-worker",
    input_prefix="incoming/",
    result_prefix="results/",
    suffixes=".zip",
    pid=os.getpid(),
)


def test_state_round_trips_while_its_process_lives(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    write_state(STATE, path)

    assert path == tmp_path / ".lew" / "local.json"
    assert read_state(path) == STATE


def test_state_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    # GIVEN a state file left by a process that has exited
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    path = state_path(tmp_path)
    write_state(replace(STATE, pid=int(finished.stdout)), path)

    # THEN it is treated as no running stack
    assert read_state(path) is None


def test_missing_state_is_none(tmp_path: Path) -> None:
    assert read_state(state_path(tmp_path)) is None


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    path.parent.mkdir()
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(LewError, match="not a lew state file"):
        read_state(path)


def test_remove_state_only_removes_our_own_file(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    write_state(STATE, path)

    remove_state(path, pid=STATE.pid + 1)
    assert path.exists()
    remove_state(path, pid=STATE.pid)
    assert not path.exists()
