"""The `.lew/local.json` state file that lets other commands find a running `lew local up`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lew.errors import LewError
from lew.state import (
    LocalState,
    StackLock,
    find_state,
    is_locked,
    read_state,
    remember_port,
    remembered_port,
    remove_state,
    state_path,
    write_state,
)

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


def test_state_round_trips_while_its_stack_holds_the_lock(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    with StackLock(tmp_path):
        write_state(STATE, path)

        assert path == tmp_path / ".lew" / "local.json"
        assert read_state(path) == STATE


def test_state_whose_lock_is_free_is_stale_even_if_its_pid_lives(tmp_path: Path) -> None:
    # GIVEN a state file naming a live pid (ours: as if the system had reused a crashed stack's pid), and no lock
    path = state_path(tmp_path)
    write_state(STATE, path)

    # THEN no stack runs there
    assert read_state(path) is None


def test_state_of_a_dead_process_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a state file left by a process that has exited
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    path = state_path(tmp_path)
    write_state(replace(STATE, pid=int(finished.stdout)), path)

    # THEN it is treated as no running stack, even where the lock says otherwise
    monkeypatch.setattr("lew.state.is_locked", lambda directory: True)
    assert read_state(path) is None


def test_missing_state_is_none(tmp_path: Path) -> None:
    assert read_state(state_path(tmp_path)) is None


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    path.parent.mkdir()
    path.write_text("{not json", encoding="utf-8")

    with StackLock(tmp_path), pytest.raises(LewError, match="not a lew state file"):
        read_state(path)


def test_remove_state_only_removes_our_own_file(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    write_state(STATE, path)

    remove_state(path, pid=STATE.pid + 1)
    assert path.exists()
    remove_state(path, pid=STATE.pid)
    assert not path.exists()


@pytest.fixture
def listening_endpoint() -> Iterator[str]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_second_lock_in_the_same_folder_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with StackLock(tmp_path):
        write_state(STATE, state_path(tmp_path))

        with pytest.raises(LewError) as refused, StackLock(tmp_path):
            pass

    assert str(refused.value) == (
        f"a local stack already runs in this folder (pid {STATE.pid}, http://127.0.0.1:5000): use it, "
        "stop it first (Ctrl-C in its terminal), or start another in a different folder"
    )
    assert not is_locked(tmp_path)  # released on leaving the block


def test_a_crashed_stack_leaves_no_lock(tmp_path: Path) -> None:
    # GIVEN a process that holds the lock, as `lew local up` does
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lew.state import StackLock\n"
         "with StackLock(__import__('pathlib').Path(sys.argv[1])):\n print('locked', flush=True); time.sleep(600)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    assert is_locked(tmp_path)

    # WHEN it dies without any clean-up
    holder.kill()
    holder.wait()

    # THEN the lock is free: its state file would be stale, and a new stack may start
    assert not is_locked(tmp_path)
    with StackLock(tmp_path):
        pass


def test_find_state_walks_up_from_a_subfolder_past_stale_files(tmp_path: Path, listening_endpoint: str) -> None:
    # GIVEN a running stack at the top, and a stale state file in a folder below it
    deeper = tmp_path / "project" / "sub" / "deeper"
    deeper.mkdir(parents=True)
    running = replace(STATE, endpoint=listening_endpoint)
    write_state(replace(STATE, endpoint="http://127.0.0.1:1"), state_path(tmp_path / "project" / "sub"))
    with StackLock(tmp_path / "project"):
        write_state(running, state_path(tmp_path / "project"))

        # THEN a command in the deepest folder finds the running one, as git finds .git
        assert find_state(deeper) == running
    assert find_state(deeper) is None


def test_find_state_says_when_a_running_stack_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with StackLock(tmp_path):
        write_state(replace(STATE, endpoint=f"http://127.0.0.1:{port}"), state_path(tmp_path))

        with pytest.raises(LewError) as silent:
            find_state(tmp_path)

    assert str(silent.value) == (
        f"the local stack of this folder (pid {STATE.pid}) does not answer at http://127.0.0.1:{port}: "
        "it may still be starting, or be stuck (stop it with Ctrl-C in its terminal)"
    )


def test_the_port_is_remembered_per_folder(tmp_path: Path) -> None:
    assert remembered_port(tmp_path) == 0
    remember_port(46171, tmp_path)
    assert remembered_port(tmp_path) == 46171
    (tmp_path / ".lew" / "local.port").write_text("garbage")
    assert remembered_port(tmp_path) == 0
