"""The worker image runs as a non-root user and has no compiler; checked on worker/Dockerfile (no Docker here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.dockerfile import effective_user, final_stage, installed_compilers, instructions, read

DOCKERFILE = Path(__file__).resolve().parents[2] / "worker" / "Dockerfile"


def test_dockerfile_reader_joins_continued_lines_and_finds_the_last_stage() -> None:
    text = "FROM a AS build\nRUN apt-get install -y \\\n    gcc\nFROM b\n# comment\nUSER 10001:10001\n"
    assert [(i.keyword, i.arguments) for i in instructions(text)] == [
        ("FROM", "a AS build"),
        ("RUN", "apt-get install -y gcc"),
        ("FROM", "b"),
        ("USER", "10001:10001"),
    ]
    assert [i.keyword for i in final_stage(text)] == ["FROM", "USER"]


@pytest.mark.parametrize(
    ("dockerfile", "user"),
    [
        ("FROM python:3.12-slim\nCMD python\n", "root"),
        ("FROM python:3.12-slim\nUSER 0\n", "0"),
        ("FROM python:3.12-slim\nUSER 10001\nUSER root:root\n", "root"),
        ("FROM x AS build\nUSER 10001\nFROM python:3.12-slim\n", "root"),
        ("FROM python:3.12-slim\nUSER app:app\n", "app"),
    ],
)
def test_effective_user_catches_planted_root_images(dockerfile: str, user: str) -> None:
    assert effective_user(final_stage(dockerfile)) == user


@pytest.mark.parametrize(
    ("run", "left"),
    [
        ("apt-get update && apt-get install -y --no-install-recommends build-essential povray", ["build-essential"]),
        ("apk add --no-cache gcc g++", ["g++", "gcc"]),
        ("apt-get install -y gcc && pip install x && apt-get purge -y gcc", []),
        ("apt-get install -y povray ca-certificates tini", []),
    ],
)
def test_installed_compilers_catches_planted_compilers(run: str, left: list[str]) -> None:
    assert installed_compilers(final_stage(f"FROM python:3.12-slim\nRUN {run}\n")) == left


def test_worker_image_runs_as_a_non_root_user() -> None:
    stage = final_stage(read(DOCKERFILE))
    user = effective_user(stage)
    assert user not in {"root", "0"}, f"worker/Dockerfile runs as {user!r}"
    # The USER comes before the command it applies to.
    keywords = [instruction.keyword for instruction in stage]
    last_user = max(index for index, keyword in enumerate(keywords) if keyword == "USER")
    assert all(index > last_user for index, keyword in enumerate(keywords) if keyword in {"CMD", "ENTRYPOINT"})


def test_worker_image_has_no_compiler() -> None:
    stage = final_stage(read(DOCKERFILE))
    # A slim Python base image ships no compiler...
    base = stage[0].arguments.split()[0]
    assert base.startswith("python:") and "slim" in base, base
    # ...none is installed on top of it...
    assert installed_compilers(stage) == []
    # ...and pip may only install wheels, so it never needs one.
    pip_installs = [i.arguments for i in stage if i.keyword == "RUN" and "pip install" in i.arguments]
    assert pip_installs and all("--only-binary=:all:" in command for command in pip_installs), pip_installs
