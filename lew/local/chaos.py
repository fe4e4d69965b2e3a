"""A chaos option of the local stack: fail a share of worker task starts, the way Fargate sometimes does.

``lew local up --fail-task-starts SHARE[:STOP_CODE[:REASON]]`` (or ``LEW_FAIL_TASK_STARTS``): the local ECS agent
stops that share of new tasks before their worker starts, with ECS's stop code (default ``TaskFailedToStart``) and a
reason like Fargate's for it, and reports the stop as ECS does (an ECS ``Task State Change`` event), so that the
launcher's handling of failed starts and ``lew status`` can be seen and tested locally. A share of 1 fails every
start; a share below 1 is random, repeatable with ``--fail-task-starts-seed N`` (``LEW_FAIL_TASK_STARTS_SEED``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from lew.errors import LewError

ENV_VARIABLE: Final = "LEW_FAIL_TASK_STARTS"
SEED_VARIABLE: Final = "LEW_FAIL_TASK_STARTS_SEED"
INJECTED: Final = "(injected by --fail-task-starts)"
# ECS's stop codes (the TaskStopCode enum); each with a reason like the ones Fargate gives for it.
STOP_CODE_REASONS: Final = {
    "TaskFailedToStart": "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve "
    "ref lew-worker:local: not found",
    "SpotInterruption": "Your Spot Task was interrupted.",
    "EssentialContainerExited": "Essential container in task exited",
    "UserInitiated": "Task stopped by user",
    "ServiceSchedulerInitiated": "Task stopped by the service scheduler",
    "TerminationNotice": "Task stopped because the underlying infrastructure is being terminated",
    "InfrastructureHealth": "Task stopped because the underlying infrastructure is unhealthy",
}


@dataclass(frozen=True)
class StartFailures:
    """Which share of task starts fail, with which stop code and reason."""

    share: float
    stop_code: str = "TaskFailedToStart"
    reason: str = ""
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str, seed: int | None = None) -> StartFailures:
        """``SHARE[:STOP_CODE[:REASON]]``, e.g. ``0.3``, ``1:SpotInterruption``, ``0.5:TaskFailedToStart:...``.

        Raises LewError starting with the spec, not the option: argparse puts `--fail-task-starts: ` before it.
        """
        share_text, _, rest = spec.strip().partition(":")
        stop_code, _, reason = rest.partition(":")
        try:
            share = float(share_text)
        except ValueError:
            raise LewError(f"{spec!r}: the share must be a number from 0 to 1, e.g. 0.3") from None
        if not 0.0 <= share <= 1.0:
            raise LewError(f"{spec!r}: the share must be from 0 to 1, got {share:g}")
        stop_code = stop_code.strip() or "TaskFailedToStart"
        if stop_code not in STOP_CODE_REASONS:
            known = ", ".join(STOP_CODE_REASONS)
            raise LewError(f"{spec!r}: unknown stop code {stop_code!r}; ECS's are {known}")
        reason = reason.strip() or STOP_CODE_REASONS[stop_code]
        return cls(share=share, stop_code=stop_code, reason=f"{reason} {INJECTED}", seed=seed)


@dataclass
class StartFailureInjector:
    """Decides, task by task, whether a start fails: always at share 1, never at 0, else at random (seedable)."""

    failures: StartFailures
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.failures.seed)  # noqa: S311  # chaos, not cryptography

    def should_fail(self) -> bool:
        share = self.failures.share
        return share >= 1.0 or (share > 0.0 and self._random.random() < share)


def add_fail_task_starts_option(parser: argparse.ArgumentParser) -> None:
    """The documented chaos options of `lew local up` (each defaults to its environment variable, read when the
    options are used: start_failures_from_args)."""
    group = parser.add_argument_group("chaos (test how failed task starts are handled)")
    group.add_argument(
        "--fail-task-starts",
        metavar="SHARE[:STOP_CODE[:REASON]]",
        type=_start_failures,
        default=None,
        help="stop this share of new worker tasks before they run, e.g. 0.3 or 1:SpotInterruption "
        f"(default: ${ENV_VARIABLE}, else none)",
    )
    group.add_argument(
        "--fail-task-starts-seed",
        metavar="N",
        type=int,
        default=None,
        help=f"seed of the random choice, for repeatable runs (default: ${SEED_VARIABLE}, else random)",
    )


def _start_failures(spec: str) -> StartFailures:
    try:
        return StartFailures.parse(spec)
    except LewError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def start_failures_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> StartFailures | None:
    """The chaos options as one value (each option, else its environment variable), or None when none are asked for.

    A bad environment value is a LewError naming the variable, not the option it stands in for (argparse checks
    the options themselves, and names them).
    """
    environ = os.environ if environ is None else environ
    failures: StartFailures | None = getattr(args, "fail_task_starts", None)
    if failures is None:
        spec = environ.get(ENV_VARIABLE, "")
        if not spec.strip():
            return None
        try:
            failures = StartFailures.parse(spec)
        except LewError as error:
            raise LewError(f"{ENV_VARIABLE}={error}") from None
    seed: int | None = getattr(args, "fail_task_starts_seed", None)
    if seed is None and environ.get(SEED_VARIABLE, "").strip():
        try:
            seed = int(environ[SEED_VARIABLE])
        except ValueError:
            raise LewError(f"{SEED_VARIABLE}={environ[SEED_VARIABLE]!r}: the seed must be a whole number") from None
    return dataclasses.replace(failures, seed=seed)
