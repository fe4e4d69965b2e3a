"""Unpack zip and tar archives safely into a job folder.

Every member is checked before a byte of it is written, and written through file descriptors that never
follow a link, so that a hostile archive cannot write outside the folder, overwrite a file, create a link
or a device, or fill the disk. Member data is streamed in chunks and counted while it is written: the
headers' sizes are used only to fail fast, never trusted. Operating-system metadata (worker.archive_metadata)
passes every check a file does, then is left out and listed in `Unpacked.ignored`.
"""

from __future__ import annotations

import errno
import gzip
import lzma
import os
import re
import stat
import struct
import tarfile
import unicodedata
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

from worker.archive_metadata import (
    HEAD_BYTES,
    ICON_FILE,
    MetadataRule,
    icon_refusal,
    is_icon_file,
    needs_content,
    rule_by_content,
    rule_by_name,
    without_icon_returns,
)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")  # longest first, as keys are matched in this order

CHUNK_BYTES = 1 << 20
# Below this many bytes a compression ratio cannot hurt, and small files of repeated text legitimately
# compress far better than large ones; ratios are judged only above it.
RATIO_GRACE_BYTES = 1 << 20
FILE_MODE = 0o644
DIR_MODE = 0o755
MAX_NAME_BYTES = 4096  # PATH_MAX on Linux
MAX_COMPONENT_BYTES = 255  # NAME_MAX on Linux
# A central directory entry's extra fields and comment are a few dozen bytes in practice; a huge one only
# inflates the memory zipfile needs to read the directory.
MAX_ZIP_ENTRY_EXTRA_BYTES = 16 * 1024

_ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_ZIP_FLAG_ENCRYPTED = 0x1
_ZIP_FLAG_STRONG_ENCRYPTION = 0x40
_ZIP_FLAG_UTF8 = 0x800
# "Version made by" host 0 (MS-DOS, OS/2: FAT), which Windows tools write: its names cannot hold a backslash.
_ZIP_HOST_MSDOS = 0
_ZIP_UNICODE_PATH = 0x7075  # Info-ZIP Unicode Path extra field: version (1), CRC-32 of the stored name, UTF-8 name
_ZIP_EOCD = b"PK\x05\x06"
_ZIP_EOCD_SIZE = 22
_ZIP64_EOCD = b"PK\x06\x06"
_ZIP64_EOCD_SIZE = 56
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP_CD_ENTRY = b"PK\x01\x02"
_ZIP_CD_ENTRY_SIZE = 46
_GZIP_MAGIC = b"\x1f\x8b"
_TAR_BLOCK = tarfile.BLOCKSIZE
# After tar's end-of-archive marker only padding should follow; reading a little of it lets gzip check
# its trailer (CRC and length) without decompressing an unbounded tail.
_TAR_TAIL_BYTES = 1 << 20

_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
# Errors that reading a corrupt or truncated archive raises from zipfile, tarfile, gzip, zlib, bz2 and lzma.
_CORRUPT_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    struct.error,
    ValueError,
)


class ArchiveError(Exception):
    """The archive cannot be unpacked: corrupt, truncated, unsupported, encrypted or empty. Permanent."""


class UnsafeArchive(ArchiveError):  # noqa: N818 - the name is part of the worker's contract
    """The archive is refused as hostile: a path outside the folder, a link, a device, a bomb or a limit. Permanent."""


@dataclass(frozen=True)
class UnpackLimits:
    """What one archive may unpack to."""

    max_members: int
    max_unpacked_bytes: int
    max_ratio: float = 100.0  # unpacked bytes / compressed bytes, for the whole archive and for each member

    def __post_init__(self) -> None:
        if self.max_members < 1:
            raise ValueError(f"max_members must be at least 1, not {self.max_members}")
        if self.max_unpacked_bytes < 1:
            raise ValueError(f"max_unpacked_bytes must be at least 1, not {self.max_unpacked_bytes}")
        if not self.max_ratio >= 1:
            raise ValueError(f"max_ratio must be at least 1, not {self.max_ratio}")


@dataclass(frozen=True)
class UnpackedMember:
    """One regular file written by `unpack`."""

    path: Path  # absolute, inside the folder given to unpack
    name: str  # relative POSIX name, as checked and normalised from the archive
    size: int  # bytes actually written


