"""No code of launcher, worker or lew can start a shell, so no key or member name can ever reach one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.shell_scan import python_files, scan_source, scan_tree

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [REPO_ROOT / name for name in ("launcher", "worker", "lew")]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import subprocess\nsubprocess.run('ls ' + key, shell=True)", "shell=True"),
        ("import subprocess as sp\nsp.Popen(cmd, shell=flag)", "shell=flag"),
        ("from subprocess import check_output as co\nco(cmd, shell=1)", "shell=1"),
        ("import os\nos.system('unzip ' + key)", "os.system() runs a shell"),
        ("from os import popen\npopen(key)", "os.popen() runs a shell"),
        ("import subprocess\nsubprocess.getoutput(key)", "subprocess.getoutput() runs a shell"),
        ("import subprocess\nsubprocess.getstatusoutput(key)", "subprocess.getstatusoutput() runs a shell"),
        ("import asyncio\nasyncio.create_subprocess_shell(key)", "asyncio.create_subprocess_shell() runs a shell"),
        ("import subprocess\nsubprocess.run(argv, **options)", "**kwargs passed to a call (could hold shell=)"),
        ("import pty\npty.spawn(argv)", "pty.spawn() runs a shell"),
    ],
)
def test_scan_catches_a_planted_shell_call(source: str, expected: str) -> None:
    # GIVEN a planted shell call, WHEN scanned, THEN it is reported with its line
    findings = scan_source(source, "planted.py")
    assert [f.what for f in findings] == [expected]
    assert findings[0].line == 2


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\nsubprocess.run(['povray', '+I' + scene], shell=False, check=True)",
        "import subprocess\nsubprocess.run(argv, env=env, cwd=folder, timeout=10)",
        "import os\nos.path.join(a, b)",
        "client.run_task(**params)",  # boto3 calls with **kwargs are not processes
    ],
)
def test_scan_accepts_calls_without_a_shell(source: str) -> None:
    assert scan_source(source) == []


def test_scan_walks_every_python_file(tmp_path: Path) -> None:
    # GIVEN a planted call in a nested module
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "ok.py").write_text("print('fine')\n")
    (tmp_path / "pkg" / "sub" / "bad.py").write_text("import os\n\nos.system('x')\n")
    # WHEN the tree is scanned THEN the finding names the file and line
    findings = scan_tree([tmp_path / "pkg"])
    assert [(Path(f.path).name, f.line) for f in findings] == [("bad.py", 3)]


def test_launcher_worker_and_lew_never_start_a_shell() -> None:
    # GIVEN the three packages (which must exist and hold code, so that this test cannot pass vacuously)
    files = python_files(PACKAGES)
    for package in PACKAGES:
        assert any(path.is_relative_to(package) and path.stat().st_size > 0 for path in files), package
    # WHEN scanned THEN nothing in them can start a shell
    findings = scan_tree(PACKAGES)
    assert findings == [], "\n".join(str(f) for f in findings)
