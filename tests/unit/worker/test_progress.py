"""Progress reports: the LEW_PROGRESS convention and POV-Ray's status output."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.cancel import CancelRequest, cancel_key
from worker.claims import claim_key
from worker.progress import Progress, parse_line, povray_progress, read_latest


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"done": 12, "total": 100, "message": "frame 12"}', Progress(12, 100, "frame 12")),
        ('{"done": 3}', Progress(3, None, None)),
        ('{"done": 150, "total": 100}', Progress(100, 100, None)),
        ('{"done": 1, "total": 2, "message": "a\\tb\\u0000c"}', Progress(1, 2, "a b c")),
    ],
)
def test_parse_line_reads_valid_reports(line: str, expected: Progress) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not json",
        "[1, 2]",
        '{"total": 10}',
        '{"done": -1}',
        '{"done": true}',
        '{"done": "3"}',
        '{"done": 1, "total": 0}',
        '{"done": 1e999}',
        '{"done": 1, "total": "many"}',
    ],
)
def test_parse_line_ignores_what_breaks_the_convention(line: str) -> None:
    assert parse_line(line) is None


def test_read_latest_takes_the_last_complete_valid_line(tmp_path: Path) -> None:
    # GIVEN a progress file with good lines, a bad one, and a line still being written
    path = tmp_path / "progress.jsonl"
    path.write_text('{"done": 1, "total": 4}\n{"done": 2, "total": 4}\ngarbage\n{"done": 3, "tot', encoding="utf-8")

    # THEN the last complete valid report counts
    assert read_latest(path) == Progress(2, 4, None)
    assert read_latest(tmp_path / "missing.jsonl") is None


def test_read_latest_reads_only_the_end_of_a_long_file(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    path.write_text("".join(f'{{"done": {n}, "total": 100000}}\n' for n in range(100_000)), encoding="utf-8")
    assert read_latest(path) == Progress(99_999, 100_000, None)


def test_read_latest_of_a_progress_path_that_cannot_be_read_is_none(tmp_path: Path) -> None:
    # GIVEN a processor that made its LEW_PROGRESS path a folder (IsADirectoryError, an OSError)
    path = tmp_path / "progress.jsonl"
    path.mkdir()

    # THEN there is no progress, and no error: progress never fails a job
    assert read_latest(path) is None


def test_povray_progress_reads_the_last_rendered_line() -> None:
    # GIVEN POV-Ray's real status output (carriage-return separated, as `povray` writes it to a file)
    log = "Parsing...\r==== [Rendering...] ====\rRendered 1024 of 76800 pixels (1%)\rRendered 3072 of 76800 pixels (4%)"

    # THEN the pixels rendered of the total are the progress
    assert povray_progress(log) == Progress(3072, 76800, "rendering")
    assert povray_progress("Parsing 12K tokens") is None
    assert Progress(3072, 76800).fraction == pytest.approx(0.04)
    assert Progress(3, None).fraction is None


def test_progress_to_dict_keeps_whole_numbers_whole() -> None:
    assert Progress(3.0, 4.0, "x").to_dict() == {"done": 3, "total": 4, "message": "x"}
    assert Progress(0.5, None).to_dict() == {"done": 0.5, "total": None, "message": None}


def test_cancel_key_sits_next_to_the_claim() -> None:
    assert claim_key("results/", "a/scene") == "results/.lew-claims/a/scene.claim.json"
    assert cancel_key("results/", "a/scene") == "results/.lew-claims/a/scene.cancel.json"


def test_cancel_key_of_a_stem_whose_claim_just_fits_is_named_by_its_digest() -> None:
    # GIVEN a stem whose claim key is exactly S3's limit, so the one byte longer marker would not fit
    stem = "s" * (1024 - len("results/.lew-claims/.claim.json"))
    assert len(claim_key("results/", stem)) == 1024

    # THEN the marker is named by the stem's digest, and fits
    key = cancel_key("results/", stem)
    assert key.startswith("results/.lew-claims/sha256/")
    assert key.endswith(".cancel.json")
    assert len(key) <= 1024


@pytest.mark.parametrize(
    ("request_etag", "request_version", "etag", "version", "applies"),
    [
        ("abc", None, "abc", None, True),
        ('"abc"', None, "abc", "v1", True),
        ("abc", None, "def", None, False),
        (None, None, "def", "v2", True),
        ("abc", "v1", "abc", "v2", False),
    ],
)
def test_cancel_request_applies_only_to_the_upload_it_names(
    request_etag: str | None, request_version: str | None, etag: str, version: str | None, applies: bool
) -> None:
    request = CancelRequest(request_etag, request_version, "2026-11-30T16:00:00Z")
    assert request.applies_to(etag, version) is applies


@pytest.mark.parametrize(
    ("cancel", "before_start", "message"),
    [
        (
            CancelRequest("abc", None, "2026-11-30T16:00:00Z", "alice@host"),
            False,
            "cancelled by alice@host at 2026-11-30T16:00:00Z (lew cancel)",
        ),
        (
            CancelRequest("abc", None, "2026-11-30T16:00:00Z", "alice@host"),
            True,
            "cancelled by alice@host at 2026-11-30T16:00:00Z (lew cancel), before a worker started it",
        ),
        (CancelRequest(None, None, ""), False, "cancelled (lew cancel)"),  # a damaged marker names no one
    ],
)
def test_cancel_request_error_record_names_who_and_when_for_the_worker_and_for_lew(
    cancel: CancelRequest, before_start: bool, message: str
) -> None:
    assert cancel.error_record(before_start=before_start) == {
        "type": "JobCancelled",
        "message": message,
        "permanent": True,
    }