@dataclass(frozen=True)
class IgnoredMember:
    """A file `unpack` left out by a documented metadata rule (docs/worker-archives.md)."""

    name: str  # as stored in the archive (after name decoding)
    rule: MetadataRule

    def to_dict(self) -> dict[str, str]:
        """The manifest's record of it: {"name": ..., "rule": ...}."""
        return {"name": self.name, "rule": self.rule.value}


@dataclass(frozen=True)
class Unpacked:
    """What `unpack` wrote, and what it left out."""

    members: list[UnpackedMember]  # regular files written, in archive order
    ignored: list[IgnoredMember]  # files left out as operating-system metadata, sorted by name


def archive_suffix(key: str) -> str | None:
    """The archive suffix `key` ends with (lower case), or None if it is not an archive we unpack."""
    lowered = key.lower()
    return next((suffix for suffix in ARCHIVE_SUFFIXES if lowered.endswith(suffix)), None)


def unpack(archive: Path, into: Path, limits: UnpackLimits, *, suffix: str | None = None) -> Unpacked:
    """Unpack `archive` into the folder `into`: the files written and those left out, or raise ArchiveError.

    The format comes from `suffix` (the S3 key's, one of ARCHIVE_SUFFIXES) or else from the archive's own
    name, and is verified against the content. Nested archives are left as files. macOS metadata is left
    out by the rules of worker.archive_metadata, after the same checks as any other member.
    """
    chosen = _choose_suffix(archive, suffix)
    archive_bytes = archive.stat().st_size
    if archive_bytes == 0:
        raise ArchiveError("the archive is empty (0 bytes)")
    into.mkdir(parents=True, exist_ok=True)
    with _Destination(into, limits, archive_bytes) as destination:
        if chosen == ".zip":
            _unpack_zip(archive, destination)
        else:
            _unpack_tar(archive, destination, gzipped=chosen != ".tar")
    ignored = sorted(destination.ignored, key=lambda member: member.name)
    if not destination.written:
        if ignored:
            names = ", ".join(repr(member.name) for member in ignored[:3])
            more = f" and {len(ignored) - 3} more" if len(ignored) > 3 else ""
            raise ArchiveError(
                f"the archive holds no files other than macOS metadata, which is left out ({names}{more})"
            )
        raise ArchiveError("the archive holds no files")
    return Unpacked(destination.written, ignored)


def _choose_suffix(archive: Path, suffix: str | None) -> str:
    chosen = archive_suffix(suffix if suffix is not None else archive.name)
    if chosen is None:
        given = suffix if suffix is not None else archive.name
        raise ArchiveError(f"{given!r} is not a supported archive; use one of {', '.join(ARCHIVE_SUFFIXES)}")
    return chosen


_OTHER_FORMATS = {"a zip archive", "a bzip2-compressed file", "an xz-compressed file"}


def _describe_content(archive: Path) -> str:
    """What the archive's first bytes look like, for a message when they do not match its suffix."""
    with archive.open("rb") as handle:
        head = handle.read(_TAR_BLOCK)
    if head.startswith(_GZIP_MAGIC):
        return "a gzip-compressed file"
    if head.startswith((b"PK\x03\x04", _ZIP_EOCD)):
        return "a zip archive"
    if head.startswith(b"BZh"):
        return "a bzip2-compressed file"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "an xz-compressed file"
    if head[257:262] == b"ustar":
        return "an uncompressed tar archive"
    return "something else"


