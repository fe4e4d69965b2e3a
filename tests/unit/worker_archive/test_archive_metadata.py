"""macOS metadata in archives as Finder and macOS tar make them: left out by explicit rules, listed as ignored,
and never at the expense of a safety rule or of a user's own file that merely looks like it."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile

import pytest

from worker.archive import ArchiveError, IgnoredMember, UnpackLimits, UnsafeArchive, unpack
from worker.archive_metadata import MetadataRule

LIMITS = UnpackLimits(max_members=1000, max_unpacked_bytes=1 << 20)
INI = b"Input_File_Name=lighthouse.pov\nWidth=64\nHeight=48\n"
POV = b"#version 3.7;\nsphere { 0, 1 pigment { color rgb 1 } }\n"


def appledouble(size: int = 4096) -> bytes:
    """A `._name` twin as macOS writes it: AppleDouble header (magic 0x00051607, version 2), Finder info, xattrs."""
    header = b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + struct.pack(">H", 2)
    fork = min(size, 3810)
    entries = struct.pack(">3L", 9, 50, fork - 50) + struct.pack(
        ">3L", 2, fork, size - fork
    )  # Finder info, resource fork
    body = header + entries + b"\x00\x00TEXTttxt" + b"ATTR" + b"com.apple.quarantine\x00"
    return body.ljust(size, b"\x00")


def ds_store() -> bytes:
    """Finder's folder settings: the buddy allocator's header ("Bud1") then its blocks; usually 6148 bytes."""
    return (b"\x00\x00\x00\x01Bud1" + struct.pack(">3L", 0x1000, 0x800, 0x1000) + b"\x00" * 16).ljust(6148, b"\x00")


def finder_zip(build, path, members):
    """A zip as Finder's "Compress" writes it: each folder as an entry, `__MACOSX/` twins, Unix attributes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o40755 << 16 | 0x10) if name.endswith("/") else 0o100644 << 16
            archive.writestr(info, data)
    return path


def pax_xattr_tar(path, members, mode="w"):
    """A tar as macOS `tar` (bsdtar) writes it: `._name` members, and pax headers carrying extended attributes.

    The pax records are written by hand, as libarchive writes them (no hdrcharset; raw bytes in SCHILY.xattr).
    """

    def record(key: str, value: bytes) -> bytes:
        body = f" {key}=".encode() + value + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
        return str(length).encode() + body

    with tarfile.open(path, mode, format=tarfile.USTAR_FORMAT) as archive:  # type: ignore[call-overload]
        for name, data in members:
            records = record("LIBARCHIVE.xattr.com.apple.quarantine", b"MDA4MTs2NTZhMzRmMjtTYWZhcmk7") + record(
                "SCHILY.xattr.com.apple.FinderInfo", b"\x00" * 8 + b"TEXTttxt" + b"\xff\x00" * 8
            )
            pax = tarfile.TarInfo(f"./PaxHeader/{name.removeprefix('./')}")
            pax.type = tarfile.XHDTYPE
            pax.size = len(records)
            archive.addfile(pax, io.BytesIO(records))
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_unpack_leaves_out_what_finder_adds_to_a_zip(workspace, build):
    # GIVEN the example: a Finder zip of a scene, with its __MACOSX twin and .DS_Store
    archive = finder_zip(
        build,
        workspace.archive("lighthouse.zip"),
        [
            ("lighthouse.ini", INI),
            ("lighthouse.pov", POV),
            ("__MACOSX/", b""),
            ("__MACOSX/._lighthouse.pov", appledouble()),
            (".DS_Store", ds_store()),
        ],
    )

    # WHEN it is unpacked
    unpacked = unpack(archive, workspace.into, LIMITS)

    # THEN only the scene is written, and each piece of metadata is listed with the rule that dropped it
    assert [member.name for member in unpacked.members] == ["lighthouse.ini", "lighthouse.pov"]
    assert sorted(path.name for path in workspace.into.iterdir()) == ["lighthouse.ini", "lighthouse.pov"]
    assert unpacked.ignored == [
        IgnoredMember(".DS_Store", MetadataRule.DS_STORE),
        IgnoredMember("__MACOSX/._lighthouse.pov", MetadataRule.MACOSX_FOLDER),
    ]
    assert [member.to_dict() for member in unpacked.ignored] == [
        {"name": ".DS_Store", "rule": "macos-ds-store"},
        {"name": "__MACOSX/._lighthouse.pov", "rule": "macos-__MACOSX"},
    ]


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_unpack_leaves_out_appledouble_members_of_a_macos_tar(workspace, build, mode):
    # GIVEN `tar czf scene.tgz .` on macOS: ./._name before each file, pax headers with its extended attributes
    archive = pax_xattr_tar(
        workspace.archive("scene.tar" if mode == "w" else "scene.tgz"),
        [
            ("./._lighthouse.ini", appledouble(163)),
            ("./lighthouse.ini", INI),
            ("./._lighthouse.pov", appledouble(4096)),
            ("./lighthouse.pov", POV),
        ],
        mode=mode,
    )

    unpacked = unpack(archive, workspace.into, LIMITS)

    # THEN the files are written (their xattrs not restored) and the AppleDouble twins are ignored
    assert [member.name for member in unpacked.members] == ["lighthouse.ini", "lighthouse.pov"]
    assert (workspace.into / "lighthouse.pov").read_bytes() == POV
    assert unpacked.ignored == [
        IgnoredMember("./._lighthouse.ini", MetadataRule.APPLEDOUBLE),
        IgnoredMember("./._lighthouse.pov", MetadataRule.APPLEDOUBLE),
    ]


