"""The results folder rule of docs/worker.md ("Where results go")."""

from __future__ import annotations

import itertools

import pytest

from worker.claims import claim_key
from worker.paths import (
    RESERVED_FOLDERS,
    S3_KEY_LIMIT_BYTES,
    folder_name,
    folder_of_manifest,
    key_fits,
    key_of_folder,
    manifest_key,
    outside_input_prefix,
    results_folder,
    results_key_problem,
    run_of_folder,
)

# Keys chosen to collide under the old stem rule (results/<key without prefix and archive suffix>/), or to nest.
AWKWARD_KEYS = [
    "incoming/other.zip",
    "incoming/other.tgz",
    "incoming/other.tar.gz",
    "incoming/other",
    "incoming/a.zip",
    "incoming/a.zip/b.zip",
    "incoming/a.zip%2Fb.zip",
    "incoming/a%2Fb.zip",
    "incoming/a/b.zip",
    "incoming/a%b.zip",
    "incoming/a%25b.zip",
    "incoming//x.zip",
    "incoming/x.zip/",
    "incoming/.lew-claims",
    "incoming/manifest.json",
    "incoming/x.zip/manifest.json",
    "incoming/my scene é.zip",
    "incoming/sha256/" + "0" * 64,
    "incoming/.lew-outside",
    "incoming/.lew-outside/other%2Fx.zip",
    "incoming/.lew-runs",
    "incoming/.lew-runs/other%2Fx.zip/20261130T030000Z",
    "other/x.zip",  # outside the input prefix
    "x.zip",
    "incoming",
    "incoming/",
    ".lew-outside/x.zip",
]


@pytest.mark.parametrize(
    ("key", "manifest"),
    [
        ("incoming/scene.zip", "results/scene.zip/manifest.json"),
        ("incoming/a/scene.zip", "results/a%2Fscene.zip/manifest.json"),
        ("incoming/a.zip/b.zip", "results/a.zip%2Fb.zip/manifest.json"),
        ("incoming/100%.zip", "results/100%25.zip/manifest.json"),
        ("incoming/my scene é.tar.gz", "results/my scene é.tar.gz/manifest.json"),
    ],
)
def test_manifest_key_follows_the_documented_examples(key: str, manifest: str) -> None:
    assert manifest_key(key, "incoming/", "results/") == manifest


def test_results_folder_of_two_keys_differing_only_by_extension_differ() -> None:
    # GIVEN two uploads that the old rule sent to the same results/other/
    # WHEN their folders are named
    # THEN each has its own
    assert results_folder("incoming/other.zip", "incoming/", "results/") == "results/other.zip/"
    assert results_folder("incoming/other.tgz", "incoming/", "results/") == "results/other.tgz/"


def test_folder_name_is_one_segment_and_never_shared_nor_nested() -> None:
    # GIVEN keys that collide or nest under simpler rules, under the input prefix and outside it
    names = {key: folder_name(key, "incoming/") for key in AWKWARD_KEYS}
    # THEN every name is one path segment (or .lew-outside/ and one), all differ, none is a prefix of another folder
    assert all("/" not in name.removeprefix(".lew-outside/") for name in names.values())
    assert len(set(names.values())) == len(AWKWARD_KEYS)
    # (but for the reserved `.lew-outside` and `.lew-runs`: those keys have no archive suffix, so they never have
    # outputs, and the worker refuses them by name: test_a_key_whose_results_folder_would_be_a_reserved_folder...)
    for first, second in itertools.permutations(names.values(), 2):
        assert first in RESERVED_FOLDERS or not f"results/{second}/".startswith(f"results/{first}/")


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_key_of_folder_undoes_folder_name(key: str) -> None:
    assert key_of_folder(folder_name(key, "incoming/"), "incoming/") == key


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_claim_key_is_one_per_key(key: str) -> None:
    # GIVEN every other awkward key
    others = [other for other in AWKWARD_KEYS if other != key]
    # THEN no two share a claim, and no claim lies in a results folder
    claim = claim_key("results/", folder_name(key, "incoming/"))
    assert claim not in {claim_key("results/", folder_name(other, "incoming/")) for other in others}
    assert folder_of_manifest(claim, "results/") is None


def test_folder_of_manifest_accepts_only_one_segment_folders() -> None:
    # GIVEN a manifest, and outputs whose relative names look like manifests
    assert folder_of_manifest("results/a%2Fx.zip/manifest.json", "results/") == "a%2Fx.zip"
    # THEN only the first is a manifest
    assert folder_of_manifest("results/x.zip/sub/manifest.json", "results/") is None
    assert folder_of_manifest("results/x.zip/b.zip/manifest.json", "results/") is None
    assert folder_of_manifest("results/manifest.json", "results/") is None
    assert folder_of_manifest("elsewhere/x.zip/manifest.json", "results/") is None


def test_folder_name_with_an_empty_input_prefix_keeps_the_whole_key() -> None:
    assert folder_name("incoming/a.zip", "") == "incoming%2Fa.zip"
    assert key_of_folder("incoming%2Fa.zip", "") == "incoming/a.zip"


