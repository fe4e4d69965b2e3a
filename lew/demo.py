"""`lew demo`: start the local stack, push archives through the real pipeline, fetch results, report, stop."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from lew import ops
from lew.client import Client
from lew.demo_out import DemoOut
from lew.errors import LewError
from lew.files import check_writable_folder
from lew.job_parameters import parameter_texts, upload_arguments
from lew.jobs_view import JobsView, job_lines
from lew.local.output import FileSink
from lew.local.preflight import worker_environment
from lew.local.processor_parameters import check_job_parameters
from lew.local.settings import POVRAY_INSTALL_HINT, build_settings, default_processor, validate_processor
from lew.local.stack import LocalStack
from lew.samples import DemoInput, bundled_inputs
from lew.target import Target, from_local_state, parse_suffixes
from lew.template import DEFAULT_TEMPLATE
from lew.ui import plural, print_table

POLL_SECONDS = 1.0
DEMO_JOB_OPTION = "--job-param"  # how `lew demo` takes job parameters (its --param are the template's)
LOG_NAME = "lew-demo.log"


@dataclass(frozen=True)
class DemoOptions:
    archives: Sequence[Path] = ()
    processor: str | None = None
    out: Path = Path("results")
    timeout: float = 600.0
    parameters: Mapping[str, str] = field(default_factory=dict)  # template parameters
    job_parameters: Mapping[str, str] = field(default_factory=dict)  # sent with every upload (S3 metadata)
    template: Path = DEFAULT_TEMPLATE
    reconcile_seconds: float = 5.0


@dataclass
class Outcome:
    """How one archive ended, against what was expected of it."""

    item: DemoInput
    manifest: ops.ManifestSummary | None = None
    downloaded: list[Path] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.manifest.status if self.manifest else "timed out"

    @property
    def as_expected(self) -> bool:
        if self.manifest is None:
            return False
        return (self.manifest.status == "succeeded") == self.item.expect_success

    def row(self) -> list[str]:
        manifest = self.manifest
        note = ""
        if manifest is not None and manifest.status != "succeeded":
            note = manifest.error or "no reason given"
            if not self.item.expect_success:
                note = f"rejected as expected: {note}"
        elif manifest is None:
            note = "no manifest before the timeout"
        outputs = ", ".join(path.name for path in self.downloaded if path.name != ops.MANIFEST_NAME) or "-"
        seconds = f"{manifest.seconds:.1f}" if manifest and manifest.seconds is not None else "-"
        return [self.item.path.name, self.status, outputs, seconds, note]


def run_demo(options: DemoOptions, *, stream: TextIO | None = None) -> int:
    """Run the demo; 0 only if every archive ended as expected."""
    stream = stream or sys.stdout
    processor = validate_processor(options.processor) if options.processor else default_processor()
    if options.processor is None and processor != "povray":
        stream.write(f"POV-Ray is not installed, so the demo uses the inventory processor; {POVRAY_INSTALL_HINT}\n")
    user_archives = [Path(path) for path in options.archives]
    ops.check_uploadable(user_archives, ())
    check_writable_folder(options.out, label="--out")
    settings = build_settings(
        options.template,
        processor=processor,
        parameters=options.parameters,
        reconcile_seconds=options.reconcile_seconds,
    )
    suffixes = parse_suffixes(settings.parameter("Suffixes"))
    ops.check_uploadable(user_archives, suffixes)
    if _no_workers(settings.parameter("MaxWorkers")):
        # The template allows 0 (enqueue only, a pause); a demo waiting for its results would wait for ever.
        raise LewError("--param MaxWorkers=0 starts no worker, so the demo could never finish; use `lew local up` to "
                       "try enqueue-only, or give at least 1")  # fmt: skip
    job_parameters = parameter_texts(options.job_parameters)
    process_parameters = worker_environment(settings, os.environ).get("PROCESS_PARAMETERS", "")
    check_job_parameters(settings.processor, process_parameters, job_parameters)
    out = DemoOut(options.out)
    out.prepare()  # the last run's results go: this folder describes this run only
    sink = FileSink(options.out / LOG_NAME)
    out.add([sink.path])
    started = datetime.now(UTC).isoformat(timespec="seconds")
    archives = ", ".join(path.name for path in user_archives) or "the bundled samples"
    sink("lew", f"lew demo run at {started}: {archives}, processor {processor}, results in {options.out}")
    with tempfile.TemporaryDirectory(prefix="lew-demo-") as scratch:
        inputs = [DemoInput(path) for path in user_archives] or bundled_inputs(Path(scratch))
        try:
            with LocalStack(settings, sink=sink) as stack:
                assert stack.resources is not None  # noqa: S101  # set by start()
                stream.write(f"local stack at {stack.endpoint}; processor {processor}; logs in {sink.path}\n")
                for override in settings.overrides:
                    stream.write(f"  local: {override.name} {override.template_value} -> {override.local_value}\n")
                target = from_local_state(stack.state())
                outcomes = push_and_wait(
                    stack, target, inputs, options.timeout, stream, log_path=sink.path, job_parameters=job_parameters
                )
                for outcome in outcomes:
                    if outcome.manifest is not None:
                        outcome.downloaded = ops.download_results(stack.s3, target, outcome.manifest, options.out)
                        out.add(outcome.downloaded)
        finally:
            sink.close()
    print_table(
        "lew demo", ["input", "status", "outputs", "seconds", "note"], [o.row() for o in outcomes], stream=stream
    )
    failures = [outcome for outcome in outcomes if not outcome.as_expected]
    if failures:
        names = ", ".join(outcome.item.path.name for outcome in failures)
        stream.write(f"not as expected: {names}; see {sink.path}\n")
        return 1
    everything = "the archive" if len(outcomes) == 1 else f"all {len(outcomes)} archives"
    stream.write(f"{everything} ended as expected; results in {options.out}/\n")
    return 0


def _no_workers(max_workers: str) -> bool:
    try:
        return float(max_workers) == 0
    except ValueError:
        return False  # not a number: the parameter rules or the launcher's settings name it


def push_and_wait(
    stack: LocalStack,
    target: Target,
    inputs: Sequence[DemoInput],
    timeout: float,
    stream: TextIO,
    *,
    log_path: Path,
    job_parameters: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """Upload every input (with `job_parameters`, as `parameter_texts` gives them), then poll their manifests,
    showing progress, until all exist or the timeout.

    A configuration error of the launcher or a worker ends the wait at once, as a LewError naming it.
    """
    s3 = stack.s3
    extra = upload_arguments(job_parameters or {})
    for item in inputs:
        s3.upload_file(str(item.path), target.bucket, f"{target.input_prefix}{item.path.name}", ExtraArgs=extra)
    outcomes = {item.path.name: Outcome(item) for item in inputs}
    deadline = time.monotonic() + timeout
    client = Client(target)
    with JobsView(plural(len(inputs), "archive"), stream=stream) as progress:
        while True:
            for name, outcome in outcomes.items():
                if outcome.manifest is None:
                    key = ops.manifest_key(target, f"{target.input_prefix}{name}")
                    outcome.manifest = ops.read_manifest(s3, target.bucket, key, target.result_prefix)
            counts = stack.queue_counts()
            done = [o for o in outcomes.values() if o.manifest is not None]
            progress.update(
                {
                    "queued": counts["queued"],
                    "in flight": counts["in_flight"],
                    "done": sum(1 for o in done if o.status == "succeeded"),
                    "failed": sum(1 for o in done if o.status != "succeeded"),
                    "workers running": stack.agent.running_count if stack.agent else 0,
                },
                jobs=job_lines(outcomes, client.running_jobs(), target.input_prefix),
            )
            if len(done) == len(outcomes) or time.monotonic() >= deadline:
                return list(outcomes.values())
            if stack.failed.wait(POLL_SECONDS):
                raise LewError(f"{stack.configuration_error}; the demo stopped (logs in {log_path})")