@pytest.mark.parametrize("suffix", [".zip", ".tar"])
def test_unpack_leaves_out_the_icon_file_of_a_folder_with_a_custom_icon(workspace, build, suffix):
    # GIVEN a folder with a custom icon: an empty "Icon\r" (and, from Finder, its resource fork in __MACOSX)
    members = [("scene/Icon\r", b""), ("scene/scene.pov", POV)]
    if suffix == ".zip":
        archive = finder_zip(
            build, workspace.archive("icon.zip"), [*members, ("__MACOSX/scene/._Icon\r", appledouble())]
        )
    else:
        archive = build.make_tar(
            workspace.archive("icon.tar"),
            [build.tar_member("scene/._Icon\r", appledouble()), *(build.tar_member(n, d) for n, d in members)],
        )

    unpacked = unpack(archive, workspace.into, LIMITS)

    assert [member.name for member in unpacked.members] == ["scene/scene.pov"]
    expected = {
        ".zip": [("__MACOSX/scene/._Icon\r", MetadataRule.MACOSX_FOLDER), ("scene/Icon\r", MetadataRule.ICON)],
        ".tar": [("scene/._Icon\r", MetadataRule.APPLEDOUBLE), ("scene/Icon\r", MetadataRule.ICON)],
    }[suffix]
    assert unpacked.ignored == [IgnoredMember(name, rule) for name, rule in expected]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("._notes.txt", b"my own notes, named with a leading ._\n"),  # not AppleDouble content
        ("._x", b"\x00\x05\x16"),  # shorter than the header
        ("._single", b"\x00\x05\x16\x00\x00\x02\x00\x00" + b"\x00" * 40),  # AppleSingle, not AppleDouble
        (".DS_Store", b"not Finder's\n"),
        ("project/__MACOSX/readme.txt", b"a folder of that name below the top is a user's\n"),
        ("Icon", b"a file named Icon, without the carriage return\n"),
    ],
)
def test_unpack_keeps_a_users_file_that_only_looks_like_metadata(workspace, build, name, data):
    archive = build.make_zip(workspace.archive("mine.zip"), [(name, data), ("scene.pov", POV)])

    unpacked = unpack(archive, workspace.into, LIMITS)

    assert sorted(member.name for member in unpacked.members) == sorted([name, "scene.pov"])
    assert (workspace.into / name).read_bytes() == data
    assert unpacked.ignored == []


def test_unpack_leaves_out_appledouble_twins_below_the_top_by_their_content(workspace, build):
    # GIVEN a Finder zip that was unpacked and zipped again inside a folder: its __MACOSX is no longer at the top
    archive = build.make_zip(
        workspace.archive("rezipped.zip"), [("project/scene.pov", POV), ("project/__MACOSX/._scene.pov", appledouble())]
    )

    unpacked = unpack(archive, workspace.into, LIMITS)

    assert [member.name for member in unpacked.members] == ["project/scene.pov"]
    assert unpacked.ignored == [IgnoredMember("project/__MACOSX/._scene.pov", MetadataRule.APPLEDOUBLE)]
    assert not (workspace.into / "project" / "__MACOSX").exists()


ICON_RULE = (
    "contains control characters (the \\r of Icon\\r): only an EMPTY file named Icon\\r (or a ._Icon\\r holding "
    "an AppleDouble header) is Finder's custom-icon metadata, which is left out; this one"
)


