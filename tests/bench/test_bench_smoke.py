"""The benchmark suite's smoke run (tiny N) still works: it prints the table with a row for every benchmark."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPECTED_ROWS = ("1", "2", "3", "4", "5a", "5b", "6a", "6b", "7a", "7b")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_smoke_prints_every_benchmark_row(tmp_path: Path) -> None:
    # GIVEN the suite in smoke mode, writing its report to a scratch file
    report = tmp_path / "BENCHMARKS.md"
    env = {name: value for name, value in os.environ.items() if name != "AWS_ENDPOINT_URL"}

    # WHEN it runs as `make bench-smoke` would, plus --write
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--write", str(report), "--workdir", str(tmp_path / "work")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    # THEN it succeeds, and the table has one row per figure, each with a verdict rather than an error
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "lew benchmarks (smoke run" in result.stdout
    for number in EXPECTED_ROWS:
        assert re.search(rf"│ {re.escape(number)} +│", result.stdout), f"no row {number} in:\n{result.stdout[-4000:]}"
    assert "ERROR" not in result.stdout
    written = report.read_text(encoding="utf-8")
    for number in EXPECTED_ROWS:
        assert re.search(rf"^\| {re.escape(number)} \| ", written, re.MULTILINE), f"no row {number} in {report}"
    assert "## Machine" in written
    assert "Command: `python -m bench --smoke --write" in written
