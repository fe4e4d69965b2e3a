"""Every path a command is given is checked first, and a bad one is one line in words (no `[Errno N]`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lew import cli


@pytest.fixture(autouse=True)
def no_stack_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that lets a bad path through must fail here, not start a stack that runs until killed."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stack was started although its input is bad")

    monkeypatch.setattr("lew.local.stack.LocalStack.start", refuse)


@pytest.fixture(autouse=True)
def in_a_folder_with_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# a file where a folder is expected\n")
    (tmp_path / "empty.zip").write_bytes(b"")
    (tmp_path / "folder.zip").mkdir()
    (tmp_path / "secret.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (tmp_path / "secret.zip").chmod(0)
    (tmp_path / "locked").mkdir(mode=0o500)
    if os.geteuid() == 0:  # root reads and writes everything: make the check see what a user would
        real_access = os.access

        def access(path: object, mode: int) -> bool:
            return not str(path).endswith(("secret.zip", "locked")) and real_access(path, mode)  # type: ignore[arg-type]

        monkeypatch.setattr("lew.files.os.access", access)
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["submit", "missing.zip"], "missing.zip: no such file"),
        (["submit", "empty.zip"], "empty.zip: is empty (0 bytes), so there is nothing to process"),
        (["submit", "folder.zip"], "folder.zip: is a folder, not a file"),
        (["submit", "README.md/scene.zip"], "README.md/scene.zip: README.md is a file, not a folder"),
        (["submit", "secret.zip"], "secret.zip: permission denied (cannot read it)"),
        (["demo", "--processor", "inventory", "empty.zip"],
         "empty.zip: is empty (0 bytes), so there is nothing to process"),
        (["demo", "--processor", "inventory", "secret.zip"], "secret.zip: permission denied (cannot read it)"),
        (["demo", "--processor", "inventory", "--out", "README.md"], "--out README.md: exists and is not a folder"),
        (["demo", "--processor", "inventory", "--out", "README.md/x"],
         "--out README.md/x: README.md is a file, not a folder"),
        (["demo", "--processor", "inventory", "--out", "locked/results"],
         "--out locked/results: permission denied (cannot write in locked)"),
        (["results", "--download", "README.md"], "--download README.md: exists and is not a folder"),
        (["results", "--download", "README.md/out"], "--download README.md/out: README.md is a file, not a folder"),
        (["results", "--download", "locked"], "--download locked: permission denied (cannot write in locked)"),
        (["local", "up", "--template", "folder.zip"], "template folder.zip: is a folder, not a file"),
        (["local", "up", "--template", "secret.zip"], "template secret.zip: permission denied (cannot read it)"),
        (["demo", "--template", "missing.yaml"],
         "template not found: missing.yaml (run lew from the repository, or pass --template)"),
    ],
)  # fmt: skip
def test_a_bad_path_is_one_line_in_words(capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> None:
    # WHEN a command gets a path it cannot use
    code = cli.main(argv)

    # THEN it says which and why in one line, exit 1, before anything starts
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == f"lew: error: {line}\n"
    assert captured.out == ""


def test_an_os_error_met_later_is_put_in_words() -> None:
    error = NotADirectoryError(20, "Not a directory", "README.md/scene")

    assert cli.describe_failure(error) == "README.md/scene: not a directory"
