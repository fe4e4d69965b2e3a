"""`--param` of `lew local up` and `lew demo` are template parameters; a job parameter is pointed to where it goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lew import cli
from lew.errors import LewError
from lew.local.processor_parameters import check_job_parameters, declared_job_parameters
from lew.local.settings import build_settings, parse_assignments

NOT_DECLARED = "template.yaml has no parameter of that name"


@pytest.fixture(autouse=True)
def in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROCESS_PARAMETERS", raising=False)


@pytest.fixture(autouse=True)
def povray_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--processor povray` is refused without POV-Ray on PATH; these tests are about parameters, not that."""
    monkeypatch.setattr("lew.local.settings.shutil.which", lambda name: f"/usr/bin/{name}")


@pytest.fixture(autouse=True)
def no_stack_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stack was started although its input is bad")

    monkeypatch.setattr("lew.local.stack.LocalStack.start", refuse)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        # a job parameter the chosen processor declares: said exactly, with the option that takes it
        (["local", "up", "--processor", "povray", "--param", "width=320"],
         f"--param width: {NOT_DECLARED}; width is a job parameter of the povray processor: pass it with the "
         "upload, lew submit --param width=320"),
        (["demo", "--processor", "povray", "--param", "width=320"],
         f"--param width: {NOT_DECLARED}; width is a job parameter of the povray processor: pass it with the "
         "upload, --job-param width=320"),
        # the command processor's, declared by ProcessParameters (given after the name, too)
        (["local", "up", "--processor", "command", "--param", "threshold=3", "--param", "ProcessCommand=true",
          "--param", "ProcessParameters=threshold:int:0..100"],
         f"--param threshold: {NOT_DECLARED}; threshold is a job parameter of the command processor: pass it with "
         "the upload, lew submit --param threshold=3"),
        # a name no processor here declares (a typo of a template parameter looks the same): where job ones go
        (["local", "up", "--processor", "inventory", "--param", "width=320"],
         f"--param width: {NOT_DECLARED}; job parameters for the processor go with the upload: lew submit --param "
         "NAME=VALUE"),
        (["demo", "--processor", "inventory", "--param", "MaxWrokers=2"],
         f"--param MaxWrokers: {NOT_DECLARED}; job parameters for the processor go with the upload: --job-param "
         "NAME=VALUE"),
    ],
)  # fmt: skip
def test_a_param_the_template_lacks_says_where_job_parameters_go(
    capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    # WHEN lew local up or lew demo gets a --param that is not a template parameter
    code = cli.main(argv)

    # THEN one line says so and where a job parameter goes, before anything starts
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == f"lew: error: {line}\n"
    assert captured.out == ""


def test_build_settings_gives_the_same_hint_for_a_parameter_the_template_lacks() -> None:
    # WHEN the settings are built from Python with a job parameter among the template parameters
    with pytest.raises(LewError) as raised:
        build_settings(processor="povray", parameters={"quality": "9"}, environ={})

    # THEN the error says what it is
    assert str(raised.value).endswith("quality is a job parameter of the povray processor: pass it with the "
                                      "upload, lew submit --param quality=9")  # fmt: skip


def test_parse_assignments_reads_process_parameters_from_the_template_default() -> None:
    # GIVEN a template whose ProcessParameters declares `mode`
    declared = {"ProcessParameters": {"Type": "String", "Default": "mode:choice:fast|slow"}}

    # WHEN `--param mode=fast` is given for the command processor
    with pytest.raises(LewError) as raised:
        parse_assignments(["mode=fast"], declared, processor="command")

    # THEN it is named as the command processor's job parameter
    assert "mode is a job parameter of the command processor" in str(raised.value)


@pytest.mark.parametrize(
    ("processor", "process_parameters", "names"),
    [
        ("povray", "", ["width", "height", "quality", "antialias"]),
        ("command", "threshold:int:0..100, mode:choice:fast|slow", ["threshold", "mode"]),
        ("command", "threshold:integer", []),  # malformed: the configuration check names it
        ("inventory", "", []),
    ],
)
def test_declared_job_parameters_are_the_workers_own(processor: str, process_parameters: str, names: list[str]) -> None:
    declared = declared_job_parameters(processor, process_parameters)

    assert declared is not None
    assert [parameter.name for parameter in declared] == names


def test_declared_job_parameters_of_a_function_are_for_the_worker_to_say() -> None:
    assert declared_job_parameters("my_pkg.render:run", "") is None


@pytest.mark.parametrize(
    ("processor", "parameters", "message"),
    [
        ("povray", {"width": "wide"}, "--job-param: parameter width='wide' is not an integer"),
        ("povray", {"colour": "red"}, "--job-param: parameter colour='red' is unknown to povray: it accepts width"),
        ("inventory", {"width": "320"}, "unknown to inventory: it accepts no parameters"),
    ],
)
def test_check_job_parameters_refuses_what_the_worker_would(
    processor: str, parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(LewError, match=message):
        check_job_parameters(processor, "", parameters)


def test_check_job_parameters_accepts_valid_ones_and_leaves_a_functions_to_the_worker() -> None:
    check_job_parameters("povray", "", {"width": "320", "quality": "9"})
    check_job_parameters("command", "threshold:int:0..100", {"threshold": "42"})
    check_job_parameters("my_pkg.render:run", "", {"anything": "goes"})


def test_demo_refuses_a_bad_job_param_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the demo gets a job parameter its processor would refuse
    code = cli.main(["demo", "--processor", "povray", "--job-param", "width=0", "--out", str(tmp_path / "out")])

    # THEN one line, exit 1, nothing started, no results folder
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("lew: error: --job-param: parameter width='0' is out of bounds"), err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_demo_job_param_must_be_name_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--processor", "inventory", "--job-param", "width"]) == 1
    assert capsys.readouterr().err == "lew: error: --job-param 'width': expected NAME=VALUE, e.g. width=320\n"
