"""worker.archive against hostile and broken archives, each built here: the right exception, a clear
message, and nothing written outside the job folder (`workspace.rejected` checks the last two)."""

from __future__ import annotations

import gzip
import os
import tarfile
import tracemalloc
import warnings
import zipfile

import pytest

from worker.archive import ArchiveError, UnpackLimits, UnsafeArchive, _Destination

LIMITS = UnpackLimits(max_members=1000, max_unpacked_bytes=200 * 1024 * 1024)
MIB = 1024 * 1024


# ------------------------------------------------------------------------------------ escaping paths

SLIP_NAMES = [
    ("../evil.txt", "'..' component"),
    ("good/../../evil.txt", "'..' component"),
    ("/tmp/evil.txt", "absolute path"),
    ("//server/evil.txt", "absolute path"),
    ("C:/evil.txt", "absolute path"),
    ("c:evil.txt", "absolute path"),
    ("..\\evil.txt", "backslash"),
    ("C:\\Windows\\evil.txt", "backslash"),
    ("\\\\server\\share\\evil.txt", "backslash"),
]


@pytest.mark.parametrize(("name", "reason"), SLIP_NAMES)
def test_unpack_refuses_zip_slip(workspace, build, name, reason):
    # GIVEN a zip whose second member would land outside the folder
    archive = build.make_zip(workspace.archive("slip.zip"), [("ok.txt", b"ok"), (zipfile.ZipInfo(name), b"evil")])
    assert zipfile.ZipFile(archive).namelist()[1] == name  # zipfile kept the hostile name as written

    # WHEN it is unpacked THEN it is refused, naming the member and the reason
    message = workspace.rejected(archive, UnsafeArchive)
    assert repr(name) in message
    assert reason in message
    assert not list(workspace.into.rglob("ok.txt")), "nothing is written once the central directory shows a bad name"


@pytest.mark.parametrize(("name", "reason"), SLIP_NAMES)
@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_unpack_refuses_tar_slip(workspace, build, name, reason, mode):
    archive = build.make_tar(
        workspace.archive("slip.tar" if mode == "w" else "slip.tar.gz"),
        [build.tar_member("ok.txt", b"ok"), build.tar_member(name, b"evil")],
        mode=mode,
    )

    message = workspace.rejected(archive, UnsafeArchive)

    assert repr(name) in message
    assert reason in message


def test_unpack_never_writes_through_a_symlink_already_in_the_folder(workspace, build):
    # GIVEN a job folder that somehow holds a link to the sentinel folder
    workspace.into.mkdir(parents=True)
    (workspace.into / "link").symlink_to(workspace.sentinel)
    archive = build.make_zip(workspace.archive("through.zip"), [("link/evil.txt", b"evil")])

    # WHEN an archive writes below that name THEN it is refused and the sentinel stays empty
    message = workspace.rejected(archive, UnsafeArchive)
    assert "'link/evil.txt'" in message


