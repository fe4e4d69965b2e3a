"""Exit codes of the waiting commands, the event line of `lew events`, and the plain progress view."""

from __future__ import annotations

import io

import pytest

from lew import ops
from lew.cli import build_parser
from lew.client import DEAD_LETTERED, QUEUED, RUNNING, TIMED_OUT, JobState, Upload
from lew.jobs_view import JobLine, JobsView, format_age
from lew.lifecycle_cli import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_SUCCEEDED,
    EXIT_TIMED_OUT,
    _outcome_line,
    describe_event,
    exit_code,
)
from worker.events import job_event
from worker.messages import Job
from worker.progress import Progress
from worker.runs import Run

UPLOAD = Upload("b", "incoming/a.zip", "abc")


def states(*statuses: str) -> list[JobState]:
    return [JobState(UPLOAD, status) for status in statuses]


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["succeeded"], EXIT_SUCCEEDED),
        (["succeeded", "succeeded"], EXIT_SUCCEEDED),
        (["failed"], EXIT_FAILED),
        ([DEAD_LETTERED], EXIT_FAILED),
        (["cancelled"], EXIT_CANCELLED),
        ([TIMED_OUT], EXIT_TIMED_OUT),
        (["succeeded", "cancelled", "failed"], EXIT_FAILED),
        (["failed", TIMED_OUT], EXIT_TIMED_OUT),
    ],
)
def test_exit_code_tells_success_failure_cancel_and_timeout_apart(statuses: list[str], code: int) -> None:
    assert exit_code(states(*statuses)) == code


def test_job_state_is_finished_only_with_an_outcome() -> None:
    assert [state.finished for state in states(QUEUED, RUNNING, TIMED_OUT, "succeeded", DEAD_LETTERED)] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_describe_event_gives_one_line_per_status() -> None:
    job = Job("b", "incoming/a.zip", etag="abc")
    progress = job_event("progress", job, attempt=1, progress={"done": 5, "total": 10, "message": None})
    failed = job_event(
        "failed", job, attempt=2, manifest_key="m", outputs=0, error={"type": "Bad", "message": "no", "permanent": True}
    )
    assert "progress       incoming/a.zip  attempt 1  5/10" in describe_event({"detail": progress})
    assert describe_event({"detail": failed}).endswith("attempt 2  Bad: no")
    assert "?" in describe_event({"detail": "garbage"})

    run = Job("b", "schedules/etl.zip", run=Run("20261130T030000Z", "2026-11-30T03:00:00Z"))
    assert "started        schedules/etl.zip (run 20261130T030000Z)" in describe_event(
        {"detail": job_event("started", run, attempt=1)}
    )


def test_describe_event_names_the_jobs_parameters_typed() -> None:
    job = Job("b", "incoming/a.zip", etag="abc")
    succeeded = job_event(
        "succeeded", job, attempt=1, manifest_key="m", outputs=1, parameters={"width": 320, "mode": "fast", "v": True}
    )

    assert describe_event({"detail": succeeded}).endswith('1 output  width=320 mode="fast" v=true')
    assert "=" not in describe_event({"detail": job_event("started", job, attempt=1)})


def test_jobs_view_writes_a_line_per_change_when_not_a_terminal() -> None:
    # GIVEN a view on a pipe
    stream = io.StringIO()
    with JobsView("jobs", stream=stream) as view:
        # WHEN a job moves through a few states, some of them in the same 10% step
        for line in (
            JobLine("a.zip", "queued"),
            JobLine("a.zip", "running", Progress(1, 100)),
            JobLine("a.zip", "running", Progress(5, 100)),
            JobLine("a.zip", "running", Progress(50, 100, "half")),
            JobLine("a.zip", "succeeded", age=75),
        ):
            view.update({"queued": 0}, [line])

    # THEN one line per change of status or step
    assert stream.getvalue().splitlines() == [
        "jobs: queued 0",
        "  a.zip: queued",
        "  a.zip: running 1%",
        "  a.zip: running 50% half",
        "  a.zip: succeeded (1 min 15 s)",
    ]


def test_format_age() -> None:
    assert [format_age(s) for s in (3, 65, 7260)] == ["3 s", "1 min 05 s", "2 h 01 min"]


def test_submit_wait_wait_cancel_and_events_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(["submit", "a.zip", "--wait", "--timeout", "30", "--download", "out"])
    assert (args.wait, args.timeout, str(args.download)) == (True, 30.0, "out")
    assert parser.parse_args(["wait", "a.zip", "b.zip"]).keys == ["a.zip", "b.zip"]
    assert parser.parse_args(["cancel", "a.zip", "--wait"]).wait is True
    assert parser.parse_args(["events", "--json", "--no-follow"]).no_follow is True
    with pytest.raises(SystemExit):
        parser.parse_args(["wait", "a.zip", "--timeout", "0"])


def test_outcome_line_names_the_jobs_parameters_and_counts_outputs_properly() -> None:
    # GIVEN finished jobs, with parameters and one output, and without parameters with two
    def finished(parameters: dict[str, str], outputs: int) -> JobState:
        document = {"status": "succeeded", "parameters": parameters, "outputs": [{"key": "o"}] * outputs}
        manifest = ops.summarize(document, "results/a.zip/manifest.json", "results/", None)
        return JobState(UPLOAD, "succeeded", manifest=manifest)

    # WHEN their outcome lines are written THEN the parameters are named as a command line gives them
    assert _outcome_line(finished({"width": "320", "height": "240"}, 1)) == (
        "succeeded (1 output; parameters height=240 width=320; manifest results/a.zip/manifest.json)"
    )
    assert _outcome_line(finished({}, 2)) == "succeeded (2 outputs; manifest results/a.zip/manifest.json)"
