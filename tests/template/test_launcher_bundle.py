"""The launcher's Lambda bundle holds exactly launcher/requirements.txt; it and worker/requirements.txt (the
container's) pin every run-time dependency at the dev lock's version, so that both ship what the tests ran."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LAUNCHER_LOCK = REPO_ROOT / "launcher" / "requirements.txt"
WORKER_LOCK = REPO_ROOT / "worker" / "requirements.txt"
DEV_LOCK = REPO_ROOT / "requirements" / "dev.txt"
# The launcher's runtime (template.yaml: python3.12 on Linux): markers are evaluated for it, not for this machine.
LAMBDA_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux"}
PIN = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==([^\s;#]+)")


def pins(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """{canonical name: (version, extras)} of every `name[extras]==version` line of a requirements file."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            requirement = Requirement(f"{match.group(1)}=={match.group(2)}")
            found[canonicalize_name(requirement.name)] = (match.group(2), frozenset(requirement.extras))
    return found


def closure(roots: dict[str, frozenset[str]]) -> set[str]:
    """Every distribution the roots need at run time on Lambda, read from the installed packages' metadata."""
    needed: set[str] = set()
    queue = list(roots.items())
    while queue:
        name, extras = queue.pop()
        if name in needed:
            continue
        needed.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            markers = [{**LAMBDA_MARKERS, "extra": extra} for extra in extras or {""}]
            if requirement.marker is None or any(requirement.marker.evaluate(m) for m in markers):
                queue.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed


@pytest.mark.parametrize("lock", [LAUNCHER_LOCK, WORKER_LOCK], ids=["launcher", "worker"])
def test_runtime_lock_pins_every_dependency_at_the_dev_lock_version(lock: Path) -> None:
    # GIVEN a run-time lock (the Lambda's or the container's; both run python3.12 on Linux) and the dev lock
    runtime, dev = pins(lock), pins(DEV_LOCK)

    # THEN every pin is the dev lock's version
    assert {name: version for name, (version, _) in runtime.items()} == {name: dev[name][0] for name in runtime}
    # AND the pins are closed: every run-time dependency of a pinned package is pinned too
    assert closure({name: extras for name, (_, extras) in runtime.items()}) == set(runtime)


@pytest.mark.slow
def test_sam_build_bundles_exactly_the_launcher_lock(tmp_path: Path) -> None:
    # GIVEN a fresh `sam build` of the launcher (with the python3.12 that `make build` uses)
    finder = subprocess.run(
        [str(REPO_ROOT / "scripts" / "find-python312"), "--dir"], capture_output=True, text=True, check=False
    )
    assert finder.returncode == 0, f"sam build needs python3.12 for the launcher's runtime: {finder.stderr}"
    environment = {**os.environ, "PATH": f"{finder.stdout.strip()}{os.pathsep}{os.environ['PATH']}"}
    build_dir = tmp_path / "build"
    argv = [str(VENV_BIN / "sam"), "build", "LauncherFunction", "--template", "template.yaml"]
    result = subprocess.run(
        [*argv, "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # WHEN its bundled distributions are read
    bundled = {
        canonicalize_name(info.metadata["Name"]): info.version
        for info in metadata.distributions(path=[str(build_dir / "LauncherFunction")])
    }

    # THEN they are exactly the pinned ones, at the pinned versions: nothing more, nothing newer
    assert bundled == {name: version for name, (version, _) in pins(LAUNCHER_LOCK).items()}