def test_unpack_never_overwrites_a_file_already_in_the_folder(workspace, build):
    workspace.into.mkdir(parents=True)
    (workspace.into / "keep.txt").write_text("mine")
    archive = build.make_zip(workspace.archive("overwrite.zip"), [("keep.txt", b"theirs")])

    message = workspace.rejected(archive, UnsafeArchive)

    assert "'keep.txt' would overwrite a file" in message
    assert (workspace.into / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("name", ["a.txt\x00.pov", "line\nbreak.txt", "bell\x07"])
def test_unpack_refuses_control_characters_in_names(workspace, build, name):
    # zipfile would cut a name at NUL when writing it, so the name is patched in afterwards
    placeholder = "~" * len(name)
    archive = build.make_zip(workspace.archive("control.zip"), [(zipfile.ZipInfo(placeholder), b"x")])
    build.patch_zip(
        archive, lambda data: data.__setitem__(slice(None), data.replace(placeholder.encode(), name.encode()))
    )

    message = workspace.rejected(archive, UnsafeArchive)

    assert "control characters" in message
    assert repr(name) in message


def test_unpack_refuses_names_too_long_for_the_file_system(workspace, build):
    archive = build.make_tar(workspace.archive("long.tar"), [build.tar_member("a" * 300, b"x")], mode="w")

    message = workspace.rejected(archive, ArchiveError)

    assert "too long" in message


# ------------------------------------------------------------------------------- links and devices


def test_unpack_refuses_a_zip_symlink(workspace, build):
    archive = build.make_zip(workspace.archive("link.zip"), [build.zip_symlink("passwd", "/etc/passwd")])

    message = workspace.rejected(archive, UnsafeArchive)

    assert message == "member 'passwd' is a symbolic link; links are not unpacked"


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        (tarfile.SYMTYPE, {"linkname": "/etc/passwd"}, "member 'x' is a symbolic link to '/etc/passwd'"),
        (tarfile.SYMTYPE, {"linkname": "../../outside"}, "member 'x' is a symbolic link to '../../outside'"),
        (tarfile.LNKTYPE, {"linkname": "ok.txt"}, "member 'x' is a hard link to 'ok.txt'"),
        (tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3}, "member 'x' is a character device"),
        (tarfile.BLKTYPE, {"devmajor": 8, "devminor": 0}, "member 'x' is a block device"),
        (tarfile.FIFOTYPE, {}, "member 'x' is a FIFO"),
    ],
)
def test_unpack_refuses_tar_links_and_devices(workspace, build, kind, fields, expected):
    archive = build.make_tar(
        workspace.archive("special.tgz"),
        [build.tar_member("ok.txt", b"ok"), build.tar_member("x", kind=kind, **fields)],
        mode="w:gz",
    )

    message = workspace.rejected(archive, UnsafeArchive)

    assert message.startswith(expected)
    assert not (workspace.into / "x").exists()


@pytest.mark.parametrize(("file_type", "expected"), [(0o020000, "character device"), (0o010000, "FIFO")])
def test_unpack_refuses_zip_devices(workspace, build, file_type, expected):
    info = zipfile.ZipInfo("dev")
    info.create_system = 3
    info.external_attr = (file_type | 0o644) << 16
    archive = build.make_zip(workspace.archive("dev.zip"), [(info, b"")])

    message = workspace.rejected(archive, UnsafeArchive)

    assert expected in message


# -------------------------------------------------------------------------------------------- bombs


def test_unpack_refuses_a_zip_bomb_before_writing(workspace, build):
    # GIVEN 50 MiB of zeros deflated to about 50 KiB (a ratio near 1000)
    archive = build.zip_of_zeros(workspace.archive("bomb.zip"), "zeros.bin", 50 * MIB)

    # WHEN it is unpacked THEN the declared ratio refuses it before a byte is written
    message = workspace.rejected(archive, UnsafeArchive)
    assert "member 'zeros.bin' expands to more than 100 times its compressed size" in message
    assert "compression bomb" in message
    assert not (workspace.into / "zeros.bin").exists()


def test_unpack_refuses_a_bomb_of_many_small_members_by_the_total_ratio(workspace, build):
    # GIVEN 40 members of 1 MiB of zeros: each is under the 1 MiB grace, the total is not
    archive = build.make_zip(workspace.archive("many-bombs.zip"), [(f"z{i}", bytes(MIB)) for i in range(40)])

    message = workspace.rejected(archive, UnsafeArchive)

    assert "the archive unpacks to more than 100 times its own size" in message


def test_unpack_refuses_a_tar_gz_bomb(workspace, build):
    archive = build.tar_of_zeros(workspace.archive("bomb.tar.gz"), "zeros.bin", 50 * MIB)

    message = workspace.rejected(archive, UnsafeArchive)

    assert "the archive unpacks to more than 100 times its own size" in message