# --------------------------------------------------------------------------------------------- names


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(char) in {"Cc", "Cs"} for char in text)


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path components of a member name, or raise if the name could escape the folder or is not clean."""
    if any(0xDC80 <= ord(char) <= 0xDCFF for char in name):
        raise ArchiveError(f"member name {_raw_repr(name)} is not valid UTF-8; re-create the archive with UTF-8 names")
    # `Icon\r` is Finder's; it may pass here and is then dropped by its metadata rule, or refused by `admit`.
    checked = name[:-1] if is_icon_file(name) else name
    if _has_control_characters(checked):
        if not _has_control_characters(without_icon_returns(name)):
            raise UnsafeArchive(icon_refusal(name, "is a folder"))  # Finder's Icon\r is always a file
        raise UnsafeArchive(f"member name {name!r} contains control characters")
    if "\\" in name:
        raise UnsafeArchive(f"member {name!r} contains a backslash; only '/' may separate folders")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        raise UnsafeArchive(f"member {name!r} has an absolute path, which would write outside the job folder")
    # macOS tools store names decomposed (NFD: "e" + U+0301), which Linux, unlike macOS, treats as another name
    # than the composed one a scene's #include, an .ini or the S3 key spells: written composed (NFC).
    composed = unicodedata.normalize("NFC", name)
    parts = tuple(part for part in composed.split("/") if part not in {"", "."})
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} has a '..' component, which would write outside the job folder")
    if len(composed.encode()) > MAX_NAME_BYTES or any(len(part.encode()) > MAX_COMPONENT_BYTES for part in parts):
        raise ArchiveError(f"member name {name!r} is too long for the file system")
    return parts


def _raw_repr(name: str) -> str:
    """Show a name that holds undecodable bytes (as surrogate escapes) as the bytes themselves."""
    try:
        return repr(name.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return repr(name)


# ------------------------------------------------------------------------------------- destination


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _SeekableReadable(_Readable, Protocol):
    def seek(self, offset: int, whence: int = ..., /) -> int: ...
    def tell(self) -> int: ...


@dataclass
class _Destination:
    """The job folder, with the running counts and checks every member goes through."""

    into: Path
    limits: UnpackLimits
    archive_bytes: int
    written: list[UnpackedMember] = field(default_factory=list)
    ignored: list[IgnoredMember] = field(default_factory=list)
    members: int = 0
    declared_bytes: int = 0
    unpacked_bytes: int = 0
    _files: set[tuple[str, ...]] = field(default_factory=set)
    _dirs: set[tuple[str, ...]] = field(default_factory=set)
    _root: Path = field(init=False)
    _root_fd: int = field(init=False, default=-1)

    def __enter__(self) -> _Destination:
        self._root = self.into.resolve(strict=True)
        self._root_fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        os.close(self._root_fd)

    # -- checks before writing

    def count_member(self, count: int = 1) -> None:
        """Count archive entries (files, folders and anything else) against max_members."""
        self.members += count
        if self.members > self.limits.max_members:
            raise UnsafeArchive(f"the archive has more than {self.limits.max_members} members, the limit (MAX_MEMBERS)")

    def declare(self, name: str, size: int, compressed_size: int | None) -> None:
        """Fail fast on the sizes a header declares; the real bytes are counted again while writing."""
        if compressed_size is not None:
            self._check_member_ratio(name, size, compressed_size)
        self.declared_bytes += size
        self._check_total(self.declared_bytes)

    def admit(self, name: str, *, is_dir: bool, size: int, compressed_size: int | None) -> tuple[str, ...] | None:
        """Check a member like any other; its path parts, or None when a metadata rule drops it (then recorded).

        A dropped member's name and declared size are checked all the same: a hostile name is refused
        whatever it is called, and a bomb's header counts against the limits.
        """
        parts = _safe_parts(name)
        rule = rule_by_name(parts, is_dir=is_dir, size=size)
        if rule is not None:
            if not is_dir:
                self.declare(name, size, compressed_size)
                self.ignored.append(IgnoredMember(name, rule))
            return None
        if (parts and parts[-1] == ICON_FILE) or (is_dir and is_icon_file(name)):
            # Not the empty file Finder writes: an ordinary control character. (._Icon\r is judged by its content.)
            raise UnsafeArchive(icon_refusal(name, "is a folder" if is_dir else f"holds {size} bytes"))
        parts = self._claim(name, parts, is_dir=is_dir)
        if not is_dir:
            self.declare(name, size, compressed_size)
        return parts

    def _claim(self, name: str, parts: tuple[str, ...], *, is_dir: bool) -> tuple[str, ...]:
        """Check that a member neither repeats nor collides with another member."""
        if not parts:
            if is_dir:
                return parts
            raise ArchiveError(f"member {name!r} has an empty name")
        for depth in range(1, len(parts)):
            if parts[:depth] in self._files:
                raise UnsafeArchive(
                    f"member {name!r} needs {'/'.join(parts[:depth])!r} to be a folder, but it is a file in the archive"
                )
        if parts in self._files:
            repeated = "is both a folder and a file" if is_dir else "appears more than once"
            raise UnsafeArchive(f"member {name!r} {repeated} in the archive")
        if not is_dir and parts in self._dirs:
            raise UnsafeArchive(f"member {name!r} is both a file and a folder in the archive")
        for depth in range(1, len(parts) + (1 if is_dir else 0)):
            self._dirs.add(parts[:depth])
        if not is_dir:
            self._files.add(parts)
        destination = self._root.joinpath(*parts).resolve()
        if not destination.is_relative_to(self._root):
            raise UnsafeArchive(f"member {name!r} resolves outside the job folder")
        return parts

    def _check_total(self, unpacked: int) -> None:
        if unpacked > self.limits.max_unpacked_bytes:
            raise UnsafeArchive(
                f"the archive unpacks to more than {_human(self.limits.max_unpacked_bytes)}, "
                "the limit (MAX_UNPACKED_BYTES)"
            )
        if unpacked > max(self.limits.max_ratio * self.archive_bytes, RATIO_GRACE_BYTES):
            raise UnsafeArchive(
                f"the archive unpacks to more than {self.limits.max_ratio:g} times its own size "
                f"({_human(self.archive_bytes)}), which looks like a compression bomb"
            )

    def _check_member_ratio(self, name: str, unpacked: int, compressed: int) -> None:
        if unpacked > max(self.limits.max_ratio * compressed, RATIO_GRACE_BYTES):
            raise UnsafeArchive(
                f"member {name!r} expands to more than {self.limits.max_ratio:g} times its compressed size "
                f"({_human(compressed)}), which looks like a compression bomb"
            )

    # -- writing

    def make_dir(self, parts: tuple[str, ...]) -> None:
        """Create the folder `parts` (and its parents) inside the job folder."""
        os.close(self._open_dir(parts, parts))

    def write_unless_metadata(
        self, name: str, parts: tuple[str, ...], source: _Readable, compressed_size: int | None
    ) -> None:
        """Write a file, unless its first bytes show it to be metadata (then it is recorded as ignored)."""
        if needs_content(parts):
            head = _read_head(source, name)
            rule = rule_by_content(parts, head)
            if rule is not None:
                self.ignored.append(IgnoredMember(name, rule))
                return
            if is_icon_file(name):  # a ._Icon\r that is not AppleDouble: an ordinary control character
                raise UnsafeArchive(icon_refusal(name, "is not AppleDouble"))
            source = _Replay(head, source)
        self.write_file(name, parts, source, compressed_size)

    def write_file(
        self, name: str, parts: tuple[str, ...], source: _Readable, compressed_size: int | None
    ) -> UnpackedMember:
        """Stream `source` into a new file, counting bytes against the limits before each chunk is written."""
        parent_fd = self._open_dir(parts, parts[:-1])
        try:
            try:
                fd = os.open(
                    parts[-1],
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    FILE_MODE,
                    dir_fd=parent_fd,
                )
            except FileExistsError:
                raise UnsafeArchive(f"member {name!r} would overwrite a file already in the job folder") from None
        finally:
            os.close(parent_fd)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(fd, FILE_MODE)  # the umask must not decide what the processor can read
            written = 0
            while chunk := _read_chunk(source, name):
                written += len(chunk)
                self.unpacked_bytes += len(chunk)
                self._check_total(self.unpacked_bytes)
                if compressed_size is not None:
                    self._check_member_ratio(name, written, compressed_size)
                out.write(chunk)
        member = UnpackedMember(path=self._root.joinpath(*parts), name="/".join(parts), size=written)
        self.written.append(member)
        return member

    def _open_dir(self, member_parts: tuple[str, ...], parts: tuple[str, ...]) -> int:
        """Open (creating as needed) a folder below the root, one component at a time, never through a link."""
        fd = os.dup(self._root_fd)
        try:
            for part in parts:
                try:
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
                    created = True
                except FileExistsError:
                    created = False
                try:
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError as error:
                    if error.errno in {errno.ELOOP, errno.ENOTDIR}:
                        raise UnsafeArchive(
                            f"member {'/'.join(member_parts)!r} would be written through a link or a file "
                            "already in the job folder"
                        ) from None
                    raise
                os.close(fd)
                fd = child
                if created:
                    os.fchmod(fd, DIR_MODE)
        except BaseException:
            os.close(fd)
            raise
        return fd


def _read_chunk(source: _Readable, name: str) -> bytes:
    try:
        return source.read(CHUNK_BYTES)
    except _CORRUPT_ERRORS as error:
        raise ArchiveError(f"member {name!r} is corrupt or truncated: {_reason(error)}") from error


def _read_head(source: _Readable, name: str) -> bytes:
    """Up to HEAD_BYTES from the start of a member (fewer only at its end)."""
    head = b""
    while len(head) < HEAD_BYTES:
        try:
            chunk = source.read(HEAD_BYTES - len(head))
        except _CORRUPT_ERRORS as error:
            raise ArchiveError(f"member {name!r} is corrupt or truncated: {_reason(error)}") from error
        if not chunk:
            break
        head += chunk
    return head


class _Replay:
    """A member's stream with the bytes already read from its start put back in front."""

    def __init__(self, head: bytes, rest: _Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int, /) -> bytes:
        if self._head:
            chunk, self._head = self._head[:size], self._head[size:]
            return chunk
        return self._rest.read(size)


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text or type(error).__name__


