"""worker.archive on well-formed archives: every format, folders, unicode names, modes, nested archives,
the suffix rules and flat memory on a large member."""

from __future__ import annotations

import stat
import tarfile
import tracemalloc
import zipfile

import pytest

from worker.archive import (
    ARCHIVE_SUFFIXES,
    CHUNK_BYTES,
    ArchiveError,
    UnpackedMember,
    UnpackLimits,
    archive_suffix,
    unpack,
)

LIMITS = UnpackLimits(max_members=1000, max_unpacked_bytes=200 * 1024 * 1024)
MIB = 1024 * 1024
FILES = {
    "scene.ini": b"Input_File_Name=scene.pov\n",
    "scene.pov": b'#include "colors.inc"\n' * 50,
    "textures/wood/oak.inc": b"// oak\n",
    "données/café ☕.txt": "unicode ✓".encode(),
}


def build_archive(build, workspace, suffix, files):
    path = workspace.archive(f"input{suffix}")
    if suffix == ".zip":
        return build.make_zip(path, files.items())
    mode = "w" if suffix == ".tar" else "w:gz"
    return build.make_tar(path, [build.tar_member(name, data) for name, data in files.items()], mode=mode)


@pytest.mark.parametrize("suffix", ARCHIVE_SUFFIXES)
def test_unpack_writes_every_file_of_each_format(workspace, build, suffix):
    # GIVEN an archive of nested folders and unicode names
    archive = build_archive(build, workspace, suffix, FILES)

    # WHEN it is unpacked
    members = unpack(archive, workspace.into, LIMITS).members

    # THEN every file is there with its content, and the result lists each one
    assert sorted(member.name for member in members) == sorted(FILES)
    for member in members:
        assert member.path == workspace.into.resolve() / member.name
        assert member.path.read_bytes() == FILES[member.name]
        assert member.size == len(FILES[member.name])
    assert workspace.outside() == {workspace.archive("x").parent, archive, workspace.sentinel, workspace.root / "job"}


def test_unpack_gives_files_0644_and_folders_0755_whatever_the_archive_says(workspace, build):
    # GIVEN members marked setuid, executable and world-writable
    executable = zipfile.ZipInfo("bin/tool")
    executable.create_system = 3
    executable.external_attr = (stat.S_IFREG | stat.S_ISUID | 0o777) << 16
    folder = zipfile.ZipInfo("shared/")
    folder.create_system = 3
    folder.external_attr = (stat.S_IFDIR | 0o777) << 16 | 0x10
    archive = build.make_zip(workspace.archive("modes.zip"), [(executable, b"#!/bin/sh\n"), (folder, b"")])

    # WHEN it is unpacked
    unpack(archive, workspace.into, LIMITS)

    # THEN no mode bit came from the archive
    assert stat.S_IMODE((workspace.into / "bin" / "tool").stat().st_mode) == 0o644
    assert stat.S_IMODE((workspace.into / "bin").stat().st_mode) == 0o755
    assert stat.S_IMODE((workspace.into / "shared").stat().st_mode) == 0o755


def test_unpack_tar_drops_setuid_and_exec_bits(workspace, build):
    archive = build.make_tar(
        workspace.archive("modes.tar"), [build.tar_member("run.sh", b"echo\n", mode=0o4777)], mode="w"
    )

    unpack(archive, workspace.into, LIMITS)

    assert stat.S_IMODE((workspace.into / "run.sh").stat().st_mode) == 0o644


def test_unpack_leaves_nested_archives_as_files(workspace, build):
    # GIVEN a zip that holds a zip and a tar.gz
    inner_zip = build.make_zip(workspace.root / "inner.zip", [("deep.txt", b"deep")])
    inner_tgz = build.make_tar(workspace.root / "inner.tgz", [build.tar_member("deep.txt", b"deep")], mode="w:gz")
    archive = build.make_zip(
        workspace.archive("outer.zip"), [("inner.zip", inner_zip.read_bytes()), ("inner.tgz", inner_tgz.read_bytes())]
    )

    # WHEN it is unpacked
    members = unpack(archive, workspace.into, LIMITS).members

    # THEN the inner archives are plain files, byte for byte, and nothing of theirs was unpacked
    assert [(member.name, member.path.read_bytes()) for member in members] == [
        ("inner.zip", inner_zip.read_bytes()),
        ("inner.tgz", inner_tgz.read_bytes()),
    ]
    assert not list(workspace.into.rglob("deep.txt"))


