"""`lew submit --param` and the Python API's parameters: checked before any upload, in one line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from lew import cli
from lew.errors import LewError
from lew.job_parameters import parameter_texts, parse_parameters, upload_arguments
from lew.local.settings import build_settings


def test_parse_parameters_reads_name_value_pairs() -> None:
    assert parse_parameters(["width=320", "label=a=b", "empty="]) == {"width": "320", "label": "a=b", "empty": ""}


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["width"], "--param 'width': expected NAME=VALUE"),
        (["=320"], "expected NAME=VALUE"),
        (["width=1", "width=2"], "--param width is given twice ('1' and '2')"),
        (["Width=1"], "parameter name 'Width' is not allowed"),
        (["label=é"], "not printable ASCII"),
        ([f"label={'x' * 2100}"], "more than S3's limit of 2048 bytes"),
    ],
)
def test_parse_parameters_refuses_in_one_line(assignments: list[str], message: str) -> None:
    with pytest.raises(LewError) as raised:
        parse_parameters(assignments)

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_parameter_texts_take_numbers_and_booleans_from_python() -> None:
    texts = parameter_texts({"width": 320, "antialias": 0.3, "verbose": True, "mode": "fast"})

    assert texts == {"width": "320", "antialias": "0.3", "verbose": "true", "mode": "fast"}
    assert upload_arguments(texts) == {
        "Metadata": {
            "lew-param-width": "320",
            "lew-param-antialias": "0.3",
            "lew-param-verbose": "true",
            "lew-param-mode": "fast",
        }
    }
    assert upload_arguments({}) == {}


def test_parameter_texts_refuse_other_values() -> None:
    with pytest.raises(LewError, match="parameter size: a value is text or a number, got list"):
        parameter_texts({"size": [1, 2]})  # type: ignore[dict-item]


def test_submit_refuses_a_bad_param_before_looking_for_a_stack(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an archive and no stack anywhere
    monkeypatch.chdir(tmp_path)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("a.txt", "a")

    # WHEN submitted with a parameter S3 metadata cannot carry
    code = cli.main(["submit", str(archive), "--param", f"label={'x' * 3000}"])

    # THEN one line names the size, not the missing stack
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1
    assert "more than S3's limit of 2048 bytes per object" in err[0]


def test_local_settings_honour_processor_and_process_command_given_as_params() -> None:
    # GIVEN the repository's template, and the command processor chosen only through --param
    parameters = {"Processor": "command", "ProcessCommand": "python3 run.py", "ProcessParameters": "level:int:1..3"}

    # WHEN the local stack's settings are built
    settings = build_settings(parameters=parameters)

    # THEN the processor is the one asked for (not the default), and the command reaches the workers' environment
    assert settings.processor == "command"
    assert settings.parameter("ProcessCommand") == "python3 run.py"
    assert settings.parameter("ProcessParameters") == "level:int:1..3"
