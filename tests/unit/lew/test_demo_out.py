"""`lew demo --out`: each run leaves the results of that run only, and never deletes a file lew did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from lew import cli
from lew.demo_out import RECORD_NAME, DemoOut
from lew.errors import LewError


def run_writes(out: Path, files: dict[str, str]) -> None:
    """What one demo run does to its folder: prepare it, then write and record its files."""
    folder = DemoOut(out)
    folder.prepare()
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        folder.add([path])


def test_a_run_replaces_the_files_of_the_run_before(tmp_path: Path) -> None:
    # GIVEN a first run's results
    out = tmp_path / "results"
    run_writes(out, {"lew-demo.log": "run 1", "marbles/marbles.png": "png", "marbles/manifest.json": "{}"})

    # WHEN a second run writes other results
    run_writes(out, {"lew-demo.log": "run 2", "other/manifest.json": "{}"})

    # THEN only the second run's files are there: no PNG of the first under the second's summary
    files = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    assert files == [RECORD_NAME, "lew-demo.log", "other/manifest.json"]
    assert (out / "lew-demo.log").read_text() == "run 2"
    assert not (out / "marbles").exists()


def test_a_folder_holding_files_lew_did_not_write_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")

    with pytest.raises(LewError) as refused:
        DemoOut(out).prepare()

    assert str(refused.value) == (
        f"--out {out}: holds files lew demo did not write (no {RECORD_NAME}); "
        "empty it or choose another --out (lew only deletes what it wrote)"
    )
    assert (out / "thesis.tex").read_text() == "precious"


def test_a_users_file_among_lews_results_is_named_and_the_folder_left_untouched(tmp_path: Path) -> None:
    # GIVEN a run's results (log, results folder, record), and a file the user added beside them
    out = tmp_path / "results"
    run_writes(out, {"lew-demo.log": "run 1", "marbles/marbles.png": "png", "marbles/manifest.json": "{}"})
    (out / "notes.txt").write_text("mine")
    before = {str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*") if path.is_file()}

    # WHEN the next run prepares the folder
    with pytest.raises(LewError) as refused:
        DemoOut(out).prepare()

    # THEN the refusal names the user's file, and nothing was deleted: check first, delete after
    assert str(refused.value) == (
        f"--out {out}: holds files lew demo did not write (notes.txt); move them or choose another --out"
    )
    after = {str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before
    assert sorted(after) == [RECORD_NAME, "lew-demo.log", "marbles/manifest.json", "marbles/marbles.png", "notes.txt"]


def test_a_record_naming_files_outside_the_folder_is_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    (out / RECORD_NAME).write_text('{"files": ["../precious.txt"]}')

    DemoOut(out).prepare()

    assert outside.read_text() == "keep"


def test_demo_refuses_an_out_folder_of_someone_elses_files_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("a")

    code = cli.main(["demo", "--processor", "inventory", "--out", "docs"])

    assert code == 1
    assert capsys.readouterr().err == (
        f"lew: error: --out docs: holds files lew demo did not write (no {RECORD_NAME}); "
        "empty it or choose another --out (lew only deletes what it wrote)\n"
    )
    assert (tmp_path / "docs" / "a.md").read_text() == "a"


def test_an_out_folder_that_cannot_be_created_is_one_line() -> None:
    with pytest.raises(LewError) as refused:
        DemoOut(Path("/proc/lew-demo-out")).prepare()

    assert str(refused.value) == "--out /proc/lew-demo-out: could not be created (No such file or directory)"
