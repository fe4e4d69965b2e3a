"""The work message of `lew rerun`, as the worker reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lew import cli
from lew.rerun import rerun_body
from worker.messages import Job, Jobs, parse_body


def test_rerun_body_is_a_rerun_job_of_the_key_as_the_worker_decodes_it() -> None:
    # GIVEN a key with a space, a non-ASCII character and a plus sign
    body = rerun_body("bkt", "incoming/my scène+1.zip", "abc", 12)
    # WHEN the worker parses it
    parsed = parse_body(body)
    # THEN it is one re-run job of exactly that key, with no sequencer (the current version is processed)
    assert parsed == Jobs((Job("bkt", "incoming/my scène+1.zip", size=12, etag="abc", rerun=True),))


def test_an_ordinary_record_is_not_a_rerun() -> None:
    parsed = parse_body(rerun_body("bkt", "incoming/a.zip", "abc", 1).replace('"rerun": true', '"rerun": "yes"'))
    assert isinstance(parsed, Jobs) and not parsed.jobs[0].rerun


def test_lew_rerun_without_a_stack_says_how_to_name_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no running local stack here

    code = cli.main(["rerun", "a.zip"])

    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "--stack NAME" in err


def test_lew_rerun_needs_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["rerun"])
    assert exited.value.code == 2
    assert "KEY" in capsys.readouterr().err