def _human(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} bytes"
    units = ("KiB", "MiB", "GiB")
    exponent = 1
    while exponent < len(units) and size >= 1024 ** (exponent + 1):
        exponent += 1
    return f"{size / 1024**exponent:.1f} {units[exponent - 1]}"


# --------------------------------------------------------------------------------------------- zip


def _unpack_zip(archive: Path, destination: _Destination) -> None:
    if not zipfile.is_zipfile(archive):
        looks_like = _describe_content(archive)
        if looks_like == "a zip archive":
            raise ArchiveError("the zip archive is truncated or corrupt: its central directory is missing")
        raise ArchiveError(
            f"the file is not a zip archive, although its name ends in .zip (it looks like {looks_like})"
        )
    with archive.open("rb") as handle:
        # Count the central directory's entries before zipfile reads it all into memory.
        destination.count_member(_count_zip_entries(handle, destination.limits.max_members))
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about an empty Unicode Path field; _zip_member_name ignores one, as unzip does.
            warnings.filterwarnings("ignore", "Empty unicode path extra field", UserWarning)
            zip_file = zipfile.ZipFile(archive)
    except UnicodeDecodeError as error:
        raise ArchiveError(
            f"member name {error.object!r} is marked as UTF-8 but is not valid UTF-8; "
            "re-create the archive with UTF-8 names"
        ) from None
    except _CORRUPT_ERRORS as error:
        raise ArchiveError(f"the zip archive is corrupt or truncated: {_reason(error)}") from error
    with zip_file:
        infos = zip_file.infolist()
        destination.count_member(max(0, len(infos) - destination.members))  # when the scan could not count
        # The central directory shows every member up front: refuse a bad one before writing anything.
        planned = [(info, _check_zip_entry(info, destination)) for info in infos]
        for info, (name, parts, is_dir) in planned:
            if parts is None:  # metadata, recorded as ignored
                continue
            if is_dir:
                if parts:
                    destination.make_dir(parts)
                continue
            try:
                source = zip_file.open(info)
            except NotImplementedError as error:  # e.g. "compressed patched data" (flag bit 5)
                raise ArchiveError(f"member {name!r} uses a zip feature that is not supported: {error}") from None
            except _CORRUPT_ERRORS as error:
                raise ArchiveError(f"member {name!r} is corrupt: {_reason(error)}") from error
            with source:
                destination.write_unless_metadata(name, parts, source, info.compress_size)