def test_unpack_refuses_more_than_max_unpacked_bytes(workspace, build):
    archive = build.make_zip(
        workspace.archive("big.zip"), [("a.bin", os.urandom(MIB)), ("b.bin", os.urandom(MIB))], zipfile.ZIP_STORED
    )

    message = workspace.rejected(archive, UnsafeArchive, UnpackLimits(max_members=10, max_unpacked_bytes=MIB + 1))

    assert message == "the archive unpacks to more than 1.0 MiB, the limit (MAX_UNPACKED_BYTES)"


def test_unpack_stops_a_zip_member_whose_header_understates_its_size(workspace, build):
    # GIVEN a 50 MiB member of zeros whose central directory claims 1000 bytes, slipping past the ratio check
    archive = build.zip_of_zeros(workspace.archive("liar.zip"), "zeros.bin", 50 * MIB)

    def understate(data: bytearray) -> None:
        _, central = build.zip_header_offsets(bytes(data))
        data[central[0] + 24 : central[0] + 28] = (1000).to_bytes(4, "little")  # the uncompressed size

    build.patch_zip(archive, understate)
    assert zipfile.ZipFile(archive).infolist()[0].file_size == 1000

    # WHEN it is unpacked THEN no more than the declared size is written, and the lie is reported
    message = workspace.rejected(archive, ArchiveError)
    assert "member 'zeros.bin' is corrupt or truncated" in message
    assert (workspace.into / "zeros.bin").stat().st_size <= 1000


def test_write_file_counts_bytes_while_writing_whatever_the_headers_say(workspace):
    # GIVEN a member stream that never ends (a header that lied in a way no library caught)
    class Endless:
        def read(self, size: int, /) -> bytes:
            return bytes(size)

    workspace.into.mkdir(parents=True)
    limits = UnpackLimits(max_members=10, max_unpacked_bytes=3 * MIB, max_ratio=10**9)

    # WHEN it is written THEN writing stops at the limit, not at the end of the stream
    with _Destination(workspace.into, limits, archive_bytes=1) as destination, pytest.raises(UnsafeArchive) as caught:
        destination.write_file("endless", ("endless",), Endless(), compressed_size=None)
    assert "MAX_UNPACKED_BYTES" in str(caught.value)
    assert (workspace.into / "endless").stat().st_size <= 3 * MIB


def test_write_file_checks_each_members_actual_ratio_while_writing(workspace):
    class Endless:
        def read(self, size: int, /) -> bytes:
            return bytes(size)

    workspace.into.mkdir(parents=True)
    limits = UnpackLimits(max_members=10, max_unpacked_bytes=10**12)

    with _Destination(workspace.into, limits, archive_bytes=10**12) as destination, pytest.raises(UnsafeArchive) as c:
        destination.write_file("endless", ("endless",), Endless(), compressed_size=1)
    assert "member 'endless' expands to more than" in str(c.value)
    assert (workspace.into / "endless").stat().st_size <= 1 * MIB


# ------------------------------------------------------------------------------------- many members


