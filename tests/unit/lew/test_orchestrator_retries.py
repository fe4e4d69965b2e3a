"""Which failures the orchestrators retry (lew.orchestrate.retryable, lew.prefect's retry condition), and the
example processor's rejections: no stack, no network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect.states import Failed

from lew import ops
from lew.client import JobState, Upload
from lew.errors import LewError
from lew.orchestrate import retryable
from lew.prefect import LewJobFailed, retry_unless_permanent

UPLOAD = Upload("bucket", "incoming/prefect/run/attempt-1/x.zip", "abc123")
SUMMARIZE = Path(__file__).resolve().parents[3] / "examples" / "summarize.py"


def failed(permanent: bool | None) -> JobState:
    error: dict[str, Any] = {"type": "ProcessorRejected", "message": "exit code 3"}
    if permanent is not None:
        error["permanent"] = permanent
    document = {"status": "failed", "source": {"bucket": "bucket", "key": UPLOAD.key}, "outputs": [], "error": error}
    summary = ops.summarize(document, "results/x/manifest.json", "results/", None)
    return JobState(UPLOAD, "failed", manifest=summary, error=summary.error)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (failed(permanent=True), False),
        (failed(permanent=False), True),
        (failed(permanent=None), True),
        (JobState(UPLOAD, "cancelled", error="JobCancelled: by someone"), False),
        (JobState(UPLOAD, "dead-lettered", error="moved to the DLQ after 5 receives"), False),
        (JobState(UPLOAD, "timed out"), True),
    ],
    ids=["permanent", "transient", "unrecorded", "cancelled", "dead-lettered", "timed-out"],
)
def test_retryable_only_for_what_another_attempt_may_not_repeat(state: JobState, expected: bool) -> None:
    # GIVEN a job's final state / WHEN it is judged, as a JobFailed and as Prefect's failed state / THEN
    assert retryable(state) is expected
    assert retry_unless_permanent(None, None, Failed(data=LewJobFailed(state))) is expected


def test_retry_condition_refuses_uploads_lew_refused_and_retries_other_errors() -> None:
    # GIVEN / WHEN / THEN a refused upload is not retried, an S3 outage is
    assert retry_unless_permanent(None, None, Failed(data=LewError("x.zip: no such file or folder"))) is False
    assert retry_unless_permanent(None, None, Failed(data=ConnectionError("S3 unreachable"))) is True


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no CSV file in the archive"),
        ({"a.csv": "region,total\nnorth,1\n"}, "a.csv has no 'amount' column (its columns: region, total)"),
        ({"a.csv": "region,amount\nnorth,lots\n"}, "a.csv line 2: amount 'lots' is not a number"),
    ],
)
def test_example_summarize_rejects_bad_input_on_stderr(tmp_path: Path, files: dict[str, str], message: str) -> None:
    # GIVEN an input folder the example processor cannot summarize
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    output.mkdir()
    for name, text in files.items():
        (source / name).write_text(text, encoding="utf-8")

    # WHEN it runs as lew's command processor runs it
    done = subprocess.run(
        [sys.executable, str(SUMMARIZE), str(source), str(output)], capture_output=True, text=True, check=False
    )

    # THEN it rejects the input (exit 3) with one line on stderr, which lew's failure manifest quotes
    assert done.returncode == 3
    assert done.stderr.strip() == f"summarize: {message}"
    assert message not in done.stdout