def _count_zip_entries(handle: _SeekableReadable, max_members: int) -> int:
    """How many entries the central directory holds, counting no further than one past `max_members`.

    0 when the directory cannot be found or walked: zipfile then reports the corruption itself.
    """
    location = _zip_central_directory(handle)
    if location is None:
        return 0
    start, size = location
    handle.seek(start)
    count = consumed = 0
    while consumed + _ZIP_CD_ENTRY_SIZE <= size and count <= max_members:
        header = handle.read(_ZIP_CD_ENTRY_SIZE)
        if len(header) < _ZIP_CD_ENTRY_SIZE or not header.startswith(_ZIP_CD_ENTRY):
            break
        name_length, extra_length, comment_length = struct.unpack("<3H", header[28:34])
        if name_length > MAX_NAME_BYTES or extra_length + comment_length > MAX_ZIP_ENTRY_EXTRA_BYTES:
            raise ArchiveError(f"zip entry {count + 1} has an implausibly large header; the archive is corrupt")
        raw_name = handle.read(name_length)
        # Python 3.12+ reads the Unicode Path field itself and fails the whole directory on a corrupt one,
        # naming no member: checked here first, so that every Python names the member and refuses alike.
        _unicode_path(raw_name, handle.read(extra_length))
        handle.seek(comment_length, os.SEEK_CUR)
        consumed += _ZIP_CD_ENTRY_SIZE + name_length + extra_length + comment_length
        count += 1
    return count


