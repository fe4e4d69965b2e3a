"""The files README.md's walk-through creates are git-ignored, so following it leaves a clean `git status`."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from lew.template import REPO_ROOT


def walkthrough_paths() -> list[str]:
    """What the walk-through writes: the archives it zips or submits, and the folders results are downloaded to."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## See it work on your machine") : readme.index("## Deploy to AWS")]
    paths = set(re.findall(r"zip -q \.\./\.\./(\S+)", section))
    paths |= {f"{folder.strip('./')}/x" for folder in re.findall(r"--download (\S+)", section)}
    paths |= set(re.findall(r"lew submit (\S+\.(?:zip|tgz|tar|tar\.gz))", section))
    return sorted(paths | {"results/marbles/marbles.png", ".lew/local.json", ".lew/local.lock"})


@pytest.mark.skipif(shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="needs a git checkout")
def test_every_file_the_walkthrough_creates_is_ignored() -> None:
    paths = walkthrough_paths()
    assert {"scene.zip", "other.tgz", "out/x"} <= set(paths)

    git = shutil.which("git") or "git"
    ignored = subprocess.run(
        [git, "check-ignore", "--no-index", *paths], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )

    assert sorted(ignored.stdout.split()) == paths
