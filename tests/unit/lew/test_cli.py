"""The `lew` command's parser and its one-line errors, without any AWS endpoint."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from lew import cli
from lew.errors import LewError


@pytest.fixture(autouse=True)
def in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No `.lew/local.json` around: commands must not find a stack by accident."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("lew: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_build_parser_registers_every_subcommand() -> None:
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    assert {"demo", "local", "submit", "status", "results", "redrive"} <= set(subcommands.choices)


def test_a_registered_subcommand_runs_through_main(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN one more registrar, the way a new subcommand (e.g. cost) is added
    def register_hello(subcommands: cli.Subcommands) -> None:
        subcommands.add_parser("hello").set_defaults(handler=lambda args: 7)

    monkeypatch.setattr(cli, "REGISTRARS", (*cli.REGISTRARS, register_hello))

    assert cli.main(["hello"]) == 7


def test_submit_of_a_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "submit", "missing.zip")

    assert_one_line_error(code, err, "missing.zip", "no such file")


def test_commands_without_a_stack_say_how_to_name_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("a.txt", "a")
    for argv in (["status"], ["results"], ["redrive"], ["submit", str(archive)]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "--stack NAME", "lew local up")


@pytest.mark.parametrize("command", ["status", "results", "redrive"])
def test_a_malformed_endpoint_is_one_line(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, _, err = run(capsys, command, "--endpoint", "127.0.0.1:5000")

    assert_one_line_error(code, err, "not a URL")


@pytest.mark.parametrize("command", ["status", "results", "redrive"])
def test_an_unreachable_endpoint_is_one_line(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with socket.socket() as probe:  # a port that nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    code, _, err = run(capsys, command, "--endpoint", f"http://127.0.0.1:{port}")

    assert_one_line_error(code, err, "cannot reach")


def test_demo_with_an_unknown_processor_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--processor", "povary")

    assert_one_line_error(code, err, "unknown processor 'povary'")


def test_demo_with_a_missing_archive_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--processor", "inventory", "nothere.zip")

    assert_one_line_error(code, err, "nothere.zip", "no such file")


def test_demo_with_an_unknown_parameter_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--param", "MaxWrokers=2")

    assert_one_line_error(code, err, "MaxWrokers")


def test_local_up_with_a_missing_template_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "local", "up", "--template", "nowhere.yaml")

    assert_one_line_error(code, err, "template not found")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["status", "--limit", "x"], "lew status: error: --limit: 'x' is not a whole number (see `lew status --help`)"),
        (
            ["status", "--endpoint", "http://x", "--stack", "y"],
            "lew status: error: --stack and --endpoint name two stacks: pass one of them (see `lew status --help`)",
        ),
        (["local"], "lew local: error: the following arguments are required: ACTION (see `lew local --help`)"),
        (
            ["cost", "--archives-per-day", "1"],
            "lew cost: error: the following arguments are required: --seconds-per-archive (see `lew cost --help`)",
        ),
        (
            ["demo", "--timeout", "0"],
            "lew demo: error: --timeout: '0' must be greater than zero (see `lew demo --help`)",
        ),
        (["status", "--bogus"], "lew: error: unrecognized arguments: --bogus (see `lew --help`)"),
        (
            ["demo", "--timeout", "nan"],
            "lew demo: error: --timeout: 'nan' is not a finite number (see `lew demo --help`)",
        ),
        (
            ["local", "up", "--reconcile-seconds", "inf"],
            "lew local up: error: --reconcile-seconds: 'inf' is not a finite number (see `lew local up --help`)",
        ),
        (
            ["local", "up", "--port", "70000"],
            "lew local up: error: --port: 70000 is not a port number (0-65535) (see `lew local up --help`)",
        ),
        (
            ["local", "up", "--port", "http"],
            "lew local up: error: --port: 'http' is not a port number (see `lew local up --help`)",
        ),
    ],
)
def test_a_malformed_command_line_is_one_line_naming_the_option_and_the_help(
    capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    # WHEN a command line is malformed
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)

    # THEN one line names the problem and where the help is, exit 2 (not the whole usage)
    assert exited.value.code == 2
    assert capsys.readouterr().err == line + "\n"


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])

    assert exited.value.code == 0
    assert re.fullmatch(r"lew \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


@pytest.mark.parametrize("command", ["status", "results", "redrive", "submit"])
def test_help_groups_the_options_that_pick_a_stack(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])

    # THEN --endpoint, --stack and --region are listed together, under the group's title
    out = capsys.readouterr().out
    group = out[out.index("which stack") :]
    assert all(f"  {option} " in group for option in ("--endpoint", "--stack", "--region"))
    assert "--endpoint" not in out[: out.index("which stack")].split("options:", 1)[1]


@pytest.mark.parametrize("argv", [["cost", "--archives-per-day", "1", "--seconds-per-archive", "1"], ["--help"]])
def test_output_into_a_closed_pipe_ends_quietly(argv: list[str]) -> None:
    # GIVEN a stdout whose reader has gone (`lew ... | head -1` once head exits)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        # WHEN lew writes to it
        finished = subprocess.run(
            [sys.executable, "-m", "lew.cli", *argv], stdout=write_end, stderr=subprocess.PIPE, text=True, check=False
        )
    finally:
        os.close(write_end)

    # THEN nothing reaches stderr (no BrokenPipeError, no traceback), and the exit code is 141 or 0 (help)
    assert finished.stderr == ""
    assert finished.returncode in (cli.EXIT_BROKEN_PIPE, 0)
    if argv[0] == "cost":
        assert finished.returncode == cli.EXIT_BROKEN_PIPE


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--timeout", "soon"],
        ["demo", "--timeout", "soon"],
        ["status", "--limit", "-1"],
        ["nonsense"],
    ],
)
def test_invalid_arguments_exit_2_with_a_usage_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error:" in err


@pytest.mark.parametrize(
    ("error", "fragment"),
    [
        (LewError("bad thing"), "bad thing"),
        (NoCredentialsError(), "no AWS credentials"),
        (NoRegionError(), "--region"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "cannot reach http://127.0.0.1:1"),
        (ClientError({"Error": {"Code": "AccessDenied", "Message": "nope"}}, "GetObject"), "AccessDenied: nope"),
        (FileNotFoundError(2, "No such file or directory", "x"), "x: no such file or directory"),
    ],
)
def test_describe_failure_gives_one_line_for_expected_failures(error: Exception, fragment: str) -> None:
    message = cli.describe_failure(error)

    assert message is not None
    assert fragment in message
    assert "\n" not in message


def test_unexpected_errors_are_one_line_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(args: argparse.Namespace) -> int:
        raise RuntimeError("surprise")

    def register_boom(subcommands: cli.Subcommands) -> None:
        subcommands.add_parser("boom").set_defaults(handler=boom)

    monkeypatch.setattr(cli, "REGISTRARS", (*cli.REGISTRARS, register_boom))

    code, _, err = run(capsys, "boom")
    assert_one_line_error(code, err, "unexpected RuntimeError: surprise", "--debug")
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "boom"])


@pytest.mark.parametrize(
    ("argv0", "shown"),
    [
        ("/repo/.venv/bin/lew", ".venv/bin/lew"),  # `make demo`, or a full path typed inside the repository
        (".venv/bin/lew", ".venv/bin/lew"),
        ("lew", "lew"),  # found on PATH: works as typed
        ("/elsewhere/bin/lew", "/elsewhere/bin/lew"),
        ("/repo/lew/cli.py", f"{sys.executable} -m lew.cli"),  # python -m lew.cli
    ],
)
def test_lew_command_is_how_lew_was_invoked(argv0: str, shown: str) -> None:
    assert cli.lew_command(argv0, cwd=Path("/repo")) == shown