def _zip_central_directory(handle: _SeekableReadable) -> tuple[int, int] | None:
    """(offset, size) of the central directory, found from the end records the way zipfile finds it."""
    file_size = handle.seek(0, os.SEEK_END)
    tail_start = max(0, file_size - (_ZIP_EOCD_SIZE + 0xFFFF))  # the end record, then at most a 64 KiB comment
    handle.seek(tail_start)
    tail = handle.read(file_size - tail_start)
    position = tail.rfind(_ZIP_EOCD)
    if position < 0 or len(tail) - position < _ZIP_EOCD_SIZE:
        return None
    cd_size = struct.unpack("<L", tail[position + 12 : position + 16])[0]
    end_record = tail_start + position
    locator = end_record - _ZIP64_LOCATOR_SIZE
    if locator >= 0:
        handle.seek(locator)
        if handle.read(4) == _ZIP64_LOCATOR:
            record = locator - _ZIP64_EOCD_SIZE
            if record < 0:
                return None
            handle.seek(record)
            zip64 = handle.read(_ZIP64_EOCD_SIZE)
            if len(zip64) != _ZIP64_EOCD_SIZE or not zip64.startswith(_ZIP64_EOCD):
                return None
            cd_size = struct.unpack("<Q", zip64[40:48])[0]
            end_record = record
    start = end_record - cd_size
    return (start, cd_size) if start >= 0 else None


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """The member's name, whether or not the archiver set the UTF-8 flag.

    Without the flag, the name is the Unicode Path extra field's when its CRC matches the stored name (as
    `unzip` does: WinRAR, 7-Zip and others store a legacy code-page name there), else the stored bytes read
    as UTF-8 (Info-ZIP on Linux and macOS tools write UTF-8 without the flag). A legacy name with no valid
    Unicode name is refused rather than guessed at: a wrong code page silently renames the user's files.
    """
    name = info.orig_filename  # zipfile cuts `filename` at a NUL byte, hiding it from the checks
    if info.flag_bits & _ZIP_FLAG_UTF8:
        return name
    raw = name.encode("cp437")  # zipfile decoded the stored bytes as cp437, which maps every byte: undone exactly
    unicode_name = _unicode_path(raw, info.extra)
    if isinstance(unicode_name, str):
        return unicode_name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if unicode_name is _STALE:
        why = "its Unicode name (zip extra field 0x7075) is for another name (CRC mismatch)"
    else:
        why = "the archive gives no Unicode name for it (zip extra field 0x7075)"
    raise ArchiveError(f"member name {raw!r} is not UTF-8 and {why}; re-create the archive with UTF-8 names")


_STALE = object()  # a Unicode Path field was there, but for another name


