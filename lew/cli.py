"""The `lew` command.

Each subcommand is a `register(subcommands)` function that adds its parser and sets `handler` to a function
taking the parsed arguments and returning the exit code. To add one, write such a function (in its own module
if it is large) and list it in `REGISTRARS`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, TypeAlias

from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from lew import cost, dead_letters, lifecycle_cli, ops, schedule_cli, stopped_tasks
from lew.argparsing import OneLineParser, one_line, positive_float, positive_int
from lew.aws_failures import describe_aws_failure
from lew.client import Client
from lew.demo import DEMO_JOB_OPTION, DemoOptions, run_demo
from lew.errors import LewError
from lew.files import check_writable_folder, create_folder
from lew.job_parameters import add_param_option, parse_parameters
from lew.local.chaos import add_fail_task_starts_option, start_failures_from_args
from lew.local.output import LogSink, prefixed_stream_sink
from lew.local.processor_parameters import SUBMIT_HINT
from lew.local.settings import (
    DEFAULT_RECONCILE_SECONDS,
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    LocalSettings,
    build_settings,
    parse_assignments,
)
from lew.local.stack import LocalStack, PortInUseError
from lew.queues import queue_depths
from lew.state import LocalState, StackLock, remember_port, remembered_port, remove_state, state_path, write_state
from lew.target import Target, resolve_target
from lew.template import DEFAULT_TEMPLATE, load_template
from lew.ui import plural, print_table

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader went away
STATE_HINT = ".lew/local.json"
MAX_PORT = 65535
IDLE_CHECK_SECONDS = 0.5


# -- shared options -----------------------------------------------------------------------------------------------


class _OneStack(argparse.Action):
    """`--endpoint` and `--stack` each name a stack: refuse both at once (help keeps them in their group).

    A mutually exclusive group would do this, but argparse lists its options outside their argument group once the
    group is inherited through `parents=` (every subcommand gets these options that way).
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        for other in ("endpoint", "stack"):
            if other != self.dest and getattr(namespace, other, None) is not None:
                parser.error(f"--{self.dest} and --{other} name two stacks: pass one of them")
        setattr(namespace, self.dest, values)


def _target_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    where = parent.add_argument_group("which stack (default: the one `lew local up` runs in this folder or above)")
    where.add_argument(
        "--endpoint", action=_OneStack, metavar="URL", help="a local stack's endpoint, e.g. http://127.0.0.1:5000"
    )
    where.add_argument(
        "--stack", action=_OneStack, metavar="NAME", help="a deployed stack's name (reads its CloudFormation outputs)"
    )
    where.add_argument("--region", help="the stack's region (default: samconfig.toml's, else your AWS configuration's)")
    return parent


def _local_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--processor",
        help="povray, inventory, command or package.module:function (default: povray if installed, else inventory)",
    )
    parent.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, e.g. MaxWorkers=2 (repeatable); a job parameter for the processor "
        "goes with each upload instead (lew submit --param, lew demo --job-param)",
    )
    parent.add_argument(
        "--reconcile-seconds",
        type=positive_float,
        default=DEFAULT_RECONCILE_SECONDS,
        help="how often the reconcile event fires (default: %(default)s)",
    )
    parent.add_argument(
        "--template", type=Path, default=DEFAULT_TEMPLATE, help="the SAM template to read defaults from"
    )
    return parent


def _target(args: argparse.Namespace) -> Target:
    return resolve_target(endpoint=args.endpoint, stack=args.stack, region=args.region)


def _parameters(args: argparse.Namespace, job_option: str = SUBMIT_HINT) -> dict[str, str]:
    """The template parameters of `--param`; `job_option` is where this command takes job parameters instead."""
    if not args.param:
        return {}
    declared = load_template(args.template).get("Parameters") or {}
    return parse_assignments(args.param, declared, args.template.name, processor=args.processor, job_option=job_option)