def test_unpack_refuses_100000_zip_members_from_the_central_directory(workspace, build):
    # GIVEN a zip of 100,000 empty members (zip64, as that many needs)
    archive = build.many_members_zip(workspace.archive("many.zip"), 100_000)
    assert len(zipfile.ZipFile(archive).infolist()) == 100_000

    # WHEN it is unpacked under tracemalloc
    tracemalloc.start()
    try:
        message = workspace.rejected(archive, UnsafeArchive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # THEN it is refused before zipfile parses the directory: nothing written, memory small
    assert message == "the archive has more than 1000 members, the limit (MAX_MEMBERS)"
    assert list(workspace.into.iterdir()) == []
    assert peak < 2 * MIB, f"peak traced memory {peak / MIB:.1f} MiB"


def test_unpack_refuses_a_small_zip_over_max_members(workspace, build):
    archive = build.many_members_zip(workspace.archive("few.zip"), 11)

    message = workspace.rejected(archive, UnsafeArchive, UnpackLimits(max_members=10, max_unpacked_bytes=MIB))

    assert "more than 10 members" in message


def test_unpack_refuses_100000_tar_members_as_it_counts_them(workspace, build):
    archive = build.many_members_tar(workspace.archive("many.tar"), 100_000)

    tracemalloc.start()
    try:
        message = workspace.rejected(archive, UnsafeArchive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # THEN it stops at the first member over the limit
    assert message == "the archive has more than 1000 members, the limit (MAX_MEMBERS)"
    assert len(list(workspace.into.iterdir())) == 1000
    assert peak < 4 * MIB, f"peak traced memory {peak / MIB:.1f} MiB"


# ---------------------------------------------------------------------------------- broken archives


def test_unpack_refuses_a_truncated_zip(workspace, build):
    archive = build.make_zip(workspace.archive("cut.zip"), [("a.txt", os.urandom(4096))])
    archive.write_bytes(archive.read_bytes()[:3000])

    message = workspace.rejected(archive, ArchiveError)

    assert message == "the zip archive is truncated or corrupt: its central directory is missing"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_unpack_refuses_a_truncated_tar_gz(workspace, build, keep):
    members = [build.tar_member(f"m{i}.bin", os.urandom(20_000)) for i in range(5)]
    archive = build.make_tar(workspace.archive("cut.tar.gz"), members, mode="w:gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * keep)])

    message = workspace.rejected(archive, ArchiveError)

    assert "truncated" in message


def test_unpack_refuses_a_tar_cut_between_members(workspace, build):
    # GIVEN a tar cut exactly after its first member: tarfile alone would see a shorter, valid archive
    archive = build.make_tar(
        workspace.archive("cut.tar"), [build.tar_member("a.txt", b"a"), build.tar_member("b.txt", b"b")], mode="w"
    )
    archive.write_bytes(archive.read_bytes()[: 2 * tarfile.BLOCKSIZE])

    message = workspace.rejected(archive, ArchiveError)

    assert message == "the tar archive is truncated: it ends without tar's end-of-archive marker"


def test_unpack_refuses_a_tar_cut_inside_a_member(workspace, build):
    archive = build.make_tar(workspace.archive("cut.tar"), [build.tar_member("a.bin", os.urandom(5000))], mode="w")
    archive.write_bytes(archive.read_bytes()[:3000])

    message = workspace.rejected(archive, ArchiveError)

    assert message == "member 'a.bin' is corrupt or truncated: unexpected end of data"


def test_unpack_refuses_zip_patched_data(workspace, build):
    archive = build.make_zip(workspace.archive("patched.zip"), [("a.txt", b"a")], zipfile.ZIP_STORED)

    def set_patched(data: bytearray) -> None:
        local, central = build.zip_header_offsets(bytes(data))
        data[local[0] + 6] |= 0x20
        data[central[0] + 8] |= 0x20

    build.patch_zip(archive, set_patched)

    message = workspace.rejected(archive, ArchiveError)

    assert message.startswith("member 'a.txt' uses a zip feature that is not supported")


def test_unpack_refuses_a_tar_gz_cut_between_members(workspace, build):
    plain = build.make_tar(
        workspace.root / "plain.tar", [build.tar_member("a.txt", b"a"), build.tar_member("b.txt", b"b")], mode="w"
    )
    archive = workspace.archive("cut.tgz")
    archive.write_bytes(gzip.compress(plain.read_bytes()[: 2 * tarfile.BLOCKSIZE]))

    message = workspace.rejected(archive, ArchiveError)

    assert "truncated" in message


def test_unpack_refuses_a_tar_with_a_damaged_header(workspace, build):
    # GIVEN a tar whose second header has a flipped byte (tarfile alone would stop quietly before it)
    archive = build.make_tar(
        workspace.archive("flip.tar"), [build.tar_member("a.txt", b"a"), build.tar_member("b.txt", b"b")], mode="w"
    )
    data = bytearray(archive.read_bytes())
    second_header = 2 * tarfile.BLOCKSIZE
    data[second_header] ^= 0xFF
    archive.write_bytes(bytes(data))

    message = workspace.rejected(archive, ArchiveError)

    assert message == f"the tar archive is corrupt: the header at byte {second_header} is damaged"


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_unpack_refuses_a_zip_with_flipped_bytes(workspace, build, method):
    payload = b"sphere { <0,0,0>, 1 }\n" * 500
    archive = build.make_zip(workspace.archive("flip.zip"), [("scene.pov", payload)], method)
    data = bytearray(archive.read_bytes())
    local, _ = build.zip_header_offsets(bytes(data))
    data[local[0] + 30 + len("scene.pov") + 40] ^= 0x55  # inside the member's data
    archive.write_bytes(bytes(data))

    message = workspace.rejected(archive, ArchiveError)

    assert message.startswith("member 'scene.pov' is corrupt or truncated: ")


def test_unpack_refuses_a_corrupt_gzip_stream(workspace, build):
    archive = build.make_tar(
        workspace.archive("flip.tgz"), [build.tar_member("a.bin", os.urandom(50_000))], mode="w:gz"
    )
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))

    message = workspace.rejected(archive, ArchiveError)

    assert "corrupt" in message


@pytest.mark.parametrize(
    ("suffix", "content", "expected"),
    [
        (".zip", b"just some text, not an archive\n" * 20, "not a zip archive, although its name ends in .zip"),
        (".zip", b"\x1f\x8b\x08\x00" + bytes(100), "(it looks like a gzip-compressed file)"),
        (".tar.gz", b"plain text\n" * 50, "not a gzip-compressed tar archive"),
        (".tgz", b"PK\x03\x04" + bytes(100), "(it looks like a zip archive)"),
        (".tar", b"plain text\n" * 100, "not a valid tar archive"),
        (".tar", b"PK\x03\x04" + bytes(600), "(it looks like a zip archive)"),
        (".tar", b"BZh91AY&SY" + bytes(600), "(it looks like a bzip2-compressed file)"),
        (".tar", b"\x1f\x8b\x08\x00" + bytes(100), "name it .tar.gz"),
        (".tar.gz", b"\x1f\x8b\x08\x00" + bytes(100), "not a valid gzip-compressed tar archive"),
    ],
)
def test_unpack_refuses_content_that_does_not_match_the_suffix(workspace, suffix, content, expected):
    archive = workspace.archive(f"fake{suffix}")
    archive.write_bytes(content)

    message = workspace.rejected(archive, ArchiveError)

    assert expected in message


def test_unpack_refuses_an_encrypted_zip(workspace, build):
    # GIVEN a zip whose member carries the "encrypted" flag (zipfile cannot write real encryption)
    archive = build.make_zip(workspace.archive("secret.zip"), [("secret.txt", b"\x00" * 12 + b"ciphertext")])

    def set_encrypted(data: bytearray) -> None:
        local, central = build.zip_header_offsets(bytes(data))
        data[local[0] + 6] |= 0x01
        data[central[0] + 8] |= 0x01

    build.patch_zip(archive, set_encrypted)

    message = workspace.rejected(archive, ArchiveError)

    assert message == "member 'secret.txt' is encrypted; encrypted archives are not supported"


def test_unpack_refuses_an_unsupported_zip_compression_method(workspace, build):
    archive = build.make_zip(workspace.archive("aes.zip"), [("a.txt", b"a")], zipfile.ZIP_STORED)

    def set_method(data: bytearray) -> None:
        local, central = build.zip_header_offsets(bytes(data))
        data[local[0] + 8 : local[0] + 10] = (99).to_bytes(2, "little")  # 99: WinZip AES
        data[central[0] + 10 : central[0] + 12] = (99).to_bytes(2, "little")

    build.patch_zip(archive, set_method)

    message = workspace.rejected(archive, ArchiveError)

    assert message.startswith("member 'a.txt' uses compression method 99, which is not supported")


# ---------------------------------------------------------------------------------- empty archives


def test_unpack_refuses_an_empty_zip(workspace, build):
    archive = build.make_zip(workspace.archive("empty.zip"), [])

    assert workspace.rejected(archive, ArchiveError) == "the archive holds no files"


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_unpack_refuses_an_empty_tar(workspace, build, mode):
    archive = build.make_tar(workspace.archive("empty.tar" if mode == "w" else "empty.tgz"), [], mode=mode)

    assert workspace.rejected(archive, ArchiveError) == "the archive holds no files"


def test_unpack_refuses_an_archive_of_folders_only(workspace, build):
    archive = build.make_zip(workspace.archive("folders.zip"), [("a/", b""), ("a/b/", b"")])

    assert workspace.rejected(archive, ArchiveError) == "the archive holds no files"


def test_unpack_refuses_a_zero_byte_file(workspace):
    archive = workspace.archive("nothing.zip")
    archive.touch()

    assert workspace.rejected(archive, ArchiveError) == "the archive is empty (0 bytes)"


# ------------------------------------------------------------------------------------- names


def test_unpack_refuses_zip_names_that_are_not_utf8(workspace, build):
    # GIVEN a name in Latin-1 ("café" with é as 0xE9), without the UTF-8 flag, as old Windows tools write
    archive = build.make_zip(workspace.archive("latin1.zip"), [("cafX.pov", b"sphere")])
    build.patch_zip(archive, lambda data: data.__setitem__(slice(None), data.replace(b"cafX", b"caf\xe9")))

    message = workspace.rejected(archive, ArchiveError)

    assert message == (
        "member name b'caf\\xe9.pov' is not UTF-8 and the archive gives no Unicode name for it "
        "(zip extra field 0x7075); re-create the archive with UTF-8 names"
    )


def test_unpack_refuses_zip_names_flagged_utf8_that_are_not(workspace, build):
    archive = build.make_zip(workspace.archive("liar.zip"), [("éX.pov", b"sphere")])  # non-ASCII sets the flag
    build.patch_zip(archive, lambda data: data.__setitem__(slice(None), data.replace(b"X.pov", b"\xff.pov")))

    message = workspace.rejected(archive, ArchiveError)

    assert "is marked as UTF-8 but is not valid UTF-8" in message
    assert "\\xff.pov" in message


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_unpack_refuses_tar_names_that_are_not_utf8(workspace, build, tar_format):
    archive = build.make_tar(
        workspace.archive("latin1.tar"),
        [build.tar_member("café.pov", b"sphere")],
        mode="w",
        tar_format=tar_format,
        encoding="latin-1",
    )

    message = workspace.rejected(archive, ArchiveError)

    assert message == "member name b'caf\\xe9.pov' is not valid UTF-8; re-create the archive with UTF-8 names"


# ---------------------------------------------------------------------------------- duplicates


def test_unpack_refuses_duplicate_zip_names(workspace, build):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns "Duplicate name", then writes it anyway
        archive = build.make_zip(workspace.archive("dup.zip"), [("a.txt", b"first"), ("a.txt", b"second")])

    message = workspace.rejected(archive, UnsafeArchive)

    assert message == "member 'a.txt' appears more than once in the archive"
    assert not (workspace.into / "a.txt").exists(), "zip members are all checked before any is written"


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([("a.txt", b"1"), ("./a.txt", b"2")], "member './a.txt' appears more than once"),
        ([("a.txt", b"1"), ("a.txt/b.txt", b"2")], "member 'a.txt/b.txt' needs 'a.txt' to be a folder"),
        ([("d/b.txt", b"1"), ("d", b"2")], "member 'd' is both a file and a folder"),
    ],
)
def test_unpack_refuses_tar_names_that_collide(workspace, build, members, expected):
    archive = build.make_tar(
        workspace.archive("dup.tar"), [build.tar_member(name, data) for name, data in members], mode="w"
    )

    message = workspace.rejected(archive, UnsafeArchive)

    assert message.startswith(expected)