def _unicode_path(raw_name: bytes, extra: bytes) -> str | object | None:
    """The UTF-8 name of the Info-ZIP Unicode Path extra field when it is for `raw_name`; _STALE or None if not.

    A field for another name (CRC mismatch: the name was changed by a tool that kept the field), of another
    version, or empty is ignored, as `unzip` ignores it. One too short to hold its header, or whose name
    is for this member but not UTF-8, is corrupt: ArchiveError.
    """
    found: str | object | None = None
    while len(extra) >= 4:
        kind, length = struct.unpack("<2H", extra[:4])
        data, extra = extra[4 : 4 + length], extra[4 + length :]
        if kind != _ZIP_UNICODE_PATH:
            continue
        if len(data) < 5:
            raise ArchiveError(
                f"member name {raw_name!r} has a corrupt Unicode Path extra field (0x7075): "
                f"{len(data)} bytes, too short for its header; the archive is corrupt"
            )
        version, crc = struct.unpack("<BL", data[:5])
        if version != 1 or not data[5:]:
            continue
        if crc != zlib.crc32(raw_name):
            found = _STALE
            continue
        try:
            return data[5:].decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError(
                f"member name {raw_name!r} has a Unicode Path extra field (0x7075) whose name {data[5:]!r} "
                "is not valid UTF-8; the archive is corrupt"
            ) from None
    return found


def _check_zip_entry(info: zipfile.ZipInfo, destination: _Destination) -> tuple[str, tuple[str, ...] | None, bool]:
    """Refuse what the central directory shows to be unsafe; the member's name, path (None: dropped) and folder-ness."""
    name = info.orig_filename
    if info.flag_bits & (_ZIP_FLAG_ENCRYPTED | _ZIP_FLAG_STRONG_ENCRYPTION):
        raise ArchiveError(f"member {name!r} is encrypted; encrypted archives are not supported")
    if info.compress_type not in _ZIP_METHODS:
        raise ArchiveError(
            f"member {name!r} uses compression method {info.compress_type}, which is not supported "
            f"(supported: {', '.join(_ZIP_METHODS.values())})"
        )
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise UnsafeArchive(f"member {name!r} is a symbolic link; links are not unpacked")
    if file_type not in {0, stat.S_IFREG, stat.S_IFDIR}:
        raise UnsafeArchive(f"member {name!r} is a {_file_type_name(file_type)}; only files and folders are unpacked")
    name = _zip_member_name(info)
    if info.create_system == _ZIP_HOST_MSDOS and "\\" in name:
        # Some Windows tools (PowerShell 5's Compress-Archive, .NET Framework before 4.6.1) break APPNOTE's
        # "forward slashes only" and separate folders with a backslash, which no FAT or NTFS name can hold:
        # a separator, as Info-ZIP's unzip and libarchive read it for this host. The checks below see the
        # result, so a slip written with backslashes is still refused.
        name = name.replace("\\", "/")
    is_dir = name.endswith("/") or _zip_is_dir(info)
    parts = destination.admit(name, is_dir=is_dir, size=info.file_size, compressed_size=info.compress_size)
    return name, parts, is_dir


def _zip_is_dir(info: zipfile.ZipInfo) -> bool:
    return info.is_dir() or stat.S_ISDIR(info.external_attr >> 16)


def _file_type_name(file_type: int) -> str:
    names = {
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
        stat.S_IFIFO: "FIFO",
        stat.S_IFSOCK: "socket",
        stat.S_IFLNK: "symbolic link",
    }
    return names.get(file_type, f"special file (type {file_type:o})")


# --------------------------------------------------------------------------------------------- tar


class _BlockRecorder:
    """A file object for tarfile that remembers the last header-sized block read.

    tarfile ends its member list quietly at a missing or damaged header, so a truncated or corrupt tar
    would otherwise unpack as a shorter one. The remembered block tells whether the list ended at tar's
    real end-of-archive marker, without seeking back (which would restart a gzip stream from the top).
    """

    def __init__(self, inner: _SeekableReadable) -> None:
        self._inner = inner
        self.last_block_offset = -1
        self.last_block = b""

    def read(self, size: int, /) -> bytes:
        offset = self._inner.tell()
        data = self._inner.read(size)
        if size == _TAR_BLOCK:
            self.last_block_offset, self.last_block = offset, data
        return data

    def write(self, data: bytes, /) -> object:
        raise OSError("the archive is opened for reading only")

    def tell(self) -> int:
        return self._inner.tell()

    def seek(self, position: int, /) -> object:
        return self._inner.seek(position)

    def close(self) -> object:
        return None  # the caller owns the inner file


