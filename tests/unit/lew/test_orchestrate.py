"""What lew.dagster and lew.prefect share, and the Dagster metadata of a manifest: no stack, no network."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from lew import ops
from lew.client import Client, JobState, Upload
from lew.dagster import job_metadata
from lew.errors import LewError
from lew.orchestrate import StateLog, archive_of, cancel_on_stop, failure_line, processor_log, run_key_name
from worker.progress import Progress

UPLOAD = Upload("bucket", "incoming/dagster/run-1/scene/scene.zip", "abc123")


def manifest_state(status: str, **fields: Any) -> JobState:
    document = {
        "status": status,
        "source": {"bucket": "bucket", "key": UPLOAD.key, "etag": "abc123"},
        "outputs": [
            {"key": "results/x/a.png", "size": 10, "content_type": "image/png"},
            {"key": "results/x/b.txt", "size": 5, "content_type": "text/plain"},
        ],
        "processor": "povray",
        "timings": {"download": 0.5, "process": 2.0, "total": 3.0},
        "attempt": 2,
        "task_arn": "arn:aws:ecs:us-east-1:123456789012:task/lew/abc",
        "log_stream": "worker/worker/abc",
        "processor_log": "line one\n\nline two\n",
        "error": None,
        **fields,
    }
    summary = ops.summarize(document, "results/x/manifest.json", "results/", None)
    return JobState(UPLOAD, status, manifest=summary, error=summary.error)


def test_run_key_name_joins_parts_and_refuses_ones_that_would_make_other_folders() -> None:
    # GIVEN / WHEN / THEN a run's parts become one folder each
    assert run_key_name("prefect", "id-1", "attempt-2", "scene.zip") == "prefect/id-1/attempt-2/scene.zip"
    for bad in ("", "a/b", ".."):
        with pytest.raises(LewError, match="cannot name a folder"):
            run_key_name("dagster", bad, "scene.zip")


def test_archive_of_packs_a_folder_with_relative_names_and_passes_an_archive_through(tmp_path: Path) -> None:
    # GIVEN a folder with a nested file, and an archive
    folder = tmp_path / "scene"
    (folder / "sub").mkdir(parents=True)
    (folder / "scene.ini").write_text("x", encoding="utf-8")
    (folder / "sub" / "part.inc").write_text("y", encoding="utf-8")
    archive = tmp_path / "ready.zip"
    archive.write_bytes(b"PK")

    # WHEN each is prepared for upload
    with archive_of(folder) as packed:
        names = sorted(zipfile.ZipFile(packed).namelist())
        packed_name = packed.name
    with archive_of(archive) as passed:
        assert passed == archive

    # THEN the folder became <name>.zip holding its files by relative name, removed afterwards
    assert (packed_name, names) == ("scene.zip", ["scene.ini", "sub/part.inc"])
    assert not packed.exists()


@pytest.mark.parametrize(("make", "message"), [("missing", "no such file or folder"), ("empty", "holds no file")])
def test_archive_of_refuses_what_it_cannot_upload(tmp_path: Path, make: str, message: str) -> None:
    # GIVEN a missing path or an empty folder
    path = tmp_path / make
    if make == "empty":
        path.mkdir()
    # WHEN / THEN one line says so
    with pytest.raises(LewError, match=message), archive_of(path):
        pass


def test_state_log_logs_each_change_once_and_progress_at_most_every_interval() -> None:
    # GIVEN a state log with a long progress interval
    lines: list[str] = []
    log = StateLog(lines.append, progress_seconds=3600)
    running = JobState(UPLOAD, "running", progress=Progress(done=50, total=200, message="frame 5"))

    # WHEN the same running state is seen three times, then the outcome
    for _ in range(3):
        log(running)
    log(manifest_state("succeeded"))

    # THEN the change of state was logged once each, and the progress once
    assert lines == [
        f"[lew] {UPLOAD.uri}: running",
        f"[lew] {UPLOAD.uri}: 25% (frame 5)",
        f"[lew] {UPLOAD.uri}: succeeded",
    ]


def test_state_log_logs_any_status_with_its_error_and_a_timeout_says_the_last_state() -> None:
    # GIVEN a state log, and a job the client reports retrying after an error (a status it does not know of)
    lines: list[str] = []
    log = StateLog(lines.append)
    retrying = JobState(UPLOAD, "retrying", error="KeyError: 'amount'", attempt=1, max_attempts=5)

    # WHEN it is seen twice, then another error, then `wait` gives up
    log(retrying)
    log(retrying)
    log(JobState(UPLOAD, "retrying", error="ValueError: bad row", attempt=2))
    timed_out = log.settled(JobState(UPLOAD, "timed out"))

    # THEN each status and error is logged once, and the timeout's failure names the last state and its error
    assert lines == [
        f"[lew] {UPLOAD.uri}: retrying after attempt 1 of 5: KeyError: 'amount'",
        f"[lew] {UPLOAD.uri}: retrying after attempt 2: ValueError: bad row",
    ]
    assert (
        failure_line(timed_out)
        == f"lew job {UPLOAD.uri} timed out: no outcome in time; last retrying after attempt 2: ValueError: bad row"
    )
    # ...and one that only ever was queued says so
    queued = StateLog(lines.append)
    queued(JobState(UPLOAD, "queued"))
    assert queued.settled(JobState(UPLOAD, "timed out")).error == "no outcome in time; last queued"
    # ...while an outcome is returned as it is
    succeeded = manifest_state("succeeded")
    assert log.settled(succeeded) is succeeded


def test_failure_line_names_the_manifests_error_or_the_reason() -> None:
    # GIVEN a failed job with a manifest, and a dead-lettered one with only a reason
    failed = manifest_state("failed", error={"type": "ProcessorRejected", "message": "exit code 3"})
    dead = JobState(UPLOAD, "dead-lettered", error="moved to the DLQ after 5 receives")
    # WHEN / THEN each is one line naming why
    assert failure_line(failed) == f"lew job {UPLOAD.uri} failed: ProcessorRejected: exit code 3"
    assert failure_line(dead) == f"lew job {UPLOAD.uri} dead-lettered: moved to the DLQ after 5 receives"


def test_job_metadata_carries_outputs_durations_and_the_task() -> None:
    # GIVEN a succeeded job's state
    state = manifest_state("succeeded")
    # WHEN its Dagster metadata is made
    metadata = job_metadata(state)
    # THEN the outputs have S3 URLs and sizes, every phase its seconds, and the task its ARN
    assert metadata["lew/outputs"].value == [
        {"url": "s3://bucket/results/x/a.png", "size": 10, "content_type": "image/png"},
        {"url": "s3://bucket/results/x/b.txt", "size": 5, "content_type": "text/plain"},
    ]
    assert (metadata["lew/output_count"].value, metadata["lew/output_bytes"].value) == (2, 15)
    assert {key: value.value for key, value in metadata.items() if key.startswith("lew/seconds/")} == {
        "lew/seconds/download": 0.5,
        "lew/seconds/process": 2.0,
        "lew/seconds/total": 3.0,
    }
    assert metadata["lew/task_arn"].value == "arn:aws:ecs:us-east-1:123456789012:task/lew/abc"
    assert metadata["lew/manifest"].value == "s3://bucket/results/x/manifest.json"
    assert metadata["lew/attempt"].value == 2
    assert "lew/error" not in metadata
    assert processor_log(state) == ["line one", "line two"]


class FakeClient:
    """Client.upload and Client.cancel, recorded; `stored` says whether the upload's object exists."""

    def __init__(self, *, stored: bool = True) -> None:
        self.stored = stored
        self.cancelled: list[tuple[Upload, str | None]] = []
        self.target = type("Target", (), {"input_prefix": "incoming/"})()

    def upload(self, key: str) -> Upload:
        if not self.stored:
            raise LewError(f"no upload s3://bucket/{key}")
        return Upload("bucket", key, "abc123")

    def cancel(self, upload: Upload, *, requested_by: str | None = None) -> None:
        self.cancelled.append((upload, requested_by))


