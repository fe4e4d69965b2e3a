"""Archives as real tools make them, and processors whose failures name their cause: the job's manifest, in moto."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
import zlib

import pytest

from .conftest import BUCKET, Stack, zip_bytes

LIGHTHOUSE_INI = b"Input_File_Name=lighthouse.pov\nWidth=64\nHeight=48\nOutput_File_Type=N\nAntialias=Off\n"
LIGHTHOUSE_POV = b"""#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 2, -6> look_at <0, 1.5, 0> }
light_source { <4, 8, -6> color rgb 1 }
cylinder { <0, 0, 0>, <0, 3, 0>, 0.4 pigment { color rgb <1, 1, 1> } }
cone { <0, 3, 0>, 0.5, <0, 3.6, 0>, 0 pigment { color rgb <1, 0, 0> } }
"""
APPLEDOUBLE = (b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + struct.pack(">H", 1)).ljust(4096, b"\x00")
DS_STORE = b"\x00\x00\x00\x01Bud1".ljust(6148, b"\x00")

needs_povray = pytest.mark.skipif(
    shutil.which("povray") is None, reason="povray is not installed (apt-get install povray)"
)


def finder_zip(members: dict[str, bytes]) -> bytes:
    """The issue's example as Finder's "Compress" writes it: the scene, a __MACOSX twin and .DS_Store."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


LIGHTHOUSE = {
    "lighthouse.ini": LIGHTHOUSE_INI,
    "lighthouse.pov": LIGHTHOUSE_POV,
    "__MACOSX/._lighthouse.pov": APPLEDOUBLE,
    ".DS_Store": DS_STORE,
}
IGNORED = [
    {"name": ".DS_Store", "rule": "macos-ds-store"},
    {"name": "__MACOSX/._lighthouse.pov", "rule": "macos-__MACOSX"},
]


@needs_povray
@pytest.mark.slow
def test_job_renders_a_finder_zipped_scene_and_lists_the_metadata_it_left_out(stack: Stack) -> None:
    # GIVEN the example: lighthouse.zip from Finder (refused before as "several .pov files")
    stack.upload("incoming/lighthouse.zip", finder_zip(LIGHTHOUSE))
    stack.enqueue("incoming/lighthouse.zip")

    # WHEN the povray worker runs it
    stack.run(processor="povray")

    # THEN it renders, and the manifest lists what was left out and why
    manifest = stack.manifest("incoming/lighthouse.zip")
    assert manifest["status"] == "succeeded", manifest["error"]
    assert [output["key"] for output in manifest["outputs"]] == ["results/lighthouse.zip/lighthouse.png"]
    png = stack.s3.get_object(Bucket=BUCKET, Key="results/lighthouse.zip/lighthouse.png")["Body"].read()
    assert png.startswith(b"\x89PNG")
    assert manifest["ignored"] == IGNORED
    assert manifest["warnings"] == []
    assert stack.queue_counts() == (0, 0)


def test_job_never_shows_the_processor_the_metadata(stack: Stack) -> None:
    stack.upload("incoming/lighthouse.zip", finder_zip(LIGHTHOUSE))
    stack.enqueue("incoming/lighthouse.zip")

    stack.run()  # the inventory processor lists every file it is shown

    inventory = json.loads(
        stack.s3.get_object(Bucket=BUCKET, Key="results/lighthouse.zip/inventory.json")["Body"].read()
    )
    assert [member["path"] for member in inventory["members"]] == ["lighthouse.ini", "lighthouse.pov"]
    assert stack.manifest("incoming/lighthouse.zip")["ignored"] == IGNORED


