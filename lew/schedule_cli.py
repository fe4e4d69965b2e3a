"""`lew schedule fire`: start a run of the stack's scheduled job now (lew.schedule), optionally waiting for it."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lew.client import Client
from lew.job_parameters import add_param_option, parse_parameters
from lew.lifecycle_cli import EXIT_SUCCEEDED, add_wait_options, job_label, wait_for

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subcommands: Subcommands, target_options: argparse.ArgumentParser) -> None:
    """Add `schedule fire`."""
    schedule = subcommands.add_parser(
        "schedule",
        help="run the stack's scheduled job now",
        description="A stack with ScheduleExpression and ScheduleObjectKey runs a job on that schedule; each run "
        "is a job of its own, with results in RESULT_PREFIX.lew-runs/<key>/<run>/ (docs/deploy.md).",
    )
    actions = schedule.add_subparsers(dest="action", metavar="ACTION", required=True)
    fire = actions.add_parser(
        "fire",
        parents=[target_options],
        help="start a run now, through the launcher, as the schedule would",
        description="Invoke the launcher with the schedule's event for one scheduled time (default now): the run is "
        "queued and workers start as for any job. Exit codes with --wait as `lew wait`'s.",
    )
    fire.add_argument(
        "key", nargs="?", metavar="KEY", help="the object to run (default: the stack's ScheduleObjectKey)"
    )
    fire.add_argument(
        "--at",
        type=_aware_time,
        metavar="TIME",
        help="the run's scheduled time, e.g. 2026-11-30T03:00:00Z, for a tick that was missed (default: now)",
    )
    add_wait_options(fire, optional=True)
    fire.set_defaults(handler=_fire)

    upload = actions.add_parser(
        "upload",
        parents=[target_options],
        help="put the archive every run processes",
        description="Upload FILE as the scheduled job's object (the stack's ScheduleObjectKey, or KEY), with job "
        "parameters as `lew submit` sends them. It starts no run: the schedule, or `lew schedule fire`, does.",
    )
    upload.add_argument("file", type=Path, metavar="FILE")
    upload.add_argument(
        "key", nargs="?", metavar="KEY", help="where to put it (default: the stack's ScheduleObjectKey)"
    )
    add_param_option(upload, example="mode=full", scope="every run")
    upload.set_defaults(handler=_upload)


def _fire(args: argparse.Namespace) -> int:
    client = Client.connect(endpoint=args.endpoint, stack=args.stack, region=args.region)
    upload = client.fire_schedule(args.key, at=args.at)
    print(f"started {job_label(upload)}; its manifest: s3://{upload.bucket}/{client.manifest_key(upload)}")
    if not (args.wait or args.timeout is not None or args.download is not None):
        print(f"`lew wait {upload.key} --run {upload.run}` waits for its outcome")
        return EXIT_SUCCEEDED
    return wait_for(client, [upload], timeout=args.timeout, download=args.download)


def _upload(args: argparse.Namespace) -> int:
    parameters = parse_parameters(args.param)  # a parameter S3 metadata cannot carry fails before any AWS call
    client = Client.connect(endpoint=args.endpoint, stack=args.stack, region=args.region)
    key = client.upload_scheduled(args.file, args.key, parameters=parameters)
    if key == client.target.schedule_key:
        after = "every run of the schedule processes it"
    else:
        after = (
            f"`lew schedule fire {key}` runs it (the stack's schedule runs {client.target.schedule_key or 'nothing'})"
        )
    print(f"uploaded {args.file} -> s3://{client.target.bucket}/{key}; {after}")
    return EXIT_SUCCEEDED


def _aware_time(text: str) -> datetime:
    """An ISO 8601 time with its zone (`--at`), else a usage error naming the value."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2026-11-30T03:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z for UTC, e.g. 2026-11-30T03:00:00Z")
    return moment
