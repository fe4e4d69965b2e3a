"""Versions and order: which version of a key a job processes, and when a late event is a skip.

S3 delivers the events of one key in any order. Each S3 event record carries a `sequencer`, a hex string that grows
with every PUT or DELETE of the key; S3's documentation says to compare two of them by left-padding the shorter with
zeros and comparing as strings. The manifest records the sequencer of the version it describes, so:

- a record with a sequencer, against a manifest that records one: older is a logged skip; otherwise the record's own
  version is processed (the GET names its versionId).
- a record without a sequencer (a hand-made message, `lew rerun`), or a manifest that records none (written before
  this rule, or by such a record): the comparison is impossible, so the job processes the key's *current* version
  (the GET names no versionId). The current version is the newest there is, so the manifest never goes back in time.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from worker.manifest import Source
from worker.messages import Job, normalise_etag

HEX_DIGITS = frozenset(string.hexdigits)


def parse_sequencer(value: object) -> str | None:
    """A sequencer in upper case, or None when `value` is not a non-empty hex string (then it orders nothing)."""
    if not isinstance(value, str) or not value or not set(value) <= HEX_DIGITS:
        return None
    return value.upper()


def is_older(sequencer: str, than: str) -> bool:
    """True when `sequencer` comes before `than`: left-pad both to one length with zeros, then compare as strings."""
    width = max(len(sequencer), len(than))
    return sequencer.upper().rjust(width, "0") < than.upper().rjust(width, "0")


def recorded_sequencer(manifest: dict[str, Any] | None) -> str | None:
    """The sequencer a manifest records for the version it describes, or None."""
    source = manifest.get("source") if manifest else None
    return parse_sequencer(source.get("sequencer")) if isinstance(source, dict) else None


@dataclass(frozen=True)
class Plan:
    """What a job does about versions: skip (with the reason to log), or GET the record's version or the current one."""

    skip: str | None = None
    pin_version: bool = True


def plan(job: Job, manifest: dict[str, Any] | None) -> Plan:
    """Decide, from the record and the key's manifest (None when there is none), which version to process."""
    ours = parse_sequencer(job.sequencer)
    theirs = recorded_sequencer(manifest)
    if ours is None:
        return Plan(pin_version=False)
    if manifest is None:
        return Plan()
    if theirs is None:
        return Plan(pin_version=False)
    if is_older(ours, theirs):
        return Plan(skip=f"the event's sequencer {ours} is older than the manifest's {theirs}: a newer version is done")
    return Plan()


def same_object(source: Source, etag: str | None, version_id: str | None) -> bool:
    """True when a GET's answer is the object a record or manifest describes (its version, or else its ETag)."""
    if source.version_id and version_id:
        return source.version_id == version_id
    return bool(etag) and normalise_etag(source.etag) == normalise_etag(etag)


def sequencer_to_record(source: Source, job: Job, manifest: dict[str, Any] | None) -> str | None:
    """The sequencer the new manifest records for the object the GET answered with: known only when it is the
    record's object (then the record's), or the manifest's (then the manifest's); None otherwise."""
    if same_object(source, job.etag, job.version_id) and parse_sequencer(job.sequencer):
        return parse_sequencer(job.sequencer)
    previous = manifest.get("source") if manifest else None
    if isinstance(previous, dict) and same_object(source, previous.get("etag"), previous.get("version_id")):
        return recorded_sequencer(manifest)
    return None
