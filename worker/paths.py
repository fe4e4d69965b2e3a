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

A key outside INPUT_PREFIX (a hand-made message, a bucket notifying the queue directly with another filter) has
its whole key, encoded the same way, one level down in a reserved folder: `other/x.zip` ->
`results/.lew-outside/other%2Fx.zip/`. No key under INPUT_PREFIX has a folder there (their names have no `/`; the
one key named `.lew-outside` is refused), so the two kinds never meet.

A scheduled run (issue 12, docs/deploy.md "Scheduled jobs") processes the same key again and again, each run a job
of its own: its folder is in another reserved folder, by key and then by run id (worker/runs.py):
`schedules/etl.zip` run `20261130T030000Z` -> `results/.lew-runs/schedules%2Fetl.zip/20261130T030000Z/`. The key is
encoded whole, as outside keys are, so a run's folder never depends on INPUT_PREFIX; the key named `.lew-runs` is
refused like `.lew-outside`.
"""

from __future__ import annotations

MANIFEST_NAME = "manifest.json"
OUTSIDE_FOLDER = ".lew-outside"  # the results of keys outside INPUT_PREFIX, one level down
RUNS_FOLDER = ".lew-runs"  # the results of scheduled runs, two levels down: <encoded key>/<run id>
RESERVED_FOLDERS = (OUTSIDE_FOLDER, RUNS_FOLDER)
# S3 refuses keys longer than this many bytes of UTF-8 (KeyTooLongError).
S3_KEY_LIMIT_BYTES = 1024


def folder_name(key: str, input_prefix: str, run: str | None = None) -> str:
    """The name of a key's results folder under RESULT_PREFIX (no trailing `/`).

    Under `input_prefix`: one segment, the key after the prefix with `%` -> `%25`, `/` -> `%2F`. Outside it:
    `.lew-outside/` and the whole key encoded the same way. A scheduled run's (`run` is its id, worker/runs.py):
    `.lew-runs/<whole key encoded>/<run>`.
    """
    if run is not None:
        return f"{RUNS_FOLDER}/{_encode(key)}/{run}"
    if outside_input_prefix(key, input_prefix):
        return f"{OUTSIDE_FOLDER}/{_encode(key)}"
    return _encode(key[len(input_prefix) :])


def _encode(text: str) -> str:
    # `%` first, so that the `%` of a `%2F` written here is never encoded again.
    return text.replace("%", "%25").replace("/", "%2F")


def key_of_folder(name: str, input_prefix: str) -> str:
    """The key whose results folder is `name` (the inverse of `folder_name`; a run's folder gives its key)."""
    if name.startswith(f"{RUNS_FOLDER}/"):
        return _decode(name[len(RUNS_FOLDER) + 1 :].rsplit("/", 1)[0])
    if name.startswith(f"{OUTSIDE_FOLDER}/"):
        return _decode(name[len(OUTSIDE_FOLDER) + 1 :])
    return input_prefix + _decode(name)


def _decode(name: str) -> str:
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
    return "".join(decoded)


def runs_folder(key: str) -> str:
    """The folder name (under RESULT_PREFIX) that holds every run of a scheduled key, ending with '/'."""
    return f"{RUNS_FOLDER}/{_encode(key)}/"


def run_of_folder(name: str) -> str | None:
    """The run id of a scheduled run's folder name, or None for any other folder."""
    if not name.startswith(f"{RUNS_FOLDER}/"):
        return None
    return name.rsplit("/", 1)[-1]


def results_folder(key: str, input_prefix: str, result_prefix: str, run: str | None = None) -> str:
    """The key prefix under which a job's outputs and manifest go, ending with '/'."""
    return f"{result_prefix}{folder_name(key, input_prefix, run)}/"


def manifest_key(key: str, input_prefix: str, result_prefix: str, run: str | None = None) -> str:
    """The key of a job's manifest."""
    return results_folder(key, input_prefix, result_prefix, run) + MANIFEST_NAME


def folder_of_manifest(key: str, result_prefix: str) -> str | None:
    """The folder name of a manifest key (`results/a%2Fx.zip/manifest.json` -> `a%2Fx.zip`), or None.

    None for every other key, such as an output `results/x.zip/sub/manifest.json`: a results folder is one segment
    (or `.lew-outside/` and one segment, or `.lew-runs/` and two: a key and a run id).
    """
    if not key.startswith(result_prefix) or not key.endswith(f"/{MANIFEST_NAME}"):
        return None
    name = key[len(result_prefix) : -len(MANIFEST_NAME) - 1]
    if name.startswith(f"{RUNS_FOLDER}/"):
        segments = name.split("/")
        return name if len(segments) == 3 and all(segments) else None
    segment = name.removeprefix(f"{OUTSIDE_FOLDER}/")
    return name if segment and "/" not in segment else None


def key_fits(key: str) -> bool:
    """True when S3 accepts `key` (at most 1024 bytes of UTF-8)."""
    return len(key.encode()) <= S3_KEY_LIMIT_BYTES


def outside_input_prefix(key: str, input_prefix: str) -> bool:
    """True when a key is not an object under the input prefix (the prefix itself, or a key outside it)."""
    return bool(input_prefix) and (not key.startswith(input_prefix) or key == input_prefix)


def results_key_problem(key: str, input_prefix: str, result_prefix: str, run: str | None = None) -> str | None:
    """Why no result of `key` could be stored (its manifest key would be longer than S3 accepts), or None."""
    manifest = manifest_key(key, input_prefix, result_prefix, run)
    if key_fits(manifest):
        return None
    return (
        f"the manifest key of {key!r} would be {len(manifest.encode())} bytes, more than S3's limit of "
        f"{S3_KEY_LIMIT_BYTES}: shorten the key (results go under {result_prefix}<the key after INPUT_PREFIX, "
        "with / written %2F>/)"
    )
