"""`lew wait`, `lew cancel`, `lew events`, and `lew submit --wait`: thin layers over `lew.client`.

Exit codes of the waiting commands (also in README.md): 0 every job succeeded; 3 a job failed permanently or was
dead-lettered; 4 a job was cancelled; 124 the timeout ran out first (the jobs go on). With several jobs, the
first of 124, 3, 4 that applies; `lew cancel --wait` exits 0 once the job is cancelled. 1 is an error of lew itself
(one line on stderr, e.g. cancelling a finished job), 130 an interrupt.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lew import ops
from lew.argparsing import positive_float
from lew.client import DEAD_LETTERED, TIMED_OUT, Client, JobState, RunningJob, Upload
from lew.jobs_view import JobLine, JobsView, format_age
from lew.ui import plural, print_table
from worker.manifest import CANCELLED, FAILED

if TYPE_CHECKING:
    from lew.target import Target

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_CANCELLED, EXIT_TIMED_OUT = 0, 3, 4, 124
EXIT_CODES = {FAILED: EXIT_FAILED, DEAD_LETTERED: EXIT_FAILED, CANCELLED: EXIT_CANCELLED, TIMED_OUT: EXIT_TIMED_OUT}


def exit_code(states: Sequence[JobState]) -> int:
    """The documented exit code for these outcomes (the module docstring)."""
    codes = {EXIT_CODES.get(state.status, EXIT_SUCCEEDED) for state in states}
    for code in (EXIT_TIMED_OUT, EXIT_FAILED, EXIT_CANCELLED):
        if code in codes:
            return code
    return EXIT_SUCCEEDED


def add_wait_options(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    """--timeout and --download (and --wait itself when waiting is optional, as for `lew submit`)."""
    if optional:
        parser.add_argument("--wait", action="store_true", help="wait for each job's outcome, showing progress")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="stop waiting after S seconds (exit 124; the jobs go on). Default: wait until the outcome",
    )
    parser.add_argument("--download", type=Path, metavar="DIR", help="then download each job's results into DIR")


def add_run_option(parser: argparse.ArgumentParser) -> None:
    """--run ID: the scheduled run of KEY to act on (as `lew schedule fire` printed it), not the upload's job."""
    parser.add_argument(
        "--run", metavar="ID", help="a scheduled run of KEY (e.g. 20261130T030000Z, as `lew schedule fire` printed)"
    )


def job_label(upload: Upload) -> str:
    """How a job is named in lines and tables: its key, and its run when it is a scheduled run."""
    key = ops.shown_key(upload.key)  # a key of hundreds of bytes is cut short, keeping its start and end
    return key if upload.run is None else f"{key} (run {upload.run})"


def register(subcommands: Subcommands, target_options: argparse.ArgumentParser) -> None:
    """Add `wait`, `cancel` and `events`."""
    wait = subcommands.add_parser(
        "wait",
        parents=[target_options],
        help="wait for the outcome of uploads made any way, showing progress",
        description="Wait until each upload's job succeeded, failed, was cancelled or dead-lettered. Exit codes: "
        "0 succeeded, 3 failed or dead-lettered, 4 cancelled, 124 timed out.",
    )
    wait.add_argument(
        "keys", nargs="+", metavar="KEY", help="the upload's key, its name under the input prefix, or s3://"
    )
    add_run_option(wait)
    add_wait_options(wait, optional=False)
    wait.set_defaults(handler=_wait)

    cancel = subcommands.add_parser(
        "cancel",
        parents=[target_options],
        help="cancel a queued or running job",
        description="A queued job is not run; a running job's processor is stopped within a few seconds. Either way "
        "the worker writes a cancelled manifest and deletes the message. A finished job cannot be cancelled.",
    )
    cancel.add_argument("key", metavar="KEY", help="the upload's key, its name under the input prefix, or s3://")
    add_run_option(cancel)
    cancel.add_argument("--wait", action="store_true", help="wait until the worker has cancelled it")
    cancel.add_argument("--timeout", type=positive_float, metavar="S", help="with --wait: stop waiting after S seconds")
    cancel.set_defaults(handler=_cancel)

    events = subcommands.add_parser(
        "events",
        parents=[target_options],
        help="print job state-change events as they happen (local stack; takes them off its events queue)",
        description="Tail the job events (docs/ARCHITECTURE.md) from the stack's events queue; Ctrl-C stops. "
        "The events queue is a queue, not a log: each event is printed once, by whichever reader receives it, and "
        "then deleted. Two `lew events` at once split the events between them, and a second `lew events "
        "--no-follow` prints only what the first has not taken. For several readers, subscribe a queue of each "
        "to the stack's event bus with a rule of its own (README, 'Subscribing').",
    )
    events.add_argument("--json", action="store_true", help="one event per line as JSON, as EventBridge delivers it")
    events.add_argument(
        "--no-follow", action="store_true", help="print the events waiting in the queue (taking them), then stop"
    )
    events.set_defaults(handler=_events)


# -- handlers -------------------------------------------------------------------------------------------------------