def legacy_zip(stored: bytes, unicode_name: str, data: bytes) -> bytes:
    """One stored member as WinRAR writes it: a code-page name without the UTF-8 flag, the real one in 0x7075."""
    field = struct.pack("<BL", 1, zlib.crc32(stored)) + unicode_name.encode()
    extra = struct.pack("<2H", 0x7075, len(field)) + field
    crc = zlib.crc32(data)
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, len(data), len(data), len(stored), 0)
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        20,
        20,
        0,
        0,
        0,
        0x21,
        crc,
        len(data),
        len(data),
        len(stored),
        len(extra),
        0,
        0,
        0,
        0x20,
        0,
    )
    body = local + stored + data
    directory = central + stored + extra
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def test_job_reads_a_legacy_zip_name_from_its_unicode_path_field(stack: Stack) -> None:
    # GIVEN a zip as WinRAR writes it on a Russian Windows: a cp866 name, and the real one in field 0x7075
    name = "маяк.pov"
    stack.upload("incoming/legacy.zip", legacy_zip(name.encode("cp866"), name, b"sphere { 0, 1 }"))
    stack.enqueue("incoming/legacy.zip")

    stack.run()

    inventory = json.loads(stack.s3.get_object(Bucket=BUCKET, Key="results/legacy.zip/inventory.json")["Body"].read())
    assert [member["path"] for member in inventory["members"]] == [name]


def test_job_uploads_what_a_command_writes_to_a_relative_output_dir(stack: Stack) -> None:
    # GIVEN the command, with OUTPUT_DIR=out relative to the folder it runs in
    stack.upload("incoming/cmd.zip", zip_bytes({"in.txt": b"data"}))
    stack.enqueue("incoming/cmd.zip")

    stack.run(processor="command", process_command="sh -c 'mkdir -p out && cat in.txt > out/r.txt'", output_dir="out")

    manifest = stack.manifest("incoming/cmd.zip")
    assert manifest["status"] == "succeeded", manifest["error"]
    assert [output["key"] for output in manifest["outputs"]] == ["results/cmd.zip/r.txt"]
    assert stack.s3.get_object(Bucket=BUCKET, Key="results/cmd.zip/r.txt")["Body"].read() == b"data"


def test_job_of_a_command_that_writes_nothing_fails_naming_it(stack: Stack) -> None:
    stack.upload("incoming/none.zip", zip_bytes({"in.txt": b"data"}))
    stack.enqueue("incoming/none.zip")

    stack.run(processor="command", process_command="sh -c 'cat in.txt > /dev/null'")

    manifest = stack.manifest("incoming/none.zip")
    assert manifest["status"] == "failed"
    assert manifest["error"] == {
        "type": "ProcessorRejected",
        "message": "sh exited 0 but wrote no file under OUTPUT_DIR ('out' in the folder it runs in); "
        "write outputs there, or to $LEW_OUTPUT_DIR or {output_dir}",
        "permanent": True,
    }
    assert stack.queue_counts() == (0, 0)


def test_job_of_a_rejecting_command_quotes_its_stderr(stack: Stack) -> None:
    stack.upload("incoming/rej.zip", zip_bytes({"in.txt": b"data"}))
    stack.enqueue("incoming/rej.zip")

    stack.run(processor="command", process_command="sh -c 'echo working; echo \"no frames in in.txt\" >&2; exit 3'")

    error = stack.manifest("incoming/rej.zip")["error"]
    assert error["type"] == "ProcessorRejected"
    assert error["message"] == "sh rejected the input (exit code 3): no frames in in.txt"


@needs_povray
@pytest.mark.slow
def test_job_of_a_broken_scene_names_the_cause_and_keeps_what_was_ignored(stack: Stack) -> None:
    # GIVEN a Finder zip of a scene with a syntax error on line 4
    broken = LIGHTHOUSE_POV.replace(b"color rgb 1 }", b"colr rgb 1 }", 1)
    stack.upload("incoming/lighthouse.zip", finder_zip(LIGHTHOUSE | {"lighthouse.pov": broken}))
    stack.enqueue("incoming/lighthouse.zip")

    stack.run(processor="povray")

    # THEN the failure manifest says where and why, its log is not the banner, and the ignored list is kept
    manifest = stack.manifest("incoming/lighthouse.zip")
    assert manifest["status"] == "failed"
    assert manifest["error"]["message"] == (
        "povray failed to render lighthouse.ini (exit code 1): File 'lighthouse.pov' line 4: Parse Error: "
        "No matching } in 'light_source', undeclared identifier 'colr' found instead"
    )
    assert "Persistence of Vision" not in manifest["processor_log"]
    assert manifest["processor_log"].endswith("Render failed")
    assert manifest["ignored"] == IGNORED
