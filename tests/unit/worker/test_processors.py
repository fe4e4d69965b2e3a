"""The built-in processors, the loader, and the processor protocol's contract."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import textwrap
import unicodedata
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
    prepare_output_dir,
    run_processor,
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
    input_dir = job_dir / "input"
    for name, data in files.items():
        path = input_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    input_dir.mkdir(parents=True, exist_ok=True)
    output_dir = prepare_output_dir(input_dir, "out")  # as the job does, after unpacking
    return ProcessorContext(
        job=Job("bucket", f"incoming/{archive_name}.zip"),
        archive_name=archive_name,
        input_dir=input_dir,
        output_dir=output_dir,
        job_dir=job_dir,
        timeout=timeout,
    )


def settings(**overrides: str | bool | None) -> Settings:
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
                out.write_text(f"{job.key}: {sum(p.is_file() for p in folder.iterdir())}")
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


# ---------------------------------------------------------------------- outputs where users put them


def sh(script: str) -> tuple[str, ...]:
    return ("sh", "-c", script)


def test_command_processor_uploads_a_relative_output_dir_of_the_folder_it_runs_in(tmp_path: Path) -> None:
    # GIVEN the command: it makes `out` in the folder it runs in and writes there (OUTPUT_DIR=out)
    context = make_context(tmp_path, {"in.txt": b"data"})

    # WHEN it runs
    result = CommandProcessor(sh("mkdir -p out && cat in.txt > out/r.txt"))(context)

    # THEN its file is the output, and LEW_OUTPUT_DIR names that same folder
    assert result.outputs == (context.input_dir / "out" / "r.txt",)
    assert context.output_dir == context.input_dir / "out"
    seen = CommandProcessor(sh('echo "$LEW_OUTPUT_DIR" > "$LEW_OUTPUT_DIR/where.txt"'))(context)
    assert seen.outputs[0].read_text().strip() == str(context.input_dir / "out")


def test_command_processor_exiting_0_without_output_is_a_rejection_naming_it(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"in.txt": b"data"})

    with pytest.raises(ProcessorRejected) as raised:
        CommandProcessor(sh("mkdir -p elsewhere && cat in.txt > elsewhere/r.txt"))(context)

    assert str(raised.value) == (
        "sh exited 0 but wrote no file under OUTPUT_DIR ('out' in the folder it runs in); "
        "write outputs there, or to $LEW_OUTPUT_DIR or {output_dir}"
    )


def test_command_processor_uploads_only_what_it_created_or_changed_in_an_output_dir_from_the_archive(
    tmp_path: Path,
) -> None:
    # GIVEN an archive that itself holds out/old.txt and out/edit.txt
    context = make_context(tmp_path, {"out/old.txt": b"old", "out/edit.txt": b"v1"})

    # WHEN the command rewrites one and creates another
    result = CommandProcessor(sh("echo v2 > out/edit.txt && echo new > out/new.txt"))(context)

    # THEN only those two are outputs: the archive's untouched file is an input, not a result
    assert result.outputs == (context.output_dir / "edit.txt", context.output_dir / "new.txt")


def test_command_processor_names_links_it_does_not_upload(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"in.txt": b"data"})

    with pytest.raises(ProcessorRejected, match=r"only links, which are not uploaded: link.txt"):
        CommandProcessor(sh("ln -s ../in.txt out/link.txt"))(context)

    result = CommandProcessor(sh("echo x > out/real.txt"))(context)  # the link is still there
    assert result.outputs == (context.output_dir / "real.txt",)
    assert result.warnings == ("links under OUTPUT_DIR are not uploaded: link.txt",)


def test_command_processor_that_declares_empty_output_fine_succeeds_with_a_warning(tmp_path: Path) -> None:
    context = make_context(tmp_path, {})

    result = run_processor(CommandProcessor(sh("true"), empty_output_ok=True), context)

    assert result.outputs == ()
    assert result.warnings == ("command produced no output (it declares that this is fine)",)


def test_load_processor_passes_allow_empty_output_to_commands_and_functions() -> None:
    command = load_processor(settings(processor="command", process_command="true", allow_empty_output=True))
    function = load_processor(settings(processor="json:dumps", allow_empty_output=True))

    assert getattr(command, "empty_output_ok", None) is True
    assert getattr(function, "empty_output_ok", None) is True
    default = load_processor(settings(processor="command", process_command="true"))
    assert getattr(default, "empty_output_ok", None) is False


def test_run_processor_refuses_a_silent_success_of_any_processor(tmp_path: Path) -> None:
    context = make_context(tmp_path, {})
    processor = FunctionProcessor(lambda folder, job: [], "mine:nothing")

    with pytest.raises(ProcessorRejected) as raised:
        run_processor(processor, context)

    assert str(raised.value) == "mine:nothing finished but produced no output, so nothing is uploaded"


def test_run_processor_lets_a_function_declare_empty_output_fine(tmp_path: Path) -> None:
    def check_only(folder: Path, job: Job) -> list[Path]:
        return []

    check_only.empty_output_ok = True  # type: ignore[attr-defined]

    result = run_processor(FunctionProcessor(check_only, "mine:check_only"), make_context(tmp_path, {}))

    assert result.warnings == ("mine:check_only produced no output (it declares that this is fine)",)


@pytest.mark.parametrize(
    ("files", "output_dir", "blocking"),
    [({"out": b"a file"}, "out", "out"), ({"renders": b"x"}, "renders/final", "renders")],
)
def test_prepare_output_dir_refuses_an_archive_file_where_the_folder_must_be(
    tmp_path: Path, files: dict[str, bytes], output_dir: str, blocking: str
) -> None:
    input_dir = tmp_path / "input"
    for name, data in files.items():
        (input_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (input_dir / name).write_bytes(data)

    with pytest.raises(ProcessorRejected) as raised:
        prepare_output_dir(input_dir, output_dir)

    assert str(raised.value) == (
        f"the archive holds a file {blocking!r} where OUTPUT_DIR={output_dir!r} needs a folder; "
        "rename it in the archive or set OUTPUT_DIR to another folder"
    )


# ------------------------------------------------------------------------- failures that name their cause


@pytest.mark.parametrize(
    ("script", "error", "message"),
    [
        (
            "echo rendering frame 1; echo 'fatal: frame 2 is corrupt' >&2; echo cleanup; exit 1",
            ProcessorRetry,
            "sh exited with code 1: fatal: frame 2 is corrupt",
        ),
        (
            "echo 'warning: odd header' >&2; echo 'bad input: no frames' >&2; exit 3",
            ProcessorRejected,
            "sh rejected the input (exit code 3): warning: odd header / bad input: no frames",
        ),
        (
            "echo only stdout; exit 2",
            ProcessorRetry,
            "sh exited with code 2, with nothing on stderr",
        ),
        (
            "kill -9 $$",
            ProcessorRetry,
            "sh was killed by signal 9 (SIGKILL), with nothing on stderr",
        ),
    ],
)
def test_command_processor_failure_quotes_the_last_lines_of_stderr(
    tmp_path: Path, script: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        CommandProcessor(sh(script))(make_context(tmp_path, {}))

    assert str(raised.value) == message


def test_command_processor_log_keeps_both_stdout_and_stderr(tmp_path: Path) -> None:
    # stderr passes through a pipe to be quoted in errors: it still reaches the log, each stream in its own order
    context = make_context(tmp_path, {})

    with pytest.raises(ProcessorRetry) as raised:
        CommandProcessor(sh("echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2; exit 1"))(context)

    words = getattr(raised.value, "processor_log", "").split()
    assert sorted(words) == ["err-1", "err-2", "out-1", "out-2"]
    assert words.index("out-1") < words.index("out-2")
    assert words.index("err-1") < words.index("err-2")


BROKEN_SCENES = {
    "parse error": (
        {
            "scene.pov": b"#version 3.7;\ncamera { location <0,1,-3> look_at 0 }\n"
            b"light_source { <2,4,-3> color rgb 1 }\nsphere { 0, 1 pigment { colr rgb 1 } }\n"
        },
        "povray failed to render scene.pov (exit code 1): File 'scene.pov' line 4: Parse Error: No matching } in "
        "'pigment', undeclared identifier 'colr' found instead",
    ),
    "missing include": (
        {"scene.pov": b'#version 3.7;\n#include "nosuch.inc"\n'},
        "povray failed to render scene.pov (exit code 1): File 'scene.pov' line 2: Possible Parse Error: Cannot find "
        "file 'nosuch.inc', even after trying to append file type extension; Parse Error: Cannot open include file "
        "nosuch.inc",
    ),
    "missing texture": (
        {"scene.pov": b'#version 3.7;\nplane { y, 0 pigment { image_map { png "missing.png" } } }\n'},
        "povray failed to render scene.pov (exit code 1): File 'scene.pov' line 2: Possible Parse Error: Cannot find "
        "file 'missing.png', even after trying to append file type extension; Possible Parse Error: Cannot find image "
        "file; Fatal error in parser: Cannot open file",
    ),
    "error in an include": (
        {
            "scene.pov": b'#version 3.7;\n#include "parts.inc"\n',
            "parts.inc": b"#declare X = sphere { 0, 1\n  bogus\n}\n",
        },
        "povray failed to render scene.pov (exit code 1): File 'parts.inc' line 2: Parse Error: No matching } in "
        "'sphere', undeclared identifier 'bogus' found instead",
    ),
    "bad ini option": (
        {"scene.ini": b"Input_File_Name=scene.pov\nNo_Such_Option=on\n", "scene.pov": SCENE_POV.encode()},
        "povray failed to render scene.ini (exit code 1): Problem with option setting; Failed to parse command-line "
        "option (an option in the .ini file or on the command line is unknown or has a bad value)",
    ),
}


@needs_povray
@pytest.mark.slow
@pytest.mark.parametrize("case", list(BROKEN_SCENES))
def test_povray_failure_names_its_cause_and_keeps_the_log_free_of_the_banner(tmp_path: Path, case: str) -> None:
    # GIVEN a broken scene
    files, message = BROKEN_SCENES[case]
    context = make_context(tmp_path, files)

    # WHEN POV-Ray fails to render it
    with pytest.raises(ProcessorRejected) as raised:
        PovrayProcessor()(context)

    # THEN the error says where and why in POV-Ray's words, and the log tail is the useful end, not the banner
    assert str(raised.value) == message
    log = raised.value.processor_log or ""
    assert "Persistence of Vision" not in log
    assert "Primary POV-Ray 3.7 Architects" not in log
    assert "user configuration file" not in log
    assert "Render failed" in log or "Failed to parse command-line option" in log


def test_povray_finds_name_ini_whatever_the_unicode_normalisation_of_the_key(tmp_path: Path) -> None:
    # GIVEN a key uploaded from macOS (decomposed) and the unpacked, composed café.ini among other .ini files
    context = make_context(
        tmp_path, {"café.ini": b"", "other.ini": b""}, archive_name=unicodedata.normalize("NFD", "café")
    )

    assert PovrayProcessor.choose_scene(context.input_dir, context.archive_name) == context.input_dir / "café.ini"
