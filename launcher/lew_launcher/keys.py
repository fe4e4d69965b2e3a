"""S3's key encoding in event notifications, undone for the launcher's rules and redone for the work message."""

from __future__ import annotations

from urllib.parse import quote_plus, unquote_plus


def decode_key(raw_key: str) -> str:
    """Decode a key as S3 notifications encode it: ``+`` is a space, ``%XX`` any other byte (``%2F`` too)."""
    return unquote_plus(raw_key)


def encode_key(key: str) -> str:
    """Encode a key the way S3 does in its notifications (``/`` kept), so that ``decode_key`` restores it."""
    return quote_plus(key, safe="/")
