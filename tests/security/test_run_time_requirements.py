"""What the worker image and the Lambda package install: every package pinned, at the dev lock's versions.

The image installs worker/requirements.txt with pip, which would resolve any dependency left out of the file
freely at build time; so the file must be closed under dependencies (checked on the installed packages'
metadata, no network). The orchestrator libraries are test-only: only dagster-pipes enters the image.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
WORKER_REQUIREMENTS = ROOT / "worker" / "requirements.txt"
LAUNCHER_REQUIREMENTS = ROOT / "launcher" / "requirements.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
# The image's interpreter (worker/Dockerfile: python:3.12-slim-bookworm), for dependency markers.
IMAGE_ENVIRONMENT = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux"}
ORCHESTRATOR_ONLY = ("dagster", "dagster-aws", "dagster-shared", "prefect")


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (comments and blank lines skipped); other lines refused."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-r "):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", text)
        assert match, f"{path.name}: {text!r} is not pinned as name==version"
        found[canonicalize_name(match.group(1))] = match.group(3)
    return found


def test_pins_refuses_an_unpinned_line(tmp_path: Path) -> None:
    # GIVEN a requirements file with a range
    path = tmp_path / "requirements.txt"
    path.write_text("boto3==1.0\nrich>=13\n", encoding="utf-8")
    # WHEN / THEN it is refused, naming the line
    with pytest.raises(AssertionError, match="rich>=13"):
        pins(path)


@pytest.mark.parametrize("path", [WORKER_REQUIREMENTS, LAUNCHER_REQUIREMENTS], ids=["worker", "launcher"])
def test_run_time_requirements_are_pinned_at_the_dev_lock_versions(path: Path) -> None:
    # GIVEN the dev lock the tests run against
    lock = pins(DEV_LOCK)
    # WHEN the run-time requirements are read
    required = pins(path)
    # THEN each is pinned at the version the tests ran
    assert required
    assert {name: version for name, version in required.items() if lock.get(name) != version} == {}


def test_worker_requirements_hold_every_transitive_dependency() -> None:
    # GIVEN the worker's pins, and the installed packages' own requirements (same versions: the dev lock)
    pinned = pins(WORKER_REQUIREMENTS)
    # WHEN the dependencies of every pinned package are collected for the image's Python
    missing = set()
    for name in pinned:
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": ""}):
                continue
            if canonicalize_name(requirement.name) not in pinned:
                missing.add(f"{requirement.name} (needed by {name})")
    # THEN none is left for pip to resolve at build time
    assert sorted(missing) == []


def test_orchestrator_libraries_stay_out_of_the_image_and_the_lambda_package() -> None:
    # GIVEN the run-time requirements of the image and of the launcher's Lambda zip
    worker, launcher = pins(WORKER_REQUIREMENTS), pins(LAUNCHER_REQUIREMENTS)
    # THEN the orchestrators (test-only, the lew[dagster] / lew[prefect] extras) are in neither...
    assert [name for name in ORCHESTRATOR_ONLY if name in worker or name in launcher] == []
    # ...and the image has the dependency-free dagster-pipes, which Pipes-aware processors import
    assert "dagster-pipes" in worker
    assert "dagster-pipes" not in launcher
