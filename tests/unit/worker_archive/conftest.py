"""Builders for the archives the tests unpack, all made at run time (no committed blobs), and a job folder
that proves nothing was written outside it."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.archive import ArchiveError, UnpackLimits, unpack

LIMITS = UnpackLimits(max_members=1000, max_unpacked_bytes=200 * 1024 * 1024)
MIB = 1024 * 1024


@dataclass
class Workspace:
    """tmp_path laid out as a worker's: archives beside the job folder, and an empty sentinel folder."""

    root: Path

    @property
    def into(self) -> Path:
        return self.root / "job" / "unpacked"

    @property
    def sentinel(self) -> Path:
        return self.root / "sentinel"

    def archive(self, name: str) -> Path:
        return self.root / "archives" / name

    def outside(self) -> set[Path]:
        """Every path under tmp_path that is not inside the job folder."""
        return {path for path in self.root.rglob("*") if not path.is_relative_to(self.into)}

    def rejected(
        self, archive: Path, error: type[ArchiveError], limits: UnpackLimits = LIMITS, suffix: str | None = None
    ) -> str:
        """Unpack `archive`, expect `error` (exactly that class), check nothing leaked out; return the message."""
        before = self.outside()
        with pytest.raises(ArchiveError) as caught:
            unpack(archive, self.into, limits, suffix=suffix)
        assert type(caught.value) is error, f"expected {error.__name__}, got {type(caught.value).__name__}: {caught}"
        assert self.outside() == before, "unpack wrote outside the job folder"
        assert list(self.sentinel.iterdir()) == []
        message = str(caught.value)
        assert "Traceback" not in message
        assert message
        return message


