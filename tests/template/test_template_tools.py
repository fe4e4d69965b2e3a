"""The template passes cfn-lint (sam validate --lint) and checkov, and sam build builds the launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_sam_validate_lint_is_clean() -> None:
    result = run([str(VENV_BIN / "sam"), "validate", "--lint", "--template", "template.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_checkov_finds_nothing() -> None:
    # --skip-download: no network for Prisma Cloud's guideline links; the checks themselves are all local.
    argv = [str(VENV_BIN / "checkov"), "--quiet", "--compact", "--skip-download", "--framework", "cloudformation"]
    result = run([*argv, "--file", "template.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0" in result.stdout


@pytest.mark.slow
def test_sam_build_builds_the_launcher(tmp_path: Path) -> None:
    finder = run([str(REPO_ROOT / "scripts" / "find-python312"), "--dir"])
    assert finder.returncode == 0, f"sam build needs python3.12 for the launcher's runtime: {finder.stderr}"
    environment = {**os.environ, "PATH": f"{finder.stdout.strip()}{os.pathsep}{os.environ['PATH']}"}
    build_dir = tmp_path / "build"
    argv = [str(VENV_BIN / "sam"), "build", "--template", "template.yaml", "--build-dir", str(build_dir)]
    result = run([*argv, "--cache-dir", str(tmp_path / "cache")], env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    bundle = build_dir / "LauncherFunction"
    # THEN the bundle's root holds the handler's package, every module of it, as Lambda imports it ...
    package = REPO_ROOT / "launcher" / "lew_launcher"
    assert sorted(path.name for path in (bundle / "lew_launcher").glob("*.py")) == sorted(
        path.name for path in package.glob("*.py")
    )
    assert "def handler(" in (bundle / "lew_launcher" / "app.py").read_text(encoding="utf-8")
    assert (bundle / "aws_lambda_powertools").is_dir()
    # ... and none of the repository's other code
    assert not {"launcher", "worker", "lew", "tests", "bench", "app.py"} & {path.name for path in bundle.iterdir()}
