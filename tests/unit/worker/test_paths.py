"""The stem rule of docs/ARCHITECTURE.md."""

from __future__ import annotations

import pytest

from worker.paths import manifest_key, results_folder, stem_for


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
