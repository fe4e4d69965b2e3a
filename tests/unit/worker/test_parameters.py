"""Job parameters: their rules, their encoding as S3 metadata, and what each processor declares and receives."""

from __future__ import annotations

import json
import re
import shutil
import struct
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.worker.test_processors import SCENE_INI, SCENE_POV, make_context, python_argv
from worker.messages import Job
from worker.parameters import (
    METADATA_LIMIT_BYTES,
    InvalidParameter,
    Parameter,
    Value,
    check_encodable,
    declared_parameters,
    parameter_metadata,
    parameters_from_metadata,
    parse_declarations,
    validate,
)
from worker.processors import (
    POVRAY_PARAMETERS,
    CommandProcessor,
    FunctionProcessor,
    InventoryProcessor,
    PovrayProcessor,
    ProcessorContext,
    load_processor,
)
from worker.settings import ConfigurationError, Settings

BASE_ENV = {"QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/work"}


# ---------------------------------------------------------------------- one parameter's rule


@pytest.mark.parametrize(
    ("parameter", "raw", "expected"),
    [
        (Parameter("width", "int", minimum=1, maximum=8192), "640", 640),
        (Parameter("width", "int", minimum=1, maximum=8192), " 8192 ", 8192),
        (Parameter("offset", "int"), "-3", -3),
        (Parameter("ratio", "float", minimum=0, maximum=1), "0.25", 0.25),
        (Parameter("ratio", "float", minimum=0, maximum=1), "1", 1.0),
        (Parameter("verbose", "bool"), "Yes", True),
        (Parameter("verbose", "bool"), "off", False),
        (Parameter("mode", "choice", choices=("fast", "slow")), "slow", "slow"),
        (Parameter("label", "text", max_length=8), "a b;$(x)", "a b;$(x)"),
    ],
)
def test_parameter_parse_gives_typed_values(parameter: Parameter, raw: str, expected: object) -> None:
    # GIVEN a declared parameter and a raw metadata string WHEN parsed THEN the typed value comes back
    value = parameter.parse(raw)

    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("parameter", "raw", "message"),
    [
        (
            Parameter("width", "int", minimum=1, maximum=8192),
            "99999",
            "width='99999' is out of bounds: width must be an integer from 1 to 8192",
        ),
        (Parameter("width", "int", minimum=1, maximum=8192), "0", "is out of bounds"),
        (Parameter("width", "int", minimum=1, maximum=8192), "640px", "width='640px' is not an integer"),
        (Parameter("width", "int", minimum=1, maximum=8192), "6_40", "is not an integer"),
        (Parameter("width", "int", minimum=1, maximum=8192), "1e3", "is not an integer"),
        (Parameter("width", "int", minimum=1, maximum=8192), "", "is not an integer"),
        (Parameter("ratio", "float", minimum=0, maximum=1), "nan", "ratio='nan' is not a number"),
        (Parameter("ratio", "float", minimum=0, maximum=1), "inf", "is not a number"),
        (Parameter("ratio", "float", minimum=0, maximum=1), "1.5", "must be a number from 0 to 1"),
        (Parameter("count", "int", minimum=1), "0", "must be an integer of at least 1"),
        (Parameter("verbose", "bool"), "maybe", "verbose='maybe' is not a boolean"),
        (
            Parameter("mode", "choice", choices=("fast", "slow")),
            "FAST",
            "mode='FAST' is not allowed: mode must be one of fast, slow",
        ),
        (Parameter("label", "text", max_length=4), "toolong", "label='toolong' is too long"),
        (Parameter("label", "text"), "tab\there", "not printable ASCII"),
        (Parameter("label", "text"), "=?UTF-8?B?Y2Fmw6k=?=", "was not ASCII when uploaded"),
        (Parameter("mode", "choice", choices=("a",)), "=?utf-8?q?caf=C3=A9?=", "RFC 2047-encoded"),
    ],
)
def test_parameter_parse_refuses_in_one_line_naming_parameter_value_and_rule(
    parameter: Parameter, raw: str, message: str
) -> None:
    # GIVEN a value that breaks the rule WHEN parsed THEN InvalidParameter says which, with what, and why
    with pytest.raises(InvalidParameter) as raised:
        parameter.parse(raw)

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert raised.value.permanent


def test_parameter_refusal_quotes_a_long_value_short() -> None:
    with pytest.raises(InvalidParameter) as raised:
        Parameter("width", "int").parse("9" * 500)

    assert len(str(raised.value)) < 200
    assert "(500 characters)" in str(raised.value)


# ---------------------------------------------------------------------- a job's parameters


