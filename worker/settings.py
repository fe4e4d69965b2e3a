"""The worker's configuration: every environment variable, read once by `Settings.from_env`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TypeVar

GIB = 1024**3
# Fargate's stopTimeout is at most 120 s: after that ECS sends SIGKILL, so the grace must end before it.
ECS_STOP_TIMEOUT_SECONDS = 120
# ChangeMessageVisibility accepts at most 12 hours.
MAX_VISIBILITY_SECONDS = 43_200
SQS_REGION_IN_URL = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com")

T = TypeVar("T", int, float)


class ConfigurationError(Exception):
    """A missing or invalid environment variable; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the worker reads from its environment, validated."""

    queue_url: str
    region: str
    input_prefix: str = "incoming/"
    result_prefix: str = "results/"
    processor: str = "inventory"
    process_command: str | None = None
    output_dir: str = "out"
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

    @property
    def heartbeat_interval(self) -> float:
        """Extend held messages three times per visibility timeout, so that one failed call is survivable."""
        return self.visibility_timeout / 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; raise ConfigurationError naming the bad variable."""
        queue_url = _text(environ, "QUEUE_URL") or _text(environ, "SQS_QUEUE_URL")
        if not queue_url:
            raise ConfigurationError("QUEUE_URL is not set (the URL of the work queue; SQS_QUEUE_URL is accepted too)")
        region = _text(environ, "AWS_REGION") or _text(environ, "AWS_DEFAULT_REGION") or _region_from_url(queue_url)
        if not region:
            raise ConfigurationError("AWS_REGION is not set and cannot be read from QUEUE_URL")

        defaults = cls(queue_url=queue_url, region=region)
        input_prefix = environ.get("INPUT_PREFIX", defaults.input_prefix)
        result_prefix = environ.get("RESULT_PREFIX", defaults.result_prefix)
        _check_prefixes(input_prefix, result_prefix)

        processor = _text(environ, "PROCESSOR") or defaults.processor
        process_command = _text(environ, "PROCESS_COMMAND")
        if processor == "command" and not process_command:
            raise ConfigurationError("PROCESS_COMMAND is not set, but PROCESSOR=command needs it")
        output_dir = _text(environ, "OUTPUT_DIR") or defaults.output_dir
        _check_output_dir(output_dir)

        return cls(
            queue_url=queue_url,
            region=region,
            input_prefix=input_prefix,
            result_prefix=result_prefix,
            processor=processor,
            process_command=process_command,
            output_dir=output_dir,
            wait_time_seconds=_number(
                environ, "WAIT_TIME_SECONDS", int, defaults.wait_time_seconds, minimum=0, maximum=20
            ),
            idle_polls=_number(environ, "IDLE_POLLS", int, defaults.idle_polls, minimum=1),
            receive_batch_size=_number(
                environ, "RECEIVE_BATCH_SIZE", int, defaults.receive_batch_size, minimum=1, maximum=10
            ),
            visibility_timeout=_number(
                environ,
                "VISIBILITY_TIMEOUT",
                int,
                defaults.visibility_timeout,
                minimum=3,
                maximum=MAX_VISIBILITY_SECONDS,
            ),
            job_timeout=_number(environ, "JOB_TIMEOUT", float, defaults.job_timeout, minimum=0.001),
            stop_grace_seconds=_stop_grace(environ, defaults.stop_grace_seconds),
            max_archive_bytes=_number(environ, "MAX_ARCHIVE_BYTES", int, defaults.max_archive_bytes, minimum=1),
            max_unpacked_bytes=_number(environ, "MAX_UNPACKED_BYTES", int, defaults.max_unpacked_bytes, minimum=1),
            max_members=_number(environ, "MAX_MEMBERS", int, defaults.max_members, minimum=1),
            dlq_url=_text(environ, "DLQ_URL"),
        )


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _region_from_url(queue_url: str) -> str | None:
    match = SQS_REGION_IN_URL.match(queue_url)
    return match.group(1) if match else None


def _number(
    environ: Mapping[str, str],
    name: str,
    kind: Callable[[str], T],
    default: T,
    *,
    minimum: T,
    maximum: T | None = None,
) -> T:
    raw = _text(environ, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ConfigurationError(f"{name}={raw!r} is not {noun}") from None
    if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigurationError(f"{name}={raw!r} is out of range: it must be {bounds}")
    return value


def _stop_grace(environ: Mapping[str, str], default: float) -> float:
    grace = _number(environ, "STOP_GRACE_SECONDS", float, default, minimum=0.0)
    if grace >= ECS_STOP_TIMEOUT_SECONDS:
        raise ConfigurationError(
            f"STOP_GRACE_SECONDS={grace:g} must be below ECS's {ECS_STOP_TIMEOUT_SECONDS} s stop timeout, "
            "or the task is killed before it can release its messages"
        )
    return grace


def _check_prefixes(input_prefix: str, result_prefix: str) -> None:
    if not result_prefix or not result_prefix.endswith("/"):
        raise ConfigurationError(f"RESULT_PREFIX={result_prefix!r} must be a folder ending with '/', like 'results/'")
    if input_prefix and not input_prefix.endswith("/"):
        raise ConfigurationError(f"INPUT_PREFIX={input_prefix!r} must be empty or a folder ending with '/'")
    # Results written under the input prefix would notify the queue again: an endless loop of jobs.
    if input_prefix and result_prefix.startswith(input_prefix):
        raise ConfigurationError(
            f"RESULT_PREFIX={result_prefix!r} is inside INPUT_PREFIX={input_prefix!r}: results would be processed again"
        )


def _check_output_dir(output_dir: str) -> None:
    path = PurePosixPath(output_dir)
    if path.is_absolute() or ".." in path.parts or str(path) in {".", "input"}:
        raise ConfigurationError(
            f"OUTPUT_DIR={output_dir!r} must be a folder name relative to the job folder, like 'out' "
            "(not absolute, no '..', not 'input')"
        )
