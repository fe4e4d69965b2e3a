"""The manifest document and the idempotency rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from worker.errors import SourceGone
from worker.manifest import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    Manifest,
    Output,
    Source,
    _records_upload,
    error_record,
    records_cancel,
    records_claim,
    records_success,
)


def success(etag: str = "abc", version_id: str | None = None) -> dict[str, Any]:
    return {"status": "succeeded", "source": {"etag": etag, "version_id": version_id}}


@pytest.mark.parametrize(
    ("manifest", "etag", "version_id", "expected"),
    [
        (success(), "abc", None, True),
        (success(), '"abc"', None, True),
        (success(), "other", None, False),
        (success(version_id="v1"), "abc", "v1", True),
        (success(version_id="v1"), "abc", "v2", False),
        (success() | {"status": "failed"}, "abc", None, False),
        (None, "abc", None, False),
        (success(), None, None, False),
        ({"status": "succeeded", "source": "junk"}, "abc", None, False),
    ],
)
def test_records_success_matches_etag_and_version(
    manifest: dict[str, Any] | None, etag: str | None, version_id: str | None, expected: bool
) -> None:
    assert records_success(manifest, etag, version_id) is expected


UPLOAD_CASES = [  # (source, etag, version id, the same upload?)
    ({"etag": "abc", "version_id": None}, "abc", None, True),
    ({"etag": '"abc"', "version_id": None}, "abc", None, True),  # quoted or not, one ETag
    ({"etag": "abc", "version_id": None}, "other", None, False),
    ({"etag": "abc", "version_id": "v1"}, "abc", "v1", True),
    ({"etag": "abc", "version_id": "v1"}, "abc", "v2", False),
    ({"etag": "abc", "version_id": "v1"}, "abc", None, True),  # an unversioned view of the object: the ETag decides
    ({"etag": "abc", "version_id": None}, None, None, False),  # no ETag: nothing can be matched
    ("junk", "abc", None, False),
]


@pytest.mark.parametrize("status", [SUCCEEDED, CANCELLED])
@pytest.mark.parametrize(("source", "etag", "version_id", "same"), UPLOAD_CASES)
def test_records_upload_matches_the_status_etag_and_version_for_success_and_cancel_alike(
    status: str, source: Any, etag: str | None, version_id: str | None, same: bool
) -> None:
    # GIVEN a manifest with this status for an upload
    manifest = {"status": status, "source": source}
    records = records_success if status == SUCCEEDED else records_cancel

    # WHEN it is asked whether it records this upload, with its own status, with another, or with no manifest
    # THEN only its own status and the same upload match, and records_success / records_cancel say the same
    assert _records_upload(manifest, status, etag, version_id) is same
    assert records(manifest, etag, version_id) is same
    assert _records_upload(manifest, FAILED, etag, version_id) is False
    assert _records_upload(None, status, etag, version_id) is False
    assert _records_upload({}, status, etag, version_id) is False


def test_manifest_to_json_has_every_documented_field() -> None:
    started = datetime(2026, 11, 21, 19, 30, 0, tzinfo=UTC)
    manifest = Manifest(
        status="failed",
        source=Source("b", "incoming/a.zip", "e", None, 12),
        processor="povray",
        attempt=2,
        started_at=started,
        finished_at=started,
        outputs=[Output("results/a/a.png", 5, "image/png")],
        timings={"download": 0.12345},
        processor_log="tail",
        error=error_record(SourceGone("gone"), permanent=True),
        claim="nonce-1",
        ignored=[{"name": "__MACOSX/._a.pov", "rule": "macos-__MACOSX"}],
        warnings=["command produced no output (it declares that this is fine)"],
    )

    document = json.loads(manifest.to_json())

    assert list(document) == [
        "status",
        "source",
        "outputs",
        "processor",
        "parameters",
        "timings",
        "attempt",
        "task_arn",
        "log_stream",
        "processor_log",
        "error",
        "started_at",
        "finished_at",
        "claim",
        "ignored",
        "warnings",
        "run",
    ]
    assert document["claim"] == "nonce-1"
    assert document["ignored"] == [{"name": "__MACOSX/._a.pov", "rule": "macos-__MACOSX"}]
    assert document["warnings"] == ["command produced no output (it declares that this is fine)"]
    assert document["source"] == {
        "bucket": "b",
        "key": "incoming/a.zip",
        "etag": "e",
        "version_id": None,
        "size": 12,
        "sequencer": None,
    }
    assert document["timings"] == {"download": 0.123}
    assert document["error"] == {"type": "SourceGone", "message": "gone", "permanent": True}
    assert document["started_at"] == "2026-11-21T19:30:00Z"


@pytest.mark.parametrize(
    ("manifest", "nonce", "expected"),
    [
        (success() | {"claim": "n1"}, "n1", True),
        (success() | {"status": "failed", "claim": "n1"}, "n1", True),  # a permanent failure ends its job too
        (success() | {"claim": "n1"}, "n2", False),
        (success(), "n1", False),  # a manifest from before the field: names no claim
        (success() | {"claim": None}, "", False),
        (None, "n1", False),
    ],
)
def test_records_claim_is_true_only_for_the_claim_named_by_the_manifest(
    manifest: dict[str, Any] | None, nonce: str, expected: bool
) -> None:
    assert records_claim(manifest, nonce) is expected


def test_records_success_compares_parameters_when_given() -> None:
    # GIVEN a success recorded with width=320, and one from before the field existed
    manifest = {"status": "succeeded", "source": {"etag": "abc", "version_id": None}, "parameters": {"width": "320"}}
    older = {"status": "succeeded", "source": {"etag": "abc", "version_id": None}}

    # THEN the same ETag with the same parameters is recorded; with others, or none, it is another job
    assert records_success(manifest, "abc", None, (("width", "320"),))
    assert not records_success(manifest, "abc", None, (("width", "640"),))
    assert not records_success(manifest, "abc", None, ())
    assert records_success(older, "abc", None, ())
    assert records_success(manifest, "abc", None)  # parameters not known (before the GET): not compared
