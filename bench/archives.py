"""Archives for the benchmarks, generated on disk: a small zip, and large tars of incompressible bytes streamed to
the file chunk by chunk (never held in memory)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

MIB = 1024 * 1024
CHUNK = 4 * MIB


def small_zip(path: Path) -> Path:
    """A zip of three small members (about 6 KB): a text file, a JSON file and 4 KB of random bytes."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("scene/readme.txt", "A small archive for the worker-overhead benchmark.\n" * 20)
        archive.writestr("scene/params.json", json.dumps({"width": 640, "height": 480, "quality": 9}))
        archive.writestr("scene/data.bin", os.urandom(4096))
    partial.replace(path)
    return path


class RandomStream(io.RawIOBase):
    """`size` bytes of os.urandom, read like a file: incompressible, and produced as they are read."""

    def __init__(self, size: int) -> None:
        self.remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.remaining, CHUNK)
        buffer[:count] = os.urandom(count)
        self.remaining -= count
        return count


def random_tar(path: Path, size: int) -> Path:
    """A tar (about `size` bytes) holding one member of random bytes; reused when it already exists."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    member_size = max(0, size - 3 * 512)  # the header and the two end-of-archive blocks
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("payload/random.bin")
        info.size = member_size
        info.mode = 0o644
        archive.addfile(info, io.BufferedReader(RandomStream(member_size), buffer_size=CHUNK))
    partial.replace(path)
    return path


def human(size: int) -> str:
    """10 MB, 200 MB, 1 GB: decimal units, as the issue names the sizes."""
    if size >= 1_000_000_000:
        return f"{size / 1_000_000_000:g} GB"
    return f"{size / 1_000_000:g} MB"