class Build:
    """Archive builders, reached through the `build` fixture (test modules cannot import each other)."""

    # --------------------------------------------------------------------------------------------- zip

    @staticmethod
    def make_zip(
        path: Path, members: Iterable[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED
    ) -> Path:
        with zipfile.ZipFile(path, "w", method) as archive:
            for name, data in members:
                archive.writestr(name, data)
        return path

    @staticmethod
    def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
        """A zip member that Info-ZIP would restore as a symlink: Unix S_IFLNK in the external attributes."""
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (0o120777) << 16
        return info, target.encode()

    @staticmethod
    def zip_of_zeros(path: Path, name: str, size: int) -> Path:
        """A zip holding `size` zero bytes, written in chunks so that the test itself stays small in memory."""
        with (
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
            archive.open(name, "w", force_zip64=True) as out,
        ):
            chunk = bytes(MIB)
            for _ in range(size // MIB):
                out.write(chunk)
        return path

    @staticmethod
    def patch_zip(path: Path, edit: Callable[[bytearray], None]) -> Path:
        data = bytearray(path.read_bytes())
        edit(data)
        path.write_bytes(bytes(data))
        return path

    @staticmethod
    def zip_header_offsets(data: bytes) -> tuple[list[int], list[int]]:
        """Offsets of every local file header and every central directory entry."""
        local = list(Build._find_all(data, b"PK\x03\x04"))
        central = list(Build._find_all(data, b"PK\x01\x02"))
        return local, central

    @staticmethod
    def _find_all(data: bytes, needle: bytes) -> Iterable[int]:
        start = data.find(needle)
        while start >= 0:
            yield start
            start = data.find(needle, start + 1)

    @staticmethod
    def many_members_zip(path: Path, count: int) -> Path:
        """A zip of `count` empty stored files, packed by hand: zipfile takes seconds for 100,000 members."""
        local = io.BytesIO()
        central = io.BytesIO()
        for index in range(count):
            name = f"f{index:06d}".encode()
            offset = local.tell()
            local.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name)
            central.write(
                struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset)
                + name
            )
        directory = central.getvalue()
        start = local.tell()
        end = struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(directory), start, 0
        )
        if count > 0xFFFF:  # the zip64 end records carry the real count
            zip64_at = start + len(directory)
            zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), start)
            locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1)
            end = (
                zip64
                + locator
                + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
            )
        path.write_bytes(local.getvalue() + directory + end)
        return path

    @staticmethod
    def raw_zip(path: Path, entries: Iterable[tuple[bytes, bytes, int, bytes]]) -> Path:
        """A stored zip packed by hand from (raw name bytes, data, general-purpose flags, central extra field)."""
        local = io.BytesIO()
        central = io.BytesIO()
        count = 0
        for name, data, flags, extra in entries:
            crc = zlib.crc32(data)
            offset = local.tell()
            local.write(
                struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, 0, 0, 0x21, crc, len(data), len(data), len(name), 0)
                + name
                + data
            )
            central.write(
                struct.pack(
                    "<4s6H3L5H2L",
                    b"PK\x01\x02",
                    (0 << 8) | 20,  # made by MS-DOS (FAT), as WinRAR and 7-Zip on Windows write
                    20,
                    flags,
                    0,
                    0,
                    0x21,
                    crc,
                    len(data),
                    len(data),
                    len(name),
                    len(extra),
                    0,
                    0,
                    0,
                    0x20,  # the MS-DOS archive attribute
                    offset,
                )
                + name
                + extra
            )
            count += 1
        directory = central.getvalue()
        end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), local.tell(), 0)
        path.write_bytes(local.getvalue() + directory + end)
        return path

    @staticmethod
    def unicode_path(name: bytes | str, stored: bytes, *, crc: int | None = None, version: int = 1) -> bytes:
        """An Info-ZIP Unicode Path extra field (0x7075): version, CRC-32 of the stored name, the UTF-8 name."""
        utf8 = name.encode() if isinstance(name, str) else name
        body = struct.pack("<BL", version, zlib.crc32(stored) if crc is None else crc) + utf8
        return struct.pack("<2H", 0x7075, len(body)) + body

    # --------------------------------------------------------------------------------------------- tar

    @staticmethod
    def tar_of_zeros(path: Path, name: str, size: int, mode: str = "w:gz") -> Path:
        """A tar holding `size` zero bytes, streamed from a reader so that the test itself stays small in memory."""

        class Zeros(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
                buffer[:] = bytes(len(buffer))
                return len(buffer)

        info = tarfile.TarInfo(name)
        info.size = size
        with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
            archive.addfile(info, io.BufferedReader(Zeros()))
        return path

    @staticmethod
    def tar_member(
        name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields: object
    ) -> tuple[tarfile.TarInfo, bytes]:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        for key, value in fields.items():
            setattr(info, key, value)
        return info, data

    @staticmethod
    def make_tar(
        path: Path,
        members: Iterable[tuple[tarfile.TarInfo, bytes]],
        mode: str = "w",
        tar_format: int = tarfile.PAX_FORMAT,
        encoding: str = "utf-8",
    ) -> Path:
        with tarfile.open(path, mode, format=tar_format, encoding=encoding) as archive:  # type: ignore[call-overload]
            for info, data in members:
                archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
        return path

    @staticmethod
    def many_members_tar(path: Path, count: int) -> Path:
        """A tar of `count` empty files, packed by hand: tarfile takes seconds for 100,000 members."""
        template = tarfile.TarInfo("f000000")
        template.mtime = 0
        header = bytearray(template.tobuf(format=tarfile.USTAR_FORMAT))
        header[148:156] = b" " * 8  # the checksum is summed with its own field as spaces
        base = sum(header) - 6 * ord("0")  # only the six digits of the name change from member to member
        with path.open("wb") as out:
            for index in range(count):
                digits = b"%06d" % index
                header[1:7] = digits
                header[148:156] = b"%06o\0 " % (base + sum(digits))
                out.write(header)
            out.write(bytes(2 * tarfile.BLOCKSIZE))
        return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    space = Workspace(tmp_path)
    space.archive("x").parent.mkdir()
    space.sentinel.mkdir()
    (tmp_path / "job").mkdir()  # the worker's job folder; unpack creates `into` inside it
    return space


@pytest.fixture
def build() -> type[Build]:
    return Build