@pytest.mark.parametrize(
    ("member", "found"),
    [
        (("Icon\r", b"data"), "holds 4 bytes"),  # Finder's Icon\r is always empty: the icon is in its resource fork
        (("scene/Icon\r", b"x" * 100), "holds 100 bytes"),
        (("._Icon\r", b"not AppleDouble"), "is not AppleDouble"),
        (("Icon\r/inside.pov", POV), "is a folder"),
    ],
)
@pytest.mark.parametrize("suffix", [".zip", ".tar"])
def test_unpack_refuses_an_icon_name_that_is_not_finders_saying_only_an_empty_one_is(
    workspace, build, member, found, suffix
):
    # GIVEN an archive whose Icon\r is not the empty file Finder writes
    name, data = member
    members = [(name, data), ("scene.pov", POV)]
    if suffix == ".zip":
        archive = build.make_zip(workspace.archive("icon.zip"), members)
    else:
        archive = build.make_tar(workspace.archive("icon.tar"), [build.tar_member(n, d) for n, d in members])

    # WHEN unpacked
    message = workspace.rejected(archive, UnsafeArchive)

    # THEN one line says that only an EMPTY Icon\r is metadata, and what this one is
    assert message == f"member name {name!r} {ICON_RULE} {found}"


def test_unpack_refuses_a_tar_folder_named_icon_saying_it_is_a_folder(workspace, build):
    archive = build.make_tar(
        workspace.archive("icon.tar"),
        [build.tar_member("Icon\r", kind=tarfile.DIRTYPE), build.tar_member("scene.pov", POV)],
    )

    assert workspace.rejected(archive, UnsafeArchive) == f"member name 'Icon\\r' {ICON_RULE} is a folder"


def test_unpack_names_other_control_characters_beside_an_icon_name_plainly(workspace, build):
    # GIVEN an Icon\r folder holding a name with a bell: not an Icon\r question only
    archive = build.make_zip(workspace.archive("bell.zip"), [("Icon\r/bell\x07", b"x"), ("scene.pov", POV)])

    assert workspace.rejected(archive, UnsafeArchive) == "member name 'Icon\\r/bell\\x07' contains control characters"


@pytest.mark.parametrize(
    ("members", "error", "reason"),
    [
        ([("__MACOSX/../../escape.pov", appledouble())], UnsafeArchive, "has a '..' component"),
        ([("/__MACOSX/._x", appledouble())], UnsafeArchive, "has an absolute path"),
        ([("__MACOSX/bell\x07", b"")], UnsafeArchive, "contains control characters"),
        ([("scene/../Icon\r", b"")], UnsafeArchive, "has a '..' component"),
    ],
)
def test_unpack_checks_metadata_names_like_any_other(workspace, build, members, error, reason):
    archive = build.make_zip(workspace.archive("hostile.zip"), [*members, ("scene.pov", POV)])

    assert reason in workspace.rejected(archive, error)


def test_unpack_refuses_a_link_disguised_as_metadata(workspace, build):
    archive = build.make_tar(
        workspace.archive("link.tar"),
        [build.tar_member("._scene.pov", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), build.tar_member("a", b"x")],
    )

    assert "is a symbolic link" in workspace.rejected(archive, UnsafeArchive)


def test_unpack_counts_metadata_against_the_limits(workspace, build):
    # GIVEN a __MACOSX member whose header declares more bytes than the archive may unpack to
    archive = build.tar_of_zeros(workspace.archive("big.tar"), "__MACOSX/._big", 3 << 20, mode="w")
    limits = UnpackLimits(max_members=1000, max_unpacked_bytes=2 << 20)

    message = workspace.rejected(archive, UnsafeArchive, limits)

    assert "MAX_UNPACKED_BYTES" in message


def test_unpack_counts_metadata_against_max_members(workspace, build):
    archive = finder_zip(
        build, workspace.archive("many.zip"), [("a.pov", POV), *((f"__MACOSX/._{i}", b"") for i in range(5))]
    )

    message = workspace.rejected(archive, UnsafeArchive, UnpackLimits(max_members=4, max_unpacked_bytes=1 << 20))

    assert "more than 4 members" in message


def test_unpack_says_when_an_archive_holds_only_metadata(workspace, build):
    archive = finder_zip(
        build, workspace.archive("empty.zip"), [("__MACOSX/._a", appledouble()), (".DS_Store", ds_store())]
    )

    message = workspace.rejected(archive, ArchiveError)

    assert message == (
        "the archive holds no files other than macOS metadata, which is left out ('.DS_Store', '__MACOSX/._a')"
    )