def test_unpack_creates_empty_folders_and_accepts_repeated_folder_entries(workspace, build):
    archive = build.make_tar(
        workspace.archive("folders.tar"),
        [
            build.tar_member("out", kind=tarfile.DIRTYPE),
            build.tar_member("out", kind=tarfile.DIRTYPE),
            build.tar_member("./scene.pov", b"sphere"),
            build.tar_member("empty/", kind=tarfile.DIRTYPE),
        ],
        mode="w",
    )

    members = unpack(archive, workspace.into, LIMITS).members

    assert [member.name for member in members] == ["scene.pov"]
    assert (workspace.into / "out").is_dir()
    assert (workspace.into / "empty").is_dir()


def test_unpack_accepts_utf8_zip_names_written_without_the_utf8_flag(workspace, build):
    # GIVEN a zip whose UTF-8 names lack the UTF-8 flag, as Info-ZIP on Linux writes them
    archive = build.make_zip(workspace.archive("infozip.zip"), [("café.pov", b"sphere")])

    def clear_utf8_flag(data: bytearray) -> None:
        local, central = build.zip_header_offsets(bytes(data))
        for offset in local:
            data[offset + 7] &= 0xF7  # bit 11 of the flags at offset 6
        for offset in central:
            data[offset + 9] &= 0xF7  # bit 11 of the flags at offset 8

    build.patch_zip(archive, clear_utf8_flag)
    assert not zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x800

    # WHEN it is unpacked
    members = unpack(archive, workspace.into, LIMITS).members

    # THEN the name is read as UTF-8, not as cp437 mojibake
    assert [member.name for member in members] == ["café.pov"]


def test_unpack_takes_the_format_from_the_suffix_argument(workspace, build):
    # GIVEN a zip downloaded to a file without a suffix (the S3 key had it)
    archive = build.make_zip(workspace.archive("download.part"), [("a.txt", b"a")])

    members = unpack(archive, workspace.into, LIMITS, suffix=".ZIP").members

    assert [member.name for member in members] == ["a.txt"]


def test_unpack_creates_the_target_folder(workspace, build):
    archive = build.make_zip(workspace.archive("a.zip"), [("a.txt", b"a")])
    target = workspace.into / "deeper" / "still"

    members = unpack(archive, target, LIMITS).members

    assert members == [UnpackedMember(path=target.resolve() / "a.txt", name="a.txt", size=1)]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("incoming/scene.zip", ".zip"),
        ("incoming/SCENE.ZIP", ".zip"),
        ("a/b.tar.gz", ".tar.gz"),
        ("a/b.TAR.GZ", ".tar.gz"),
        ("b.tgz", ".tgz"),
        ("b.tar", ".tar"),
        ("b.gz", None),
        ("b.zip.txt", None),
        ("zip", None),
        ("", None),
    ],
)
def test_archive_suffix_is_case_insensitive_and_longest_first(key, expected):
    assert archive_suffix(key) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"max_members": 0, "max_unpacked_bytes": 1},
        {"max_members": 1, "max_unpacked_bytes": 0},
        {"max_members": 1, "max_unpacked_bytes": 1, "max_ratio": 0.5},
        {"max_members": 1, "max_unpacked_bytes": 1, "max_ratio": float("nan")},
    ],
)
def test_unpack_limits_refuse_nonsense(fields):
    with pytest.raises(ValueError, match="must be at least 1"):
        UnpackLimits(**fields)


@pytest.mark.parametrize("suffix", [".zip", ".tgz"])
def test_unpack_streams_a_large_member_in_flat_memory(workspace, build, suffix):
    # GIVEN a 50 MiB member (zeros, with the ratio limit lifted so that it is unpacked)
    size = 50 * MIB
    if suffix == ".zip":
        archive = build.zip_of_zeros(workspace.archive("big.zip"), "big.bin", size)
    else:
        archive = build.tar_of_zeros(workspace.archive("big.tgz"), "big.bin", size)
    limits = UnpackLimits(max_members=10, max_unpacked_bytes=size, max_ratio=10_000)

    # WHEN it is unpacked under tracemalloc
    tracemalloc.start()
    try:
        members = unpack(archive, workspace.into, limits).members
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # THEN it is all there, and memory never held more than a few chunks of it (the chunk passes through
    # gzip's, tarfile's and zipfile's buffers: about 5 MiB at most, the same for 10 MiB as for 50 MiB)
    assert members[0].size == size
    assert members[0].path.stat().st_size == size
    assert peak < 8 * CHUNK_BYTES, f"peak traced memory {peak / MIB:.1f} MiB"


def test_unpack_refuses_an_unknown_suffix(workspace, build):
    archive = build.make_zip(workspace.archive("scene.rar"), [("a.txt", b"a")])

    message = workspace.rejected(archive, ArchiveError)

    assert message == "'scene.rar' is not a supported archive; use one of .tar.gz, .tgz, .tar, .zip"
