"""The worker's configuration: every environment variable, read once by `Settings.from_env`."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TypeVar
from urllib.parse import urlparse

from worker.parameters import parse_declarations

GIB = 1024**3
# Fargate's stopTimeout is at most 120 s: after that ECS sends SIGKILL, so the whole stop must fit in it.
ECS_STOP_TIMEOUT_SECONDS = 120
# After the grace the processor's tree gets SIGTERM and 2 s later SIGKILL (worker.commands.TERM_GRACE_SECONDS),
# then the message is released and the claim deleted: 8 s for those calls. template.yaml's MaxValue says the same.
MAX_STOP_GRACE_SECONDS = 110
# ChangeMessageVisibility accepts at most 12 hours.
MAX_VISIBILITY_SECONDS = 43_200
SQS_REGION_IN_URL = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com")
REGION_NAME = re.compile(r"^[a-z]{2,}(-[a-z]+)+-\d+$")
BUILT_IN_PROCESSORS = ("inventory", "povray", "command")
FUNCTION_PROCESSOR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

T = TypeVar("T", int, float)


class ConfigurationError(Exception):
    """Missing or invalid environment variables; the message names every one of them.

    `problems` holds one sentence per bad variable (or pair of variables), each starting with the variable's name.
    """

    def __init__(self, *problems: str) -> None:
        super().__init__("invalid worker configuration: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Everything the worker reads from its environment, validated."""

    queue_url: str
    region: str
    input_prefix: str = "incoming/"
    result_prefix: str = "results/"
    processor: str = "inventory"
    process_command: str | None = None
    process_parameters: str = ""  # the command processor's parameters: `name:kind[:bounds]`, worker/parameters.py
    output_dir: str = "out"
    allow_empty_output: bool = False  # a command or function that uploads nothing: success with a warning
    wait_time_seconds: int = 20
    idle_polls: int = 2
    receive_batch_size: int = 1
    visibility_timeout: int = 300
    job_timeout: float = 3600.0
    stop_grace_seconds: float = 100.0
    max_archive_bytes: int = 5 * GIB
    max_unpacked_bytes: int = 20 * GIB
    max_members: int = 10_000
    dlq_url: str | None = None
    event_bus_name: str | None = None  # where job state-change events go; None publishes none

    @property
    def heartbeat_interval(self) -> float:
        """Extend held messages three times per visibility timeout, so that one failed call is survivable."""
        return self.visibility_timeout / 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every variable; raise one ConfigurationError that names every bad one."""
        read = _Reader(environ)
        defaults = cls(queue_url="", region="")
        queue_url, dlq_url = _queue_urls(read)
        region = _region(read, queue_url, dlq_url)
        input_prefix = environ.get("INPUT_PREFIX", defaults.input_prefix)
        result_prefix = environ.get("RESULT_PREFIX", defaults.result_prefix)
        read.problems.extend(_prefix_problems(input_prefix, result_prefix))
        processor = read.text("PROCESSOR") or defaults.processor
        process_command = read.text("PROCESS_COMMAND")
        read.problems.extend(_processor_problems(processor, process_command))
        process_parameters = read.text("PROCESS_PARAMETERS") or ""
        read.problems.extend(_process_parameters_problems(processor, process_parameters))
        output_dir = read.text("OUTPUT_DIR") or defaults.output_dir
        read.problems.extend(_output_dir_problems(output_dir))

        settings = cls(
            queue_url=queue_url,
            region=region,
            input_prefix=input_prefix,
            result_prefix=result_prefix,
            processor=processor,
            process_command=process_command,
            process_parameters=process_parameters,
            output_dir=output_dir,
            allow_empty_output=read.flag("ALLOW_EMPTY_OUTPUT", defaults.allow_empty_output),
            wait_time_seconds=read.number("WAIT_TIME_SECONDS", int, defaults.wait_time_seconds, minimum=0, maximum=20),
            idle_polls=read.number("IDLE_POLLS", int, defaults.idle_polls, minimum=1),
            receive_batch_size=read.number(
                "RECEIVE_BATCH_SIZE", int, defaults.receive_batch_size, minimum=1, maximum=10
            ),
            visibility_timeout=read.number(
                "VISIBILITY_TIMEOUT", int, defaults.visibility_timeout, minimum=3, maximum=MAX_VISIBILITY_SECONDS
            ),
            job_timeout=read.number("JOB_TIMEOUT", float, defaults.job_timeout, minimum=0.001),
            stop_grace_seconds=read.number(
                "STOP_GRACE_SECONDS",
                float,
                defaults.stop_grace_seconds,
                minimum=0.0,
                maximum=float(MAX_STOP_GRACE_SECONDS),
                why=(
                    f" (ECS kills the task {ECS_STOP_TIMEOUT_SECONDS} s after SIGTERM, and the worker needs the rest "
                    "to stop the processor and release its message)"
                ),
            ),
            max_archive_bytes=read.number("MAX_ARCHIVE_BYTES", int, defaults.max_archive_bytes, minimum=1),
            max_unpacked_bytes=read.number("MAX_UNPACKED_BYTES", int, defaults.max_unpacked_bytes, minimum=1),
            max_members=read.number("MAX_MEMBERS", int, defaults.max_members, minimum=1),
            dlq_url=dlq_url,
            event_bus_name=read.text("EVENT_BUS_NAME"),
        )
        if read.problems:
            raise ConfigurationError(*read.problems)
        return settings


class _Reader:
    """Reads variables and collects every problem, so that one error can name them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in {"true", "1", "yes"}:
            return True
        if raw.lower() in {"false", "0", "no"}:
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def number(
        self,
        name: str,
        kind: Callable[[str], T],
        default: T,
        *,
        minimum: T,
        maximum: T | None = None,
        why: str = "",
    ) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            self.problems.append(f"{name} must be {noun}, got {raw!r}")
            return default
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
            self.problems.append(f"{name} must be {bounds}{why}, got {raw!r}")
            return default
        return value