# -- demo ---------------------------------------------------------------------------------------------------------


def register_demo(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "demo",
        parents=[_local_options()],
        help="run the whole pipeline locally on the bundled samples (or your archives)",
        description="Start the local stack, upload archives, show progress, download results, print a summary, stop.",
    )
    parser.add_argument(
        "archives", nargs="*", type=Path, metavar="ARCHIVE", help="archives to process (default: the bundled samples)"
    )
    parser.add_argument(
        "--job-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a job parameter for the processor, sent with every archive the demo uploads, e.g. width=320 "
        "(repeatable; checked against what the processor declares before anything starts)",
    )
    parser.add_argument("--out", type=Path, default=Path("results"), help="where results go (default: %(default)s/)")
    parser.add_argument(
        "--timeout", type=positive_float, default=600.0, help="give up after this many seconds (default: %(default)s)"
    )
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    options = DemoOptions(
        archives=args.archives,
        processor=args.processor,
        out=args.out,
        timeout=args.timeout,
        parameters=_parameters(args, DEMO_JOB_OPTION),
        job_parameters=parse_parameters(args.job_param, option="--job-param"),
        template=args.template,
        reconcile_seconds=args.reconcile_seconds,
    )
    return run_demo(options)


# -- local up -----------------------------------------------------------------------------------------------------


def register_local(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "local", help="the local stack (moto server, local Lambda runtime, local ECS agent)"
    )
    actions = parser.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up",
        parents=[_local_options()],
        help="start the local stack in the foreground; Ctrl-C stops it",
        description="Start the local stack and keep it running; stream launcher and worker logs until Ctrl-C. "
        "One stack per folder; the other lew commands find it from this folder and every folder below it.",
    )
    up.add_argument(
        "--port",
        type=_port,
        help="the endpoint's port on 127.0.0.1; 0 for any free port "
        "(default: the port of the last stack started in this folder when it is free, else any free port)",
    )
    add_fail_task_starts_option(up)
    up.set_defaults(handler=_local_up)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-{MAX_PORT})")
    return value


def _local_up(args: argparse.Namespace) -> int:
    settings = build_settings(
        args.template,
        processor=args.processor,
        parameters=_parameters(args),
        reconcile_seconds=args.reconcile_seconds,
        task_start_failures=start_failures_from_args(args),
    )
    out = sys.stdout
    reader_gone = threading.Event()  # `lew local up | head`: once the reader has gone, the stack stops

    def say(text: str) -> None:
        if not reader_gone.is_set():
            try:
                out.write(text)
                out.flush()
            except BrokenPipeError:
                reader_gone.set()

    with StackLock():  # a second `lew local up` in this folder stops here, before it starts anything
        stack, note = _start_stack(settings, args.port, prefixed_stream_sink(out, on_broken=reader_gone.set))
        try:
            state = stack.state()
            remember_port(stack.port)
            write_state(state, state_path())
            try:
                say(_banner(state, settings.processor, _override_lines(settings), note))
                with contextlib.suppress(KeyboardInterrupt):
                    # Until Ctrl-C or SIGTERM (see main), a configuration error, or the reader of stdout is gone.
                    while not reader_gone.is_set() and not stack.failed.wait(IDLE_CHECK_SECONDS):
                        pass
            finally:
                remove_state(state_path(), state.pid)
                say("[lew] stopping: workers get SIGTERM, then the server stops\n")
        finally:
            stack.stop()
    say("[lew] stopped\n")
    if stack.configuration_error is not None:
        raise LewError(f"{stack.configuration_error}; the local stack stopped")
    if reader_gone.is_set():
        raise BrokenPipeError(errno.EPIPE, "the reader of stdout has gone")
    return 0