def _unpack_tar(archive: Path, destination: _Destination, *, gzipped: bool) -> None:
    with archive.open("rb") as handle:
        magic = handle.read(len(_GZIP_MAGIC))
        handle.seek(0)
        if gzipped and magic != _GZIP_MAGIC:
            raise ArchiveError(
                "the file is not a gzip-compressed tar archive, although its name says so "
                f"(it looks like {_describe_content(archive)})"
            )
        if not gzipped and magic == _GZIP_MAGIC:
            raise ArchiveError("the file is gzip-compressed, but its name ends in .tar; name it .tar.gz")
        stream: _SeekableReadable = gzip.GzipFile(fileobj=handle, mode="rb") if gzipped else handle
        recorder = _BlockRecorder(stream)
        try:
            # Closed by the `with tar:` below; opening inside `with` would hide which step failed.
            tar = tarfile.open(  # noqa: SIM115
                fileobj=recorder, mode="r:", encoding="utf-8", errors="surrogateescape"
            )
        except _CORRUPT_ERRORS as error:
            kind = "gzip-compressed tar archive" if gzipped else "tar archive"
            looks_like = "" if gzipped else _describe_content(archive)
            hint = f" (it looks like {looks_like})" if looks_like in _OTHER_FORMATS else ""
            raise ArchiveError(
                f"the file is not a valid {kind}, or it is truncated or corrupt: {_reason(error)}{hint}"
            ) from error
        with tar:
            _unpack_tar_members(tar, destination)
            _check_tar_end(tar, recorder, stream)


def _unpack_tar_members(tar: tarfile.TarFile, destination: _Destination) -> None:
    last = "the start"
    while True:
        try:
            info = tar.next()
        except _CORRUPT_ERRORS as error:
            raise ArchiveError(f"the tar archive is corrupt or truncated after {last}: {_reason(error)}") from error
        if info is None:
            return
        destination.count_member()
        name = info.name
        last = f"member {name!r}"
        _check_tar_entry(info)
        # Extended attributes (pax SCHILY.xattr.*, LIBARCHIVE.xattr.*: macOS tar's quarantine, Finder info...)
        # are in info.pax_headers, and are not restored, like owners and timestamps.
        parts = destination.admit(name, is_dir=info.isdir(), size=info.size, compressed_size=None)
        if parts is None:  # metadata, recorded as ignored; tarfile skips its data
            continue
        if info.isdir():
            if parts:
                destination.make_dir(parts)
            continue
        source = tar.extractfile(info)
        if source is None:  # pragma: no cover - _check_tar_entry lets only regular files reach here
            raise ArchiveError(f"member {name!r} has no data")
        with source:
            destination.write_unless_metadata(name, parts, source, None)


def _check_tar_entry(info: tarfile.TarInfo) -> None:
    name = info.name
    if info.issym():
        raise UnsafeArchive(f"member {name!r} is a symbolic link to {info.linkname!r}; links are not unpacked")
    if info.islnk():
        raise UnsafeArchive(f"member {name!r} is a hard link to {info.linkname!r}; links are not unpacked")
    if info.ischr() or info.isblk() or info.isfifo():
        kind = "character device" if info.ischr() else "block device" if info.isblk() else "FIFO"
        raise UnsafeArchive(f"member {name!r} is a {kind}; only files and folders are unpacked")
    if info.issparse():
        raise ArchiveError(f"member {name!r} is a sparse file, which is not supported")
    if not (info.isreg() or info.isdir()):
        raise ArchiveError(f"member {name!r} has tar type {info.type!r}, which is not supported")


def _check_tar_end(tar: tarfile.TarFile, recorder: _BlockRecorder, stream: _SeekableReadable) -> None:
    """Insist that the member list ended at a real end-of-archive marker, and let gzip check its trailer."""
    ended_at = tar.offset
    block = recorder.last_block if recorder.last_block_offset == ended_at else b""
    if len(block) < _TAR_BLOCK:
        raise ArchiveError("the tar archive is truncated: it ends without tar's end-of-archive marker")
    if block.count(0) != _TAR_BLOCK:
        raise ArchiveError(f"the tar archive is corrupt: the header at byte {ended_at} is damaged")
    if not isinstance(stream, gzip.GzipFile):
        return
    try:
        stream.read(_TAR_TAIL_BYTES)
    except _CORRUPT_ERRORS as error:
        raise ArchiveError(f"the archive is corrupt or truncated at its end: {_reason(error)}") from error