def test_validate_types_every_declared_parameter() -> None:
    values = validate("povray", POVRAY_PARAMETERS, {"width": "320", "height": "240", "antialias": "0.3"})

    assert values == {"width": 320, "height": 240, "antialias": 0.3}


def test_validate_refuses_an_unknown_name_listing_what_the_processor_accepts() -> None:
    with pytest.raises(InvalidParameter) as raised:
        validate("povray", POVRAY_PARAMETERS, {"colour": "red"})

    assert str(raised.value) == (
        "parameter colour='red' is unknown to povray: it accepts width, height, quality, antialias"
    )


def test_validate_refuses_any_parameter_of_a_processor_that_declares_none() -> None:
    with pytest.raises(InvalidParameter, match="unknown to inventory: it accepts no parameters"):
        validate("inventory", declared_parameters(InventoryProcessor()), {"width": "1"})


def test_validate_refuses_parameters_beyond_s3s_metadata_limit() -> None:
    # GIVEN parameters larger than S3 would store (a store that let them through)
    declared = (Parameter("label", "text", max_length=4096),)

    # WHEN validated THEN the size is refused, whatever each value's own rule says
    with pytest.raises(InvalidParameter, match=f"more than S3's limit of {METADATA_LIMIT_BYTES} bytes"):
        validate("command", declared, {"label": "x" * 2100})


def test_parameters_from_metadata_takes_only_lew_entries_by_lower_case_name() -> None:
    metadata = {"lew-param-width": "320", "LEW-PARAM-Height": "240", "owner": "me", "dagster-pipes-context": "x"}

    assert parameters_from_metadata(metadata) == {"height": "240", "width": "320"}


# ---------------------------------------------------------------------- the uploader's side


def test_check_encodable_accepts_what_the_worker_reads_back() -> None:
    parameters = {"width": "320", "label": "a b"}

    check_encodable(parameters)

    assert parameters_from_metadata(parameter_metadata(parameters)) == parameters


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Width": "1"}, "parameter name 'Width' is not allowed"),
        ({"1st": "1"}, "parameter name '1st' is not allowed"),
        ({"with-dash": "1"}, "is not allowed"),
        ({"label": "café"}, "label='café' has characters that are not printable ASCII"),
        ({"label": "x" * 2040}, "more than S3's limit of 2048 bytes per object"),
    ],
)
def test_check_encodable_refuses_in_one_line(parameters: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=None) as raised:
        check_encodable(parameters)

    assert message in str(raised.value)


def test_check_encodable_counts_the_uploads_other_metadata() -> None:
    with pytest.raises(ValueError, match="more than S3's limit"):
        check_encodable({"label": "x" * 1000}, other_metadata={"note": "y" * 1100})


# ---------------------------------------------------------------------- PROCESS_PARAMETERS declarations


def test_parse_declarations_reads_every_kind() -> None:
    declared = parse_declarations(
        "threshold:int:0..100, ratio:float:0..0.5 mode:choice:fast|slow,label:text:64 v:bool n:int:1.."
    )

    assert declared == (
        Parameter("threshold", "int", minimum=0, maximum=100),
        Parameter("ratio", "float", minimum=0, maximum=0.5),
        Parameter("mode", "choice", choices=("fast", "slow")),
        Parameter("label", "text", max_length=64),
        Parameter("v", "bool"),
        Parameter("n", "int", minimum=1),
    )
    assert parse_declarations("  ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Threshold:int", "'Threshold:int': the name must be"),
        ("threshold:integer", "the kind must be one of int, float, bool, choice, text"),
        ("threshold:int:0-100", "bounds are written MIN..MAX"),
        ("threshold:int:a..b", "bounds are written MIN..MAX"),
        ("threshold:int:10..1", "the minimum is above the maximum"),
        ("mode:choice", "a choice lists its values"),
        ("label:text:long", "a text takes its maximum length"),
        ("v:bool:1..2", "a bool takes no bounds"),
        ("a:int a:bool", "a is declared twice"),
    ],
)
def test_parse_declarations_refuses_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as raised:
        parse_declarations(text)

    assert message in str(raised.value)


def test_settings_name_bad_or_misplaced_process_parameters() -> None:
    # GIVEN declarations that cannot be read, and declarations for a processor that ignores them
    bad = {**BASE_ENV, "PROCESSOR": "command", "PROCESS_COMMAND": "true", "PROCESS_PARAMETERS": "x:int:9..1"}
    misplaced = {**BASE_ENV, "PROCESSOR": "povray", "PROCESS_PARAMETERS": "x:int"}

    # WHEN read THEN each is one problem naming PROCESS_PARAMETERS
    expected = "PROCESS_PARAMETERS cannot be read: 'x:int:9..1': the minimum"
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        Settings.from_env(bad)
    with pytest.raises(ConfigurationError, match="PROCESS_PARAMETERS is set but PROCESSOR=povray ignores it"):
        Settings.from_env(misplaced)


