"""The stem rule of docs/ARCHITECTURE.md."""

from __future__ import annotations

import pytest

from worker.paths import S3_KEY_LIMIT_BYTES, key_fits, manifest_key, results_folder, results_key_problem, stem_for


@pytest.mark.parametrize(
    ("key", "stem"),
    [
        ("incoming/a/scene.zip", "a/scene"),
        ("incoming/scene.zip", "scene"),
        ("incoming/x.tar.gz", "x"),
        ("incoming/x.tgz", "x"),
        ("incoming/x.tar", "x"),
        ("other/x.zip", "other/x"),
        ("incoming/notes.txt", "notes.txt"),
        ("incoming/.zip", ".zip"),
        ("incoming/my scene é.zip", "my scene é"),
    ],
)
def test_stem_for_follows_the_architecture_rule(key: str, stem: str) -> None:
    assert stem_for(key, "incoming/") == stem


def test_stem_for_with_an_empty_input_prefix_keeps_the_whole_path() -> None:
    assert stem_for("incoming/a.zip", "") == "incoming/a"


def test_results_folder_and_manifest_key() -> None:
    assert results_folder("incoming/a/scene.zip", "incoming/", "results/") == "results/a/scene/"
    assert manifest_key("incoming/a/scene.zip", "incoming/", "results/") == "results/a/scene/manifest.json"


def test_key_fits_counts_utf8_bytes_not_characters() -> None:
    assert key_fits("a" * S3_KEY_LIMIT_BYTES)
    assert not key_fits("a" * (S3_KEY_LIMIT_BYTES + 1))
    assert not key_fits("é" * (S3_KEY_LIMIT_BYTES // 2 + 1))  # 514 characters, 1028 bytes


def test_results_key_problem_is_none_while_the_manifest_key_fits() -> None:
    # GIVEN a key whose manifest key is exactly 1024 bytes (9 bytes longer than the input key)
    key = "incoming/" + "x" * (S3_KEY_LIMIT_BYTES - 9 - len("incoming/") - len(".zip")) + ".zip"
    assert len(manifest_key(key, "incoming/", "results/").encode()) == S3_KEY_LIMIT_BYTES
    assert results_key_problem(key, "incoming/", "results/") is None


def test_results_key_problem_names_the_manifest_key_length_and_the_limit() -> None:
    key = "incoming/" + "é" * 505 + ".zip"  # 1023 bytes: its manifest key would be 1032
    problem = results_key_problem(key, "incoming/", "results/")
    assert problem is not None
    assert "1032 bytes" in problem and "1024" in problem and key in problem
