"""The built-in processors, the loader, and the processor protocol's contract."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from worker.errors import ProcessorRejected, ProcessorRetry
from worker.messages import Job
from worker.processors import (
    CommandProcessor,
    FunctionProcessor,
    InventoryProcessor,
    PovrayProcessor,
    ProcessorContext,
    detect_type,
    load_processor,
)
from worker.settings import ConfigurationError, Settings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCENE_POV = """\
#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 1, -3> look_at <0, 0.5, 0> }
light_source { <2, 4, -3> color rgb 1 }
sphere { <0, 0.5, 0>, 0.5 pigment { color rgb <1, 0.5, 0> } }
"""
SCENE_INI = "Input_File_Name=scene.pov\nWidth=64\nHeight=48\nOutput_File_Type=N\nAntialias=Off\n"


def make_context(
    tmp_path: Path, files: dict[str, bytes], *, archive_name: str = "scene", timeout: float = 30
) -> ProcessorContext:
    job_dir = tmp_path / "job"
    input_dir, output_dir = job_dir / "input", job_dir / "out"
    for name, data in files.items():
        path = input_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    input_dir.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True)
    return ProcessorContext(
        job=Job("bucket", f"incoming/{archive_name}.zip"),
        archive_name=archive_name,
        input_dir=input_dir,
        output_dir=output_dir,
        job_dir=job_dir,
        timeout=timeout,
    )


def settings(**overrides: str | None) -> Settings:
    return Settings(queue_url="https://queue", region="us-east-1", **overrides)  # type: ignore[arg-type]


def test_inventory_lists_every_member_with_size_sha256_and_type(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"a/pic.png": PNG_MAGIC + b"rest", "notes.txt": b"hello\n", "blob": b"\x00\x01"})

    result = InventoryProcessor()(context)

    assert result.outputs == (context.output_dir / "inventory.json",)
    inventory = json.loads(result.outputs[0].read_text())
    assert inventory["members"] == [
        {"path": "a/pic.png", "size": 12, "sha256": inventory["members"][0]["sha256"], "type": "image/png"},
        {"path": "blob", "size": 2, "sha256": inventory["members"][1]["sha256"], "type": "application/octet-stream"},
        {
            "path": "notes.txt",
            "size": 6,
            "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
            "type": "text/plain",
        },
    ]
    assert inventory["total_size"] == 20


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("x.bin", b"%PDF-1.7", "application/pdf"),
        ("x.txt", b"\xff\xd8\xff\xe0", "image/jpeg"),  # the bytes win over the name
        ("x.json", b"{}", "application/json"),
        ("x", b"", "application/octet-stream"),
    ],
)
def test_detect_type_prefers_magic_bytes_then_the_name(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)

    assert detect_type(path) == expected


def python_argv(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_command_processor_collects_outputs_from_the_output_dir(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"in.txt": b"data"})
    code = "import os, pathlib; pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'r.txt').write_text(open('in.txt').read())"

    result = CommandProcessor(python_argv(code))(context)

    assert result.outputs == (context.output_dir / "r.txt",)
    assert result.outputs[0].read_text() == "data"


def test_command_processor_substitutes_folder_placeholders(tmp_path: Path) -> None:
    context = make_context(tmp_path, {})
    code = "import pathlib, sys; pathlib.Path(sys.argv[1], 'x').write_text(sys.argv[2])"

    result = CommandProcessor((*python_argv(code), "{output_dir}", "{input_dir}"))(context)

    assert result.outputs[0].read_text() == str(context.input_dir)


@pytest.mark.parametrize(("exit_code", "error"), [(3, ProcessorRejected), (1, ProcessorRetry), (75, ProcessorRetry)])
def test_command_processor_maps_exit_codes(tmp_path: Path, exit_code: int, error: type[Exception]) -> None:
    context = make_context(tmp_path, {})

    with pytest.raises(error) as raised:
        CommandProcessor(python_argv(f"print('why'); raise SystemExit({exit_code})"))(context)

    assert "why" in (getattr(raised.value, "processor_log", "") or "")
    assert raised.value.permanent is (exit_code == 3)  # type: ignore[attr-defined]


def test_command_processor_missing_program_is_a_retry(tmp_path: Path) -> None:
    with pytest.raises(ProcessorRetry, match="cannot run"):
        CommandProcessor(("/nonexistent/program",))(make_context(tmp_path, {}))


def test_load_processor_knows_the_built_ins() -> None:
    assert load_processor(settings()).name == "inventory"
    assert load_processor(settings(processor="povray")).name == "povray"
    command = load_processor(settings(processor="command", process_command="convert 'a b' c"))
    assert isinstance(command, CommandProcessor)
    assert command.argv == ("convert", "a b", "c")


@pytest.mark.parametrize(
    ("processor", "command", "message"),
    [
        ("nope", None, "PROCESSOR='nope' is unknown"),
        ("command", "convert 'unclosed", "PROCESS_COMMAND cannot be split"),
        ("no_such_module_xyz:run", None, "cannot import"),
        ("json:no_such_function", None, "has no function"),
    ],
)
def test_load_processor_rejects_bad_configuration(processor: str, command: str | None, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_processor(settings(processor=processor, process_command=command))


def test_user_function_processor_is_loaded_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a module of the user's, with a function (folder, job) -> output files
    module_dir = tmp_path / "user_code"
    module_dir.mkdir()
    (module_dir / "my_processor.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            def count(folder: Path, job) -> list[Path]:
                out = folder / "count.txt"
                out.write_text(f"{job.key}: {len(list(folder.iterdir()))}")
                return [out]
            """
        )
    )
    monkeypatch.syspath_prepend(str(module_dir))
    context = make_context(tmp_path, {"a": b"1", "b": b"2"})

    # WHEN loaded from PROCESSOR=package.module:function and run
    processor = load_processor(settings(processor="my_processor:count"))
    result = processor(context)

    # THEN its outputs are returned and named after the spec
    assert processor.name == "my_processor:count"
    assert result.outputs == (context.input_dir / "count.txt",)
    assert result.outputs[0].read_text() == "incoming/scene.zip: 2"


