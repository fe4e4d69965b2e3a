"""The `lew` command's parser and its one-line errors, without any AWS endpoint."""

from __future__ import annotations

import argparse
import socket
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
    "argv",
    [
        ["demo", "--timeout", "0"],
        ["demo", "--timeout", "soon"],
        ["status", "--limit", "-1"],
        ["status", "--endpoint", "http://x", "--stack", "y"],
        ["local"],
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
        (FileNotFoundError(2, "No such file or directory", "x"), "No such file"),
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