def _start_stack(settings: LocalSettings, port: int | None, sink: LogSink) -> tuple[LocalStack, str]:
    """Start on `--port`, else on this folder's last port when it is free, else on any free port."""
    preferred = remembered_port() if port is None else port
    try:
        return LocalStack(replace(settings, port=preferred), sink=sink).start(), ""
    except PortInUseError:
        if port is not None:
            raise
    note = f"port {preferred}, this folder's last, is taken by another program; "
    return LocalStack(replace(settings, port=0), sink=sink).start(), note


def _override_lines(settings: LocalSettings) -> list[str]:
    return [f"{o.name} {o.template_value} -> {o.local_value} ({o.reason})" for o in settings.overrides]


def lew_command(argv0: str | None = None, cwd: Path | None = None) -> str:
    """How to run lew again from the folder it was started in: how it was invoked, not a bare `lew` that may not
    be on PATH (a fresh clone has `.venv/bin/lew`)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if not argv0 or argv0.endswith(".py") or argv0 == "-m":  # python -m lew.cli
        return f"{_shown_path(Path(sys.executable), cwd)} -m lew.cli"
    if os.sep not in argv0:
        return argv0  # found on PATH, so it works as typed
    return _shown_path(Path(argv0), cwd)


def _shown_path(path: Path, cwd: Path | None) -> str:
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to((cwd or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def _banner(state: LocalState, processor: str, overrides: Sequence[str], note: str = "") -> str:
    endpoint, bucket, prefix = state.endpoint, state.bucket, state.input_prefix
    lew = lew_command()
    lines = [
        f"lew local stack running at {endpoint}  (state in {STATE_HINT}; Ctrl-C stops it)",
        *([f"  ({note}--port N picks one)"] if note else []),
        f"  bucket      {bucket}   (uploads under {prefix}, results under {state.result_prefix})",
        f"  work queue  {state.queue_url}",
        f"  DLQ         {state.dlq_url}",
        f"  cluster     {state.cluster}   processor {processor}",
        *(f"  local       {line}" for line in overrides),
        "",
        "Try, in another terminal in this folder (the AWS CLI needs some credentials; these fake ones only work here):",
        f"  export AWS_ACCESS_KEY_ID={FAKE_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={FAKE_SECRET_KEY}",
        f"  export AWS_DEFAULT_REGION={state.region}",
        f"  aws --endpoint-url {endpoint} s3 cp scene.zip s3://{bucket}/{prefix}",
        f"  aws --endpoint-url {endpoint} s3 ls s3://{bucket}/{state.result_prefix} --recursive",
        f"  aws --endpoint-url {endpoint} sqs get-queue-attributes --attribute-names All --queue-url {state.queue_url}",
        f"  {lew} submit scene.zip   {lew} status   {lew} results --download results/   {lew} redrive",
        "(AWS CLI v1 ignores AWS_ENDPOINT_URL for SQS in most regions: pass --endpoint-url explicitly.)",
        "",
    ]
    return "\n".join(lines) + "\n"


# -- submit, status, results, redrive -----------------------------------------------------------------------------


def register_submit(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "submit", parents=[_target_options()], help="upload archives under the input prefix"
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    lifecycle_cli.add_wait_options(parser, optional=True)  # --wait, --timeout S, --download DIR (both imply --wait)
    add_param_option(parser, example="width=320", scope="the processor")
    parser.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    ops.check_uploadable(args.files, ())  # a missing file fails before any AWS call
    parameters = parse_parameters(args.param)  # and so does a parameter S3 metadata cannot carry
    return lifecycle_cli.submit(_target(args), args, parameters=parameters)  # waits with --wait, --timeout, --download


def register_status(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser("status", parents=[_target_options()], help="queue depth, workers, recent results")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=10,
        help="how many recent manifests and stopped tasks (default: %(default)s)",
    )
    parser.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    target = _target(args)
    report = ops.status(target.s3, target.sqs, target.ecs, target, limit=args.limit)
    dead = "-" if report.dead is None else str(report.dead)
    tasks = "-" if report.active_tasks is None else str(report.active_tasks)
    print(f"{target.description}")
    print(f"queued {report.queued}  in flight {report.in_flight}  DLQ {dead}  active tasks {tasks}")
    _manifest_table("recent results", report.manifests)
    if report.dead and target.dlq_url:
        _dead_letter_table(dead_letters.peek(target.sqs, target.dlq_url, limit=args.limit), report.dead)
    lifecycle_cli.print_running(Client(target).running_jobs())
    if target.cluster:
        stopped = stopped_tasks.stopped_tasks_report(target.ecs, target.cluster, target.task_family)
        stopped_tasks.print_stopped_tasks(stopped, limit=args.limit)
    return 0


def register_results(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "results", parents=[_target_options()], help="list manifests; --download fetches outputs"
    )
    parser.add_argument(
        "keys",
        nargs="*",
        metavar="KEY",
        help="only these uploads (a key, an s3://BUCKET/KEY URL, or a name under the input prefix), and their "
        "scheduled runs",
    )
    lifecycle_cli.add_run_option(parser)
    parser.add_argument("--download", type=Path, metavar="DIR", help="download every job's outputs and manifest here")
    parser.add_argument("--limit", type=positive_int, help="only the most recent N")
    parser.set_defaults(handler=_results)


def _letter_detail(letter: dead_letters.DeadLetter) -> str:
    kind = letter.kind or "no kind"
    noun = "attempt" if letter.attempts == "1" else "attempts"  # a text: the worker's message attribute
    return f"{kind}, after {letter.attempts} {noun}" if letter.attempts else kind


def _results(args: argparse.Namespace) -> int:
    code = 0
    if args.download:
        check_writable_folder(args.download, label="--download")  # before any call: a typo costs nothing
    target = _target(args)
    if args.download:
        create_folder(args.download, label="--download")  # now, not after the table: /proc/x passes the checks
    if args.run and not args.keys:
        raise LewError("--run needs the KEY whose run it is: lew results KEY --run ID")
    if args.keys:
        manifests, code = _results_of_keys(target, args.keys, run=args.run, limit=args.limit)
    else:
        manifests = ops.list_manifests(target.s3, target, limit=args.limit)
    # Keys asked for have said, each in its line, that they have no manifest yet: no empty table to say it again.
    if manifests or not args.keys:
        _manifest_table(f"results in s3://{target.bucket}/{target.result_prefix}", manifests)
    if args.download and manifests:
        for manifest in manifests:
            ops.download_results(target.s3, target, manifest, args.download)
        print(f"downloaded {plural(len(manifests), 'result folder')} into {args.download}/")
    return code


def _results_of_keys(
    target: Target, keys: Sequence[str], *, run: str | None, limit: int | None
) -> tuple[list[ops.ManifestSummary], int]:
    """The manifests of these keys (their upload's, and their scheduled runs', newest first; or the one `run`'s),
    saying what is known of each that has none; and the exit code (3 when one can never have a manifest)."""
    code = 0
    client = Client(target)
    if run:
        resolved = [client.run_of(key, run).key for key in keys]
    else:  # the stack's scheduled object is named as it is, whether or not it is there now
        resolved = [key if key == target.schedule_key else ops.resolve_key(target.s3, target, key) for key in keys]
    found = ops.manifests_of(target.s3, target, resolved, run)
    # A scheduled key's runs are its results too: a key that has runs is not waiting for a manifest.
    runs = {} if run else {key: ops.run_manifests(target.s3, target, key, limit=limit) for key in resolved}
    waiting = [key for key, summary in found if summary is None and not runs.get(key)]
    wanted = [(target.bucket, key, run) for key in waiting]
    letters = dead_letters.find(target.sqs, target.dlq_url, wanted) if waiting and target.dlq_url else {}
    for key in waiting:
        letter = letters.get((target.bucket, key, run))
        unstorable = ops.results_key_problem(target, key, run=run)
        named = ops.shown_key(key) + (f" (run {run})" if run else "")
        if letter is not None:
            code = lifecycle_cli.EXIT_FAILED  # as `lew wait` exits for a dead-lettered job
            print(f"{named}: dead-lettered ({_letter_detail(letter)}): {letter.reason}")
        elif unstorable is not None:
            code = lifecycle_cli.EXIT_FAILED  # it never gets a manifest: `lew wait` ends as dead-lettered
            print(f"{named}: {unstorable}")
        elif not run and key == target.schedule_key:
            print(f"{named}: no runs yet (the schedule starts them; `lew schedule fire` starts one now)")
        else:
            print(f"{named}: no manifest yet (it will be s3://{target.bucket}/{ops.manifest_key(target, key, run)})")
    manifests = [summary for _, summary in found if summary is not None]
    manifests += [summary for key_runs in runs.values() for summary in key_runs]
    return manifests, code


def _dead_letter_table(letters: Sequence[dead_letters.DeadLetter], total: int) -> None:
    """The DLQ's messages (peeked, left in the queue): the upload each names, why it is there."""
    rows = [
        [
            ", ".join(ops.shown_key(key) for _, key in letter.keys) or "(not an S3 event)",
            letter.kind or "-",  # SQS moved it itself: no worker saw its last receive
            letter.attempts or "-",
            letter.reason,
        ]
        for letter in letters
    ]
    shown = f"first {len(letters)} of {total}" if len(letters) < total else str(total)
    print_table(f"dead letters ({shown}; lew redrive sends them back)", ["input", "kind", "attempts", "reason"], rows)


def _manifest_table(title: str, manifests: Sequence[ops.ManifestSummary]) -> None:
    if not manifests:
        print(f"{title}: none yet")
        return
    # The parameters column only when a job had some: most stacks never use them.
    with_parameters = any(m.parameters for m in manifests)
    rows = [
        [
            m.label,
            m.status,
            str(len(m.outputs)),
            "-" if m.seconds is None else f"{m.seconds:.1f}",
            *([ops.parameters_text(m.parameters) or "-"] if with_parameters else []),
            m.error or "",
        ]
        for m in manifests
    ]
    columns = ["input", "status", "outputs", "seconds", *(["parameters"] if with_parameters else []), "error"]
    print_table(title, columns, rows)


def register_dead_letters(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "dead-letters",
        parents=[_target_options()],
        help="list the DLQ's messages and why each is there (they stay in the DLQ)",
    )
    parser.add_argument("--limit", type=positive_int, default=100, help="show at most this many (default: %(default)s)")
    parser.set_defaults(handler=_dead_letters)


def _dead_letters(args: argparse.Namespace) -> int:
    target = _target(args)
    if not target.dlq_url:
        raise LewError(f"{target.description} has no dead-letter queue (no DlqUrl output)")
    waiting, in_flight = queue_depths(target.sqs, target.dlq_url)
    if not waiting + in_flight:
        print("no dead letters")
        return 0
    _dead_letter_table(dead_letters.peek(target.sqs, target.dlq_url, limit=args.limit), waiting + in_flight)
    return 0


def register_redrive(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "redrive", parents=[_target_options()], help="move DLQ messages back to the work queue"
    )
    parser.set_defaults(handler=_redrive)


def _redrive(args: argparse.Namespace) -> int:
    target = _target(args)
    print(ops.redrive(target.sqs, target))
    return 0


def register_rerun(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "rerun", parents=[_target_options()], help="process uploads again, though already processed"
    )
    parser.add_argument(
        "keys", nargs="+", metavar="KEY", help="an upload's key, its name under the input prefix, or s3://BUCKET/KEY"
    )
    lifecycle_cli.add_run_option(parser)
    lifecycle_cli.add_wait_options(parser, optional=True)  # --wait, --timeout S, --download DIR
    parser.set_defaults(handler=_rerun)


def _rerun(args: argparse.Namespace) -> int:
    target = _target(args)
    client = Client(target)
    uploads = client.rerun(args.keys, run=args.run)
    for upload in uploads:
        print(
            f"queued a re-run of {lifecycle_cli.job_label(upload)}; its manifest: s3://{target.bucket}/"
            f"{client.manifest_key(upload)}"
        )
    when = (
        "within seconds"
        if target.endpoint_url
        else "at the next reconcile (ReconcileSchedule, every minute by default)"
    )
    print(f"a worker starts {when}; `lew status` shows the progress")
    if not (args.wait or args.timeout is not None or args.download is not None):
        return 0
    return lifecycle_cli.wait_for(client, uploads, timeout=args.timeout, download=args.download)


# -- parser and entry point ---------------------------------------------------------------------------------------

REGISTRARS: tuple[Callable[[Subcommands], None], ...] = (
    register_demo,
    register_local,
    register_submit,
    register_status,
    register_results,
    register_dead_letters,
    register_redrive,
    register_rerun,
    lambda subcommands: lifecycle_cli.register(subcommands, _target_options()),  # wait, cancel, events
    lambda subcommands: schedule_cli.register(subcommands, _target_options()),  # schedule fire
    cost.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="lew", description="Run heavy jobs on files landing in S3: locally on moto, or on a deployed stack."
    )
    parser.add_argument("--version", action="version", version=f"lew {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    # Every subcommand parser is a OneLineParser too (argparse makes subparsers of the parent's class).
    subcommands: Subcommands = parser.add_subparsers(  # type: ignore[assignment]  # a subclass: invariant generic
        dest="command", metavar="COMMAND", required=True
    )
    for register in REGISTRARS:
        register(subcommands)
    return parser


def _version() -> str:
    try:
        return metadata.version("lew")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops `lew local up` and `lew demo` the same way Ctrl-C does


def _fail(message: str) -> int:
    sys.stderr.write(f"lew: error: {one_line(message)}\n")
    return 1


FIXED_MESSAGES: dict[type[Exception], str] = {
    NoRegionError: "no AWS region: pass --region or set AWS_REGION",
}


def describe_failure(error: Exception) -> str | None:
    """The one line to print for an expected failure; None for a bug (which deserves its traceback)."""
    aws = describe_aws_failure(error)  # unreachable (local stack or AWS), credentials, access
    if aws is not None:
        return aws
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"AWS said {details.get('Code', 'error')}: {details.get('Message', str(error))}"
    for kind, message in FIXED_MESSAGES.items():
        if isinstance(error, kind):
            return message
    if isinstance(error, OSError):
        return describe_os_error(error)
    if isinstance(error, LewError | BotoCoreError):
        return str(error)
    return None


def describe_os_error(error: OSError) -> str:
    """`path: not a directory` rather than `[Errno 20] Not a directory: 'path'`."""
    reason = error.strerror or str(error) or type(error).__name__
    reason = reason[:1].lower() + reason[1:]
    if error.filename is None:
        return reason
    where = str(error.filename) if error.filename2 is None else f"{error.filename} -> {error.filename2}"
    return f"{where}: {reason}"


def _quiet_broken_pipe() -> int:
    """The reader of our output has gone (`lew status | head -1`): stop quietly, as `yes | head -1` does.

    stdout is pointed at /dev/null first, so that Python's final flush of what is still buffered cannot fail
    with a second BrokenPipeError (the recipe of Python's signal module documentation).
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one subcommand, and turn every expected failure into one line on stderr."""
    try:
        return _main(argv)
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a reader that went away shows here, as BrokenPipeError, not at interpreter exit
    except KeyboardInterrupt:
        sys.stderr.write("lew: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as error:
        message = describe_failure(error)
        if message is None and args.debug:
            raise
        return _fail(message or f"unexpected {type(error).__name__}: {error} (run `lew --debug ...` for the traceback)")
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
    return code


if __name__ == "__main__":
    sys.exit(main())