def _queue_urls(read: _Reader) -> tuple[str, str | None]:
    queue_url = read.text("QUEUE_URL") or read.text("SQS_QUEUE_URL") or ""
    dlq_url = read.text("DLQ_URL")
    if not queue_url:
        read.problems.append("QUEUE_URL is required and is not set (the work queue's URL; SQS_QUEUE_URL works too)")
    elif not _is_url(queue_url):
        read.problems.append(
            f"QUEUE_URL must be a queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/lew-work, "
            f"got {queue_url!r}"
        )
    if dlq_url is not None:
        if not _is_url(dlq_url):
            read.problems.append(f"DLQ_URL must be a queue URL like QUEUE_URL's, got {dlq_url!r}")
        elif dlq_url.rstrip("/") == queue_url.rstrip("/"):
            # Poison would be "moved" into the queue it came from, and come back forever.
            read.problems.append("DLQ_URL must not be QUEUE_URL: poison would return to the work queue forever")
    return queue_url, dlq_url


def _region(read: _Reader, queue_url: str, dlq_url: str | None) -> str:
    named = read.text("AWS_REGION") or read.text("AWS_DEFAULT_REGION")
    queue_region = _region_from_url(queue_url)
    region = named or queue_region or ""
    variable = "AWS_REGION" if read.text("AWS_REGION") else "AWS_DEFAULT_REGION"
    if not region:
        if queue_url:
            read.problems.append("AWS_REGION is required and is not set, and QUEUE_URL names no region")
        return region
    if not REGION_NAME.match(region):
        read.problems.append(f"{variable} must be a region name like us-east-1, got {region!r}")
    elif queue_region and queue_region != region:
        read.problems.append(
            f"{variable}={region} does not match QUEUE_URL's region {queue_region}: SQS would not find the queue"
        )
    dlq_region = _region_from_url(dlq_url or "")
    if dlq_region and queue_region and dlq_region != queue_region:
        read.problems.append(f"DLQ_URL is in {dlq_region} but QUEUE_URL in {queue_region}: use the stack's DLQ")
    return region


def _is_url(text: str) -> bool:
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and parsed.path.strip("/") != ""


def _region_from_url(queue_url: str) -> str | None:
    match = SQS_REGION_IN_URL.match(queue_url)
    return match.group(1) if match else None


def _prefix_problems(input_prefix: str, result_prefix: str) -> list[str]:
    problems = []
    if not result_prefix.endswith("/"):
        problems.append(f"RESULT_PREFIX must be a folder ending with '/', like 'results/', got {result_prefix!r}")
    if input_prefix and not input_prefix.endswith("/"):
        problems.append(f"INPUT_PREFIX must be empty or a folder ending with '/', got {input_prefix!r}")
    # Results written under the input prefix would notify the queue again: an endless loop of jobs.
    elif input_prefix and result_prefix.startswith(input_prefix):
        problems.append(
            f"RESULT_PREFIX {result_prefix!r} lies inside INPUT_PREFIX {input_prefix!r}: results would be processed "
            "again; use separate prefixes"
        )
    return problems


def _processor_problems(processor: str, process_command: str | None) -> list[str]:
    if processor not in BUILT_IN_PROCESSORS and not FUNCTION_PROCESSOR.match(processor):
        return [f"PROCESSOR must be inventory, povray, command or package.module:function, got {processor!r}"]
    if processor != "command":
        if process_command is not None:
            return [f"PROCESS_COMMAND is set but PROCESSOR={processor} ignores it: set PROCESSOR=command to run it"]
        return []
    if process_command is None:
        return ["PROCESS_COMMAND is required by PROCESSOR=command and is not set"]
    try:
        shlex.split(process_command)
    except ValueError as error:
        return [f"PROCESS_COMMAND cannot be split into arguments ({error}), got {process_command!r}"]
    return []


def _process_parameters_problems(processor: str, declarations: str) -> list[str]:
    if not declarations:
        return []
    if processor != "command":
        return [
            f"PROCESS_PARAMETERS is set but PROCESSOR={processor} ignores it: povray declares its own parameters, "
            "and a function declares them in its `parameters` attribute"
        ]
    try:
        parse_declarations(declarations)
    except ValueError as error:
        return [f"PROCESS_PARAMETERS cannot be read: {error}"]
    return []


def _output_dir_problems(output_dir: str) -> list[str]:
    path = PurePosixPath(output_dir)
    # "." would make the unpacked folder itself the output folder, mixing every input with the outputs.
    if path.is_absolute() or ".." in path.parts or str(path) in {".", "input"}:
        return [
            "OUTPUT_DIR must be a folder name relative to the unpacked folder (where commands run), like 'out' "
            f"(not absolute, no '..', not '.' or 'input'), got {output_dir!r}"
        ]
    return []
