"""Which announced objects are not work: the skip rules, checked in a documented order (docs/launcher.md)."""

from __future__ import annotations

from collections.abc import Sequence

from lew_launcher.events import ObjectNotice
from lew_launcher.settings import Settings


def matches_suffix(key: str, suffixes: Sequence[str]) -> bool:
    """True if the key ends with one of the (lower-case) suffixes, ignoring case; an empty list accepts all."""
    return not suffixes or key.lower().endswith(tuple(suffixes))


def skip_reason(notice: ObjectNotice, settings: Settings) -> str | None:
    """Why the launcher ignores this object, or None when it becomes a work message.

    A scheduled job's object may lie outside INPUT_PREFIX: the stack's operator chose it (ScheduleObjectKey), and
    keeping it apart means an upload of a new version is not also processed as an upload.
    """
    key = notice.key
    outside = notice.run is None and not key.startswith(settings.input_prefix)
    checks = (
        (not notice.created, f"event {notice.event_name!r} is not an object creation"),
        (key.startswith(settings.result_prefix), f"key is under RESULT_PREFIX {settings.result_prefix!r}"),
        (outside, f"key is outside INPUT_PREFIX {settings.input_prefix!r}"),
        (key.endswith("/"), "key is a folder marker (ends with '/')"),
        (not matches_suffix(key, settings.suffixes), f"suffix is not one of SUFFIXES {','.join(settings.suffixes)!r}"),
        (notice.size == 0, "object is empty (0 bytes)"),
    )
    return next((reason for applies, reason in checks if applies), None)