def test_load_processor_gives_the_command_processor_its_declarations() -> None:
    env = {**BASE_ENV, "PROCESSOR": "command", "PROCESS_COMMAND": "true", "PROCESS_PARAMETERS": "level:int:1..3"}

    processor = load_processor(Settings.from_env(env))

    assert declared_parameters(processor) == (Parameter("level", "int", minimum=1, maximum=3),)


# ---------------------------------------------------------------------- how values reach each processor


def test_command_processor_gets_parameters_as_environment_variables_only(tmp_path: Path) -> None:
    # GIVEN a job with a text parameter that a shell would expand, and a command that records what it got
    context = make_context(tmp_path, {})
    values = validate(
        "command",
        parse_declarations("label:text level:int verbose:bool"),
        {
            "label": "$(touch pwned); `id`",
            "level": "2",
            "verbose": "yes",
        },
    )
    code = (
        "import json, os, sys; open(os.path.join(os.environ['LEW_OUTPUT_DIR'], 'seen.json'), 'w').write(json.dumps("
        "{'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() if k.startswith('LEW_PARAM_')}}))"
    )

    # WHEN the command runs
    result = CommandProcessor(python_argv(code))(_with(context, values))

    # THEN the values arrive untouched as LEW_PARAM_<NAME>, none in argv, and nothing ran them
    seen = json.loads(result.outputs[0].read_text())
    assert seen == {
        "argv": [],
        "env": {"LEW_PARAM_LABEL": "$(touch pwned); `id`", "LEW_PARAM_LEVEL": "2", "LEW_PARAM_VERBOSE": "true"},
    }
    assert not (context.input_dir / "pwned").exists()


def test_povray_options_are_switches_built_from_numbers() -> None:
    values = validate(
        "povray", POVRAY_PARAMETERS, {"width": "320", "height": "200", "quality": "9", "antialias": "0.00001"}
    )

    assert PovrayProcessor.options(values) == ["+W320", "+H200", "+Q9", "+A0.00001"]
    assert PovrayProcessor.options({}) == []


def test_povray_puts_the_jobs_switches_after_the_scenes_own(tmp_path: Path) -> None:
    # GIVEN a fake povray that records its arguments, and an .ini scene with its own size
    fake = tmp_path / "povray"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nopen('argv.json', 'w').write(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)
    context = make_context(tmp_path, {"scene.ini": SCENE_INI.encode(), "scene.pov": SCENE_POV.encode()})

    # WHEN rendered with a width
    result = PovrayProcessor(executable=str(fake))(_with(context, {"width": 100}))

    # THEN the switch follows the .ini, so that POV-Ray, which reads options in order, lets the job's win
    argv = json.loads(next(p for p in result.outputs if p.name == "argv.json").read_text())
    assert argv == ["scene.ini", "-D", "+W100"]


def test_function_processor_gets_parameters_only_when_it_declares_them(tmp_path: Path) -> None:
    # GIVEN a function that declares one parameter
    seen: dict[str, object] = {}

    def render(folder: Path, job: Job, *, parameters: dict[str, object]) -> list[Path]:
        seen.update(parameters)
        out = folder / "out" / "r.txt"
        out.write_text("ok")
        return [out]

    render.parameters = (Parameter("level", "int", minimum=1, maximum=3),)  # type: ignore[attr-defined]
    processor = FunctionProcessor(render, "mod:render")  # type: ignore[arg-type]
    context = make_context(tmp_path, {})

    # WHEN run with a validated value THEN it receives it by name
    values = validate(processor.name, declared_parameters(processor), {"level": "2"})
    processor(_with(context, values))
    assert seen == {"level": 2}


def _with(context: ProcessorContext, values: Mapping[str, Value]) -> ProcessorContext:
    return replace(context, parameters=values)


needs_povray = pytest.mark.skipif(shutil.which("povray") is None, reason="povray is not installed")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_povray
@pytest.mark.slow
def test_povray_renders_at_the_jobs_size(tmp_path: Path) -> None:
    # GIVEN a scene whose .ini says 64x48
    context = make_context(tmp_path, {"scene.ini": SCENE_INI.encode(), "scene.pov": SCENE_POV.encode()})

    # WHEN rendered with width 40 and height 30
    values = validate("povray", POVRAY_PARAMETERS, {"width": "40", "height": "30", "quality": "4"})
    result = PovrayProcessor()(_with(context, values))

    # THEN the PNG has the job's size
    assert png_size(result.outputs[0]) == (40, 30)
