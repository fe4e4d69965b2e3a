"""Versions and order (worker/versions.py): sequencer comparison, and which version a job processes."""

from __future__ import annotations

from typing import Any

import pytest

from worker.manifest import Source
from worker.messages import Job
from worker.versions import is_older, parse_sequencer, plan, sequencer_to_record


def manifest_with(sequencer: str | None, *, etag: str = "e1", version_id: str | None = "v1") -> dict[str, Any]:
    return {
        "status": "succeeded",
        "source": {
            "bucket": "b",
            "key": "incoming/a.zip",
            "etag": etag,
            "version_id": version_id,
            "sequencer": sequencer,
        },
    }


@pytest.mark.parametrize(
    ("first", "second", "older"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6", True),
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", False),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", False),
        ("FF", "0100", True),  # shorter: left-padded with zeros, so 00FF < 0100
        ("100", "FF", False),  # 100 > 0FF, though "1" < "F" unpadded
        ("00ab", "00AC", True),  # case does not matter
    ],
)
def test_is_older_pads_then_compares(first: str, second: str, older: bool) -> None:
    assert is_older(first, second) is older


@pytest.mark.parametrize(("raw", "parsed"), [("00abC1", "00ABC1"), ("", None), ("xyz", None), (None, None), (5, None)])
def test_parse_sequencer_accepts_only_hex_text(raw: object, parsed: str | None) -> None:
    assert parse_sequencer(raw) == parsed


def test_plan_skips_an_event_older_than_the_manifest() -> None:
    # GIVEN a manifest recording sequencer ...E6, and a late event for ...E5
    job = Job("b", "incoming/a.zip", etag="e0", version_id="v0", sequencer="0055AED6DCD90281E5")
    decision = plan(job, manifest_with("0055AED6DCD90281E6"))
    # THEN it is a skip that names both sequencers
    assert decision.skip is not None and "0055AED6DCD90281E5" in decision.skip and "0055AED6DCD90281E6" in decision.skip


def test_plan_processes_the_events_own_version_when_it_is_newer() -> None:
    job = Job("b", "incoming/a.zip", etag="e2", version_id="v2", sequencer="0055AED6DCD90281E7")
    assert plan(job, manifest_with("0055AED6DCD90281E6")) == plan(job, None)
    assert plan(job, None).skip is None and plan(job, None).pin_version


@pytest.mark.parametrize(
    ("job_sequencer", "manifest"),
    [
        (None, None),  # a hand-made message or `lew rerun`
        (None, manifest_with("0055AED6DCD90281E6")),
        ("0055AED6DCD90281E7", manifest_with(None)),  # a manifest written before sequencers were recorded
    ],
)
def test_plan_processes_the_current_version_when_order_is_unknown(
    job_sequencer: str | None, manifest: dict[str, Any] | None
) -> None:
    decision = plan(Job("b", "incoming/a.zip", version_id="v0", sequencer=job_sequencer), manifest)
    assert decision.skip is None and not decision.pin_version


def test_sequencer_to_record_is_the_events_when_the_get_answered_its_version() -> None:
    job = Job("b", "k", etag="e2", version_id="v2", sequencer="00aa")
    assert sequencer_to_record(Source("b", "k", "e2", "v2", 1), job, None) == "00AA"


def test_sequencer_to_record_is_the_manifests_when_the_get_answered_the_recorded_version() -> None:
    # GIVEN a re-run (no sequencer) of a key whose current version the manifest records
    job = Job("b", "k", rerun=True)
    assert sequencer_to_record(Source("b", "k", "e1", "v1", 1), job, manifest_with("00BB")) == "00BB"


def test_sequencer_to_record_is_none_for_an_object_neither_describes() -> None:
    # GIVEN an unversioned object replaced since its event (another ETag), and a manifest of yet another one
    job = Job("b", "k", etag="e1", sequencer="00AA")
    manifest = manifest_with("00BB", etag="e0", version_id=None)
    assert sequencer_to_record(Source("b", "k", "e2", None, 1), job, manifest) is None