def submit(target: Target, args: argparse.Namespace, *, parameters: Mapping[str, str] | None = None) -> int:
    """`lew submit FILE...`: check every file, upload each (with its job `parameters`); with --wait (--timeout,
    --download) wait as `lew wait`."""
    ops.check_uploadable(args.files, target.suffixes)  # all of them before the first upload
    ops.check_results_keys(target, [f"{target.input_prefix}{path.name}" for path in args.files])
    client = Client(target)
    uploads = []
    for path in args.files:
        upload = client.submit(path, parameters=parameters)
        print(f"uploaded {path} -> {upload.uri}")
        uploads.append(upload)
    if not (args.wait or args.timeout is not None or args.download is not None):
        return EXIT_SUCCEEDED
    return wait_for(client, uploads, timeout=args.timeout, download=args.download)


def _wait(args: argparse.Namespace) -> int:
    client = _client(args)
    uploads = [client.run_of(key, args.run) if args.run else client.upload(key) for key in args.keys]
    return wait_for(client, uploads, timeout=args.timeout, download=args.download)


def _cancel(args: argparse.Namespace) -> int:
    client = _client(args)
    upload = client.run_of(args.key, args.run) if args.run else client.upload(args.key)
    result = client.cancel(upload, requested_by=_user())
    named = upload.uri if upload.run is None else f"{upload.uri} (run {upload.run})"
    if result.state == "running":
        print(f"cancel requested for {named}: its worker stops it within a few seconds")
    elif result.state == "retrying":
        print(f"cancel requested for {named}: it waits for its next attempt, which will not run")
    else:
        print(f"cancel requested for {named}: it is queued, and will not run")
    if not args.wait:
        return EXIT_SUCCEEDED
    final = wait_for(client, [upload], timeout=args.timeout, download=None)
    return EXIT_SUCCEEDED if final == EXIT_CANCELLED else final


def _events(args: argparse.Namespace) -> int:
    client = _client(args)
    for event in client.events(follow=not args.no_follow):
        if args.json:
            print(json.dumps(event, ensure_ascii=False), flush=True)
        else:
            print(describe_event(event), flush=True)
    return EXIT_SUCCEEDED


def describe_event(event: dict[str, Any]) -> str:
    """One line for an event: time, status, key, and what matters for that status."""
    found = event.get("detail")
    detail: dict[str, Any] = found if isinstance(found, dict) else {}
    found = detail.get("job")
    job: dict[str, Any] = found if isinstance(found, dict) else {}
    run = job.get("run")
    named = str(job.get("key", "?")) + (f" (run {run.get('id')})" if isinstance(run, dict) else "")
    parts = [str(detail.get("time", "")), f"{detail.get('status', '?'):<13}", named]
    if detail.get("attempt"):
        parts.append(f"attempt {detail['attempt']}")
    progress = detail.get("progress")
    if isinstance(progress, dict):
        total = progress.get("total")
        parts.append(f"{progress.get('done')}/{total}" if total else f"{progress.get('done')} done")
    if detail.get("outputs") is not None and detail.get("status") == "succeeded":
        parts.append(plural(detail["outputs"], "output"))
    parameters = detail.get("parameters")
    if isinstance(parameters, dict) and parameters and detail.get("status") != "progress":
        parts.append(" ".join(f"{name}={json.dumps(value)}" for name, value in parameters.items()))
    error = detail.get("error")
    if isinstance(error, dict):
        parts.append(f"{error.get('type')}: {error.get('message')}")
    return "  ".join(parts)


def print_running(jobs: Sequence[RunningJob]) -> None:
    """The running-jobs table of `lew status`."""
    if not jobs:
        print("running jobs: none")
        return
    rows = [
        [
            job.key if job.run is None else f"{job.key} (run {job.run})",
            JobLine(job.key, "", job.progress).describe().strip() or "-",
            "-" if job.age is None else format_age(job.age),
            (job.task_arn or "-").rsplit("/", 1)[-1],
        ]
        for job in jobs
    ]
    print_table("running jobs", ["input", "progress", "age", "task"], rows)


# -- helpers --------------------------------------------------------------------------------------------------------


def wait_for(client: Client, uploads: Sequence[Upload], *, timeout: float | None, download: Path | None) -> int:
    with JobsView(f"waiting for {plural(len(uploads), 'job')}") as view:
        states = client.wait_all(
            uploads,
            timeout=timeout,
            on_update=lambda state: view.update(jobs=[JobLine.of_state(job_label(state.upload), state)]),
        )
    for state in states:
        print(f"{job_label(state.upload)}: {_outcome_line(state)}")
        if download is not None and state.manifest is not None:
            written = client.download(state, download)
            print(f"  downloaded {plural(len(written), 'file')} into {download}/")
    return exit_code(states)


def _outcome_line(state: JobState) -> str:
    if state.status == TIMED_OUT:
        last = f"; last seen retrying after attempt {state.attempt}: {state.error}" if state.attempt else ""
        return f"timed out waiting (the job goes on; `lew wait` again, or `lew cancel`){last}"
    if state.error:
        return f"{state.status}: {state.error}"
    outputs = len(state.manifest.outputs) if state.manifest is not None else 0
    parameters = ops.parameters_text(state.manifest.parameters) if state.manifest is not None else ""
    with_parameters = f"; parameters {parameters}" if parameters else ""
    return f"{state.status} ({plural(outputs, 'output')}{with_parameters}; manifest {state.manifest_key})"


def _client(args: argparse.Namespace) -> Client:
    return Client.connect(endpoint=args.endpoint, stack=args.stack, region=args.region)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
