"""Zip member names in legacy code pages: the Info-ZIP Unicode Path extra field (0x7075) is used when it is
for the stored name (its CRC matches), as `unzip` does; a name with no valid Unicode form is refused.

The zips are packed by hand, as WinRAR and 7-Zip write them: the code-page name without the UTF-8 flag
(bit 11), and the real name in the 0x7075 field of the central directory.
"""

from __future__ import annotations

import unicodedata

import pytest

from worker.archive import ArchiveError, UnpackLimits, UnsafeArchive, unpack

LIMITS = UnpackLimits(max_members=1000, max_unpacked_bytes=1 << 20)
UTF8_FLAG = 0x800


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("café.pov", "cp437"),  # é is 0x82 in the original IBM PC code page
        ("сцена.pov", "cp866"),  # Russian DOS code page, WinRAR's OEM names on a Russian Windows
        ("naïve/résumé.ini", "cp1252"),  # Western Windows, as some tools write it
        ("灯台.pov", "shift_jis"),  # Japanese Windows
        ("表.pov", "shift_jis"),  # 0x95 0x5C: its second byte is a backslash, read bytewise
    ],
)
def test_unpack_uses_the_unicode_path_field_of_a_legacy_name(workspace, build, name, codec):
    # GIVEN a zip whose stored name is in a legacy code page (no UTF-8 flag), with a matching 0x7075 field
    stored = name.encode(codec)
    archive = build.raw_zip(workspace.archive("legacy.zip"), [(stored, b"scene", 0, build.unicode_path(name, stored))])

    # WHEN it is unpacked
    members = unpack(archive, workspace.into, LIMITS).members

    # THEN the file has its real name
    assert [member.name for member in members] == [name]
    assert (workspace.into / name).read_bytes() == b"scene"


def test_unpack_prefers_the_unicode_path_field_to_an_ascii_stand_in(workspace, build):
    # GIVEN a stored name that is a best-fit ASCII stand-in ("caf_.pov") for the field's real name
    archive = build.raw_zip(
        workspace.archive("fit.zip"), [(b"caf_.pov", b"x", 0, build.unicode_path("café.pov", b"caf_.pov"))]
    )

    members = unpack(archive, workspace.into, LIMITS).members

    assert [member.name for member in members] == ["café.pov"]


def test_unpack_refuses_a_legacy_name_whose_unicode_field_is_for_another_name(workspace, build):
    # GIVEN a field whose CRC is not the stored name's (a tool renamed the member and kept the old field)
    stored = "café.pov".encode("cp437")
    field = build.unicode_path("other.pov", b"other.pov")
    archive = build.raw_zip(workspace.archive("stale.zip"), [(stored, b"x", 0, field)])

    message = workspace.rejected(archive, ArchiveError)

    assert message == (
        "member name b'caf\\x82.pov' is not UTF-8 and its Unicode name (zip extra field 0x7075) is for another "
        "name (CRC mismatch); re-create the archive with UTF-8 names"
    )


def test_unpack_keeps_a_utf8_stored_name_when_the_unicode_field_is_for_another_name(workspace, build):
    archive = build.raw_zip(
        workspace.archive("stale.zip"), [(b"scene.pov", b"x", 0, build.unicode_path("évil.pov", b"other"))]
    )

    members = unpack(archive, workspace.into, LIMITS).members

    assert [member.name for member in members] == ["scene.pov"]


@pytest.mark.parametrize(
    "make_field",
    [
        lambda build, stored: b"",  # no field at all
        lambda build, stored: build.unicode_path("сцена.pov", stored, version=2),  # a version this rule does not know
        lambda build, stored: build.unicode_path(b"", stored),  # empty (Python 3.12 warns, keeps the stored name)
    ],
    ids=["missing", "version-2", "empty"],
)
def test_unpack_refuses_a_legacy_name_without_a_usable_unicode_name(workspace, build, make_field):
    stored = "сцена.pov".encode("cp866")
    extra = make_field(build, stored)
    archive = build.raw_zip(workspace.archive("cp866.zip"), [(stored, b"x", 0, extra)])

    message = workspace.rejected(archive, ArchiveError)

    assert message == (
        "member name b'\\xe1\\xe6\\xa5\\xad\\xa0.pov' is not UTF-8 and the archive gives no Unicode name for it "
        "(zip extra field 0x7075); re-create the archive with UTF-8 names"
    )


def test_unpack_refuses_a_unicode_field_too_short_for_its_header(workspace, build):
    archive = build.raw_zip(workspace.archive("short.zip"), [(b"a.pov", b"x", 0, b"\x75\x70\x03\x00\x01\x00\x00")])

    message = workspace.rejected(archive, ArchiveError)

    assert message == (
        "member name b'a.pov' has a corrupt Unicode Path extra field (0x7075): 3 bytes, too short for its header; "
        "the archive is corrupt"
    )