def test_user_function_outputs_must_stay_in_the_job_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    processor = FunctionProcessor(lambda folder, job: [outside], "bad:function")

    with pytest.raises(ProcessorRejected, match="not a file in the job's folder"):
        processor(make_context(tmp_path, {}))


@pytest.mark.parametrize(
    ("files", "chosen"),
    [
        ({"scene.ini": b"", "other.ini": b"", "scene.pov": b""}, "scene.ini"),
        ({"sub/scene.ini": b"", "x.pov": b""}, "sub/scene.ini"),
        ({"only.ini": b"", "a.pov": b"", "b.pov": b""}, "only.ini"),
        ({"thing.pov": b"", "readme.txt": b""}, "thing.pov"),
    ],
)
def test_povray_chooses_name_ini_then_the_only_ini_then_the_only_pov(
    tmp_path: Path, files: dict[str, bytes], chosen: str
) -> None:
    context = make_context(tmp_path, files)

    assert PovrayProcessor.choose_scene(context.input_dir, "scene") == context.input_dir / chosen


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.ini": b"", "b.ini": b""}, "several .ini"),
        ({"a.pov": b"", "b.pov": b""}, "several .pov"),
        ({"readme.txt": b""}, "nothing to render"),
    ],
)
def test_povray_rejects_archives_without_a_clear_scene(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(ProcessorRejected, match=message):
        PovrayProcessor.choose_scene(make_context(tmp_path, files).input_dir, "scene")


def test_povray_missing_executable_is_a_retry(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"scene.pov": SCENE_POV.encode()})

    with pytest.raises(ProcessorRetry, match="cannot run"):
        PovrayProcessor(executable="/nonexistent/povray")(context)


needs_povray = pytest.mark.skipif(
    shutil.which("povray") is None,
    reason="povray is not installed (apt-get install povray); CI installs it so that this test runs there",
)


@needs_povray
@pytest.mark.slow
def test_povray_renders_name_ini_to_a_png(tmp_path: Path) -> None:
    # GIVEN scene.zip's members: scene.ini and scene.pov
    context = make_context(tmp_path, {"scene.ini": SCENE_INI.encode(), "scene.pov": SCENE_POV.encode()})

    # WHEN rendered
    result = PovrayProcessor()(context)

    # THEN scene.png is a real PNG in the output folder, and POV-Ray's output tail is kept
    assert result.outputs == (context.output_dir / "scene.png",)
    assert result.outputs[0].read_bytes().startswith(PNG_MAGIC)
    assert "POV-Ray" in result.log or "Render" in result.log


@needs_povray
@pytest.mark.slow
def test_povray_renders_the_only_pov_to_name_png(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"models/ball.pov": SCENE_POV.encode()}, archive_name="demo")

    result = PovrayProcessor()(context)

    assert result.outputs == (context.output_dir / "models" / "demo.png",)
    assert result.outputs[0].read_bytes().startswith(PNG_MAGIC)


@needs_povray
@pytest.mark.slow
def test_povray_parse_error_is_a_rejection_with_the_output_tail(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"scene.pov": b"sphere { this is not pov"})

    with pytest.raises(ProcessorRejected) as raised:
        PovrayProcessor()(context)

    assert raised.value.processor_log


def test_python_argv_helper_is_shell_free() -> None:
    assert shlex.join(python_argv("print(1)")).startswith(sys.executable)
