"""Streaming an archive's body to disk, and the output keys' length check (no network: fakes for S3)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import IncompleteReadError
from botocore.response import StreamingBody

from worker.errors import IncompleteDownload, ResultKeyTooLong, is_permanent
from worker.manifest import Source
from worker.publish import DOWNLOAD_CHUNK_BYTES, OpenedSource, save_body, upload_outputs


def _opened(data: bytes, *, length: int | None = None, stream: Any = None) -> OpenedSource:
    size = len(data) if length is None else length
    body = StreamingBody(stream or io.BytesIO(data), size)
    return OpenedSource(Source("b", "incoming/a.zip", "e", None, size), body)


class _CountingStream(io.BytesIO):
    """Records the size of every read, to show the body is read in bounded chunks."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(size)
        return super().read(size)


def test_save_body_writes_every_byte_in_bounded_chunks(tmp_path: Path) -> None:
    # GIVEN a body of 2.5 chunks
    data = bytes(range(256)) * (DOWNLOAD_CHUNK_BYTES * 5 // 512)
    stream = _CountingStream(data)
    # WHEN it is saved
    written = save_body(_opened(data, stream=stream), tmp_path / "a.zip")
    # THEN the file holds it all, and no read asked for more than one chunk
    assert written == len(data)
    assert (tmp_path / "a.zip").read_bytes() == data
    assert stream.asked and all(size == DOWNLOAD_CHUNK_BYTES for size in stream.asked)


def test_save_body_short_of_its_content_length_raises_a_transient_error(tmp_path: Path) -> None:
    with pytest.raises(IncompleteReadError) as raised:
        save_body(_opened(b"x" * 100, length=200), tmp_path / "a.zip")
    assert not is_permanent(raised.value)


def test_save_body_count_check_catches_a_body_that_does_not_verify_its_length(tmp_path: Path) -> None:
    # GIVEN a Source whose size disagrees with a body that has no length check of its own
    opened = OpenedSource(Source("b", "k.zip", "e", None, 10), StreamingBody(io.BytesIO(b"12345"), None))
    with pytest.raises(IncompleteDownload, match="5 of 10 bytes") as raised:
        save_body(opened, tmp_path / "a.zip")
    assert not is_permanent(raised.value)


class _RecordingS3:
    def __init__(self) -> None:
        self.uploaded: list[str] = []

    def upload_file(self, filename: str, bucket: str, key: str, **_: Any) -> None:
        self.uploaded.append(key)


def test_upload_outputs_refuses_an_output_key_past_the_limit_before_uploading_anything(tmp_path: Path) -> None:
    # GIVEN one short output and one whose key would be longer than 1024 bytes
    short = tmp_path / "a.txt"
    short.write_text("a")
    deep = tmp_path.joinpath(*["d" * 200] * 6, "b.png")
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"png")
    s3 = _RecordingS3()
    # WHEN they are uploaded
    with pytest.raises(ResultKeyTooLong, match=r"b\.png") as raised:
        upload_outputs(s3, "b", "results/x/", [short, deep], [tmp_path])  # type: ignore[arg-type]
    # THEN nothing was uploaded, and the failure is permanent
    assert s3.uploaded == []
    assert is_permanent(raised.value)


def test_upload_outputs_puts_outputs_whose_keys_fit(tmp_path: Path) -> None:
    output = tmp_path / "render.png"
    output.write_bytes(b"png")
    s3 = _RecordingS3()
    outputs = upload_outputs(s3, "b", "results/x/", [output], [tmp_path])  # type: ignore[arg-type]
    assert s3.uploaded == ["results/x/render.png"]
    assert outputs[0].content_type == "image/png"
