"""Where a job's results go: the results folder rule of docs/worker.md ("Where results go").

An upload's results folder is `RESULT_PREFIX + <name> + "/"`, where `<name>` is the key after INPUT_PREFIX, whole
(archive suffix included), with every `%` written `%25` and every `/` written `%2F`:

    incoming/scene.zip          ->  results/scene.zip/manifest.json
    incoming/a/scene.zip        ->  results/a%2Fscene.zip/manifest.json
    incoming/a.zip/b.zip        ->  results/a.zip%2Fb.zip/manifest.json
    incoming/100%.zip           ->  results/100%25.zip/manifest.json

The name is one path segment, and the encoding can be undone, so two different keys never share a folder, no
folder lies inside another one (whatever an output is called, it cannot land in, or look like the manifest of,
another upload's folder), and `RESULT_PREFIX<name>/manifest.json` with a `/`-free `<name>` is always a manifest.
"""

from __future__ import annotations

MANIFEST_NAME = "manifest.json"
# S3 refuses keys longer than this many bytes of UTF-8 (KeyTooLongError).
S3_KEY_LIMIT_BYTES = 1024


def folder_name(key: str, input_prefix: str) -> str:
    """The one-segment name of a key's results folder: the key after `input_prefix`, `%` -> `%25`, `/` -> `%2F`.

    The key must lie under the input prefix (`outside_input_prefix` says when it does not).
    """
    relative = key[len(input_prefix) :] if input_prefix and key.startswith(input_prefix) else key
    # `%` first, so that the `%` of a `%2F` written here is never encoded again.
    return relative.replace("%", "%25").replace("/", "%2F")


def key_of_folder(name: str, input_prefix: str) -> str:
    """The key whose results folder is `name` (the inverse of `folder_name`)."""
    decoded = []
    index = 0
    while index < len(name):
        if name.startswith("%2F", index):
            decoded.append("/")
            index += 3
        elif name.startswith("%25", index):
            decoded.append("%")
            index += 3
        else:
            decoded.append(name[index])
            index += 1
    return input_prefix + "".join(decoded)


def results_folder(key: str, input_prefix: str, result_prefix: str) -> str:
    """The key prefix under which a job's outputs and manifest go, ending with '/'."""
    return f"{result_prefix}{folder_name(key, input_prefix)}/"


def manifest_key(key: str, input_prefix: str, result_prefix: str) -> str:
    """The key of a job's manifest."""
    return results_folder(key, input_prefix, result_prefix) + MANIFEST_NAME


def folder_of_manifest(key: str, result_prefix: str) -> str | None:
    """The folder name of a manifest key (`results/a%2Fx.zip/manifest.json` -> `a%2Fx.zip`), or None.

    None for every other key, such as an output `results/x.zip/sub/manifest.json`: a results folder is one segment.
    """
    if not key.startswith(result_prefix) or not key.endswith(f"/{MANIFEST_NAME}"):
        return None
    name = key[len(result_prefix) : -len(MANIFEST_NAME) - 1]
    return name if name and "/" not in name else None


def key_fits(key: str) -> bool:
    """True when S3 accepts `key` (at most 1024 bytes of UTF-8)."""
    return len(key.encode()) <= S3_KEY_LIMIT_BYTES


def outside_input_prefix(key: str, input_prefix: str) -> bool:
    """True when a key is not an object under the input prefix (the prefix itself, or a key outside it)."""
    return bool(input_prefix) and (not key.startswith(input_prefix) or key == input_prefix)


def results_key_problem(key: str, input_prefix: str, result_prefix: str) -> str | None:
    """Why no result of `key` could be stored, or None when its results folder is fine.

    Two reasons: the key is outside INPUT_PREFIX (its folder name would be ambiguous, and the worker's role may
    not read it), or its manifest key would be longer than S3 accepts.
    """
    if outside_input_prefix(key, input_prefix):
        return (
            f"{key!r} is not an object under INPUT_PREFIX {input_prefix!r}: the worker only processes uploads "
            "under it (upload it there)"
        )
    manifest = manifest_key(key, input_prefix, result_prefix)
    if key_fits(manifest):
        return None
    return (
        f"the manifest key of {key!r} would be {len(manifest.encode())} bytes, more than S3's limit of "
        f"{S3_KEY_LIMIT_BYTES}: shorten the key (results go under {result_prefix}<key after {input_prefix or '/'}, "
        "with / written %2F>/)"
    )