@pytest.mark.parametrize(("key", "outside"), [("incoming/a.zip", False), ("a.zip", True), ("incoming/", True)])
def test_outside_input_prefix(key: str, outside: bool) -> None:
    assert outside_input_prefix(key, "incoming/") is outside
    assert not outside_input_prefix(key, "")


def test_a_key_outside_the_input_prefix_has_its_whole_key_in_the_outside_folder() -> None:
    assert manifest_key("other/x.zip", "incoming/", "results/") == "results/.lew-outside/other%2Fx.zip/manifest.json"
    assert folder_of_manifest("results/.lew-outside/other%2Fx.zip/manifest.json", "results/") == (
        ".lew-outside/other%2Fx.zip"
    )
    assert folder_of_manifest("results/.lew-outside/other%2Fx.zip/sub/manifest.json", "results/") is None
    assert results_key_problem("other/x.zip", "incoming/", "results/") is None


def test_key_fits_counts_utf8_bytes_not_characters() -> None:
    assert key_fits("a" * S3_KEY_LIMIT_BYTES)
    assert not key_fits("a" * (S3_KEY_LIMIT_BYTES + 1))
    assert not key_fits("é" * (S3_KEY_LIMIT_BYTES // 2 + 1))  # 514 characters, 1028 bytes


def test_results_key_problem_is_none_while_the_manifest_key_fits() -> None:
    # GIVEN a key whose manifest key is exactly 1024 bytes (results/ + name + /manifest.json)
    key = "incoming/" + "x" * (S3_KEY_LIMIT_BYTES - len("results/") - len("/manifest.json") - len(".zip")) + ".zip"
    assert len(manifest_key(key, "incoming/", "results/").encode()) == S3_KEY_LIMIT_BYTES
    assert results_key_problem(key, "incoming/", "results/") is None


def test_results_key_problem_counts_the_encoded_slashes() -> None:
    # GIVEN a key that fits as it is, but whose slashes take three bytes each in the folder name
    key = "incoming/" + "a/" * 400 + "x.zip"
    assert key_fits(key)
    # THEN its manifest key is too long, and the problem says so
    problem = results_key_problem(key, "incoming/", "results/")
    assert problem is not None
    assert f"{len(manifest_key(key, 'incoming/', 'results/').encode())} bytes" in problem and "1024" in problem


# --- scheduled runs --------------------------------------------------------------------------------------------

RUNS = ["20261130T030000Z", "20261201T030000Z", "20261130T030000.123Z"]


def test_a_scheduled_run_has_its_folder_under_the_runs_folder_by_key_and_run() -> None:
    # GIVEN a scheduled key outside the input prefix and one inside it
    # THEN each run's folder is .lew-runs/<whole key encoded>/<run id>, whatever INPUT_PREFIX is
    assert manifest_key("schedules/etl.zip", "incoming/", "results/", "20261130T030000Z") == (
        "results/.lew-runs/schedules%2Fetl.zip/20261130T030000Z/manifest.json"
    )
    assert folder_name("incoming/etl.zip", "incoming/", "20261130T030000Z") == (
        ".lew-runs/incoming%2Fetl.zip/20261130T030000Z"
    )
    assert run_of_folder(".lew-runs/incoming%2Fetl.zip/20261130T030000Z") == "20261130T030000Z"
    assert run_of_folder("etl.zip") is None


def test_run_folders_never_meet_each_other_nor_an_uploads_folder() -> None:
    # GIVEN every awkward key as an upload, and as a scheduled key run three times
    uploads = [folder_name(key, "incoming/") for key in AWKWARD_KEYS]
    runs = [folder_name(key, "incoming/", run) for key in AWKWARD_KEYS for run in RUNS]
    # THEN every run has a folder of its own, and no folder lies in another (but for the refused .lew-runs key)
    assert len(set(runs)) == len(runs)
    assert not set(runs) & set(uploads)
    for first, second in itertools.permutations(uploads + runs, 2):
        assert first in RESERVED_FOLDERS or not f"results/{second}/".startswith(f"results/{first}/")
    # AND every run's claim is its own, apart from every upload's
    claims = [claim_key("results/", name) for name in uploads + runs]
    assert len(set(claims)) == len(claims)


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_key_of_folder_undoes_a_runs_folder_name(key: str) -> None:
    assert key_of_folder(folder_name(key, "incoming/", RUNS[0]), "incoming/") == key


def test_folder_of_manifest_accepts_a_runs_manifest_but_not_its_outputs() -> None:
    assert folder_of_manifest("results/.lew-runs/s%2Fe.zip/20261130T030000Z/manifest.json", "results/") == (
        ".lew-runs/s%2Fe.zip/20261130T030000Z"
    )
    assert folder_of_manifest("results/.lew-runs/s%2Fe.zip/20261130T030000Z/sub/manifest.json", "results/") is None
    assert folder_of_manifest("results/.lew-runs/s%2Fe.zip/manifest.json", "results/") is None
    assert folder_of_manifest("results/.lew-runs//20261130T030000Z/manifest.json", "results/") is None
