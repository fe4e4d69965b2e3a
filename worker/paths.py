"""Where a job's results go: the stem rule of docs/ARCHITECTURE.md."""

from __future__ import annotations

from worker.archive import archive_suffix

MANIFEST_NAME = "manifest.json"
# S3 refuses keys longer than this many bytes of UTF-8 (KeyTooLongError).
S3_KEY_LIMIT_BYTES = 1024


def stem_for(key: str, input_prefix: str) -> str:
    """The key relative to the input prefix, without its archive suffix (`incoming/a/x.zip` → `a/x`)."""
    relative = key[len(input_prefix) :] if input_prefix and key.startswith(input_prefix) else key
    suffix = archive_suffix(relative)
    stripped = relative[: -len(suffix)] if suffix else relative
    # `incoming/.zip` has nothing left once stripped; keep the name rather than write to `results//`.
    return stripped or relative


def results_folder(key: str, input_prefix: str, result_prefix: str) -> str:
    """The key prefix under which a job's outputs and manifest go, ending with '/'."""
    return f"{result_prefix}{stem_for(key, input_prefix)}/"


def manifest_key(key: str, input_prefix: str, result_prefix: str) -> str:
    """The key of a job's manifest."""
    return results_folder(key, input_prefix, result_prefix) + MANIFEST_NAME


def key_fits(key: str) -> bool:
    """True when S3 accepts `key` (at most 1024 bytes of UTF-8)."""
    return len(key.encode()) <= S3_KEY_LIMIT_BYTES


def results_key_problem(key: str, input_prefix: str, result_prefix: str) -> str | None:
    """Why no result of `key` could be stored (its manifest key is too long for S3), or None when it fits."""
    manifest = manifest_key(key, input_prefix, result_prefix)
    if key_fits(manifest):
        return None
    return (
        f"the manifest key of {key!r} would be {len(manifest.encode())} bytes, more than S3's limit of "
        f"{S3_KEY_LIMIT_BYTES}: shorten the key (results go under {result_prefix}<stem>/)"
    )