class Stop(BaseException):
    """Stands for Prefect's TerminationSignal and Dagster's interrupt: a BaseException, not an Exception."""


@pytest.mark.parametrize("stopped", [KeyboardInterrupt(), Stop(), OSError("connection reset")])
def test_cancel_on_stop_cancels_the_job_and_reraises(stopped: BaseException) -> None:
    # GIVEN a run whose wait stops without the job's outcome
    client = FakeClient()
    logged: list[str] = []
    shielded: list[bool] = []

    @contextmanager
    def shield() -> Iterator[None]:
        shielded.append(True)
        yield

    # WHEN it stops inside cancel_on_stop
    guard = cancel_on_stop(
        cast(Client, client), "prefect/run/attempt-1/x.zip", "prefect task run r", logged.append, shield=shield
    )
    with pytest.raises(type(stopped)), guard:
        raise stopped

    # THEN the job at its key is cancelled, by the run, inside the shield, and the log says why
    assert client.cancelled == [
        (Upload("bucket", "incoming/prefect/run/attempt-1/x.zip", "abc123"), "prefect task run r")
    ]
    assert shielded == [True]
    assert any(type(stopped).__name__ in line and "cancelling the job" in line for line in logged), logged


def test_cancel_on_stop_cancels_nothing_when_nothing_was_stored_or_nothing_stopped() -> None:
    # GIVEN an interrupt before the object was stored, and a block that ends normally
    client = FakeClient(stored=False)
    with pytest.raises(KeyboardInterrupt), cancel_on_stop(cast(Client, client), "x.zip", "r", print):
        raise KeyboardInterrupt
    with cancel_on_stop(cast(Client, client), "x.zip", "r", print):
        pass
    # THEN nothing is cancelled
    assert client.cancelled == []


def test_processor_log_keeps_the_tail_shorter_for_a_success_and_says_how_much_more_the_manifest_holds() -> None:
    # GIVEN the 70 lines a POV-Ray render prints, in a succeeded and in a failed job's manifest
    output = "\n".join(f"line {number}" for number in range(1, 71)) + "\n"
    succeeded = manifest_state("succeeded", processor_log=output)
    failed = manifest_state("failed", processor_log=output, error={"type": "X", "message": "y", "permanent": True})

    # WHEN their output is made ready for the run's log
    short, longer = processor_log(succeeded), processor_log(failed)

    # THEN each keeps its tail, after one line naming how many more lines the manifest holds, and where
    assert short[1:] == [f"line {number}" for number in range(66, 71)]
    assert (
        short[0]
        == "processor output: 65 earlier lines in the manifest's processor_log (s3://bucket/results/x/manifest.json)"
    )
    assert longer[1:] == [f"line {number}" for number in range(51, 71)] and longer[0].startswith(
        "processor output: 50 "
    )