def test_unpack_refuses_a_unicode_field_for_this_name_that_is_not_utf8(workspace, build):
    archive = build.raw_zip(
        workspace.archive("bad.zip"), [(b"a.pov", b"x", 0, build.unicode_path(b"\xff.pov", b"a.pov"))]
    )

    message = workspace.rejected(archive, ArchiveError)

    assert message == (
        "member name b'a.pov' has a Unicode Path extra field (0x7075) whose name b'\\xff.pov' is not valid UTF-8; "
        "the archive is corrupt"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape.pov", "has a '..' component"),
        ("/etc/cron.d/x", "has an absolute path"),
        ("a\\..\\b.pov", "has a '..' component"),  # raw_zip writes host MS-DOS: backslashes separate
        ("line\nbreak.pov", "contains control characters"),
    ],
)
def test_unpack_checks_the_unicode_name_like_any_other(workspace, build, name, reason):
    # GIVEN a harmless stored name, and a hostile name in its (matching) Unicode Path field
    archive = build.raw_zip(
        workspace.archive("slip.zip"), [(b"safe.pov", b"x", 0, build.unicode_path(name, b"safe.pov"))]
    )

    message = workspace.rejected(archive, UnsafeArchive)

    assert reason in message


def test_unpack_ignores_the_unicode_field_when_the_utf8_flag_is_set(workspace, build):
    # GIVEN a name flagged UTF-8 (so already Unicode) that also carries a field naming something else
    archive = build.raw_zip(
        workspace.archive("flagged.zip"),
        [("été.pov".encode(), b"x", UTF8_FLAG, build.unicode_path("other.pov", "été.pov".encode()))],
    )

    members = unpack(archive, workspace.into, LIMITS).members

    assert [member.name for member in members] == ["été.pov"]


@pytest.mark.parametrize("suffix", [".zip", ".tar"])
def test_unpack_writes_decomposed_names_composed(workspace, build, suffix):
    # GIVEN names as macOS stores them: decomposed (NFD), "e" followed by a combining acute accent
    decomposed = unicodedata.normalize("NFD", "scènes/café.pov")
    assert decomposed != "scènes/café.pov"
    members = [(decomposed, b"sphere")]
    if suffix == ".zip":
        archive = build.make_zip(workspace.archive("nfd.zip"), members)
    else:
        archive = build.make_tar(workspace.archive("nfd.tar"), [build.tar_member(n, d) for n, d in members])

    # WHEN unpacked
    unpacked = unpack(archive, workspace.into, LIMITS)

    # THEN they are written composed (NFC), as a scene's #include or an .ini spells them on Linux
    assert [member.name for member in unpacked.members] == ["scènes/café.pov"]
    assert (workspace.into / "scènes" / "café.pov").read_bytes() == b"sphere"


def test_unpack_refuses_two_names_that_differ_only_in_unicode_normalisation(workspace, build):
    archive = build.make_zip(
        workspace.archive("twice.zip"), [("café.pov", b"1"), (unicodedata.normalize("NFD", "café.pov"), b"2")]
    )

    message = workspace.rejected(archive, UnsafeArchive)

    assert "appears more than once in the archive" in message


def test_unpack_reads_backslashes_of_an_msdos_made_zip_as_folder_separators(workspace, build):
    # GIVEN a zip as PowerShell 5's Compress-Archive writes it: host MS-DOS, folders separated with '\'
    archive = build.raw_zip(
        workspace.archive("powershell.zip"),
        [
            (b"scene\\", b"", 0, b""),
            (b"scene\\lighthouse.pov", b"sphere", 0, b""),
            (b"scene\\maps\\sea.png", b"png", 0, b""),
        ],
    )

    members = unpack(archive, workspace.into, LIMITS).members

    assert [member.name for member in members] == ["scene/lighthouse.pov", "scene/maps/sea.png"]
    assert (workspace.into / "scene" / "maps" / "sea.png").read_bytes() == b"png"


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (b"..\\evil.pov", "has a '..' component"),
        (b"scene\\..\\..\\evil.pov", "has a '..' component"),
        (b"C:\\Windows\\evil.pov", "has an absolute path"),
        (b"\\\\server\\share\\evil.pov", "has an absolute path"),
        (b"\\evil.pov", "has an absolute path"),
    ],
)
def test_unpack_still_refuses_slips_written_with_backslashes(workspace, build, stored, reason):
    archive = build.raw_zip(workspace.archive("slip.zip"), [(b"ok.txt", b"ok", 0, b""), (stored, b"evil", 0, b"")])

    assert reason in workspace.rejected(archive, UnsafeArchive)
