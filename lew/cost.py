"""Monthly cost of the deployed design, side by side with the alternatives, from the workload's parameters.

Pure arithmetic: no AWS call is made. Every price is a parameter whose default is an AWS public list price for
us-east-1 (see PRICES_AS_OF); check the pricing pages before relying on a figure.

`register(subparsers)` adds the `cost` subcommand to the `lew` command; `python -m lew.cost` runs it alone.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from lew import fargate
from lew.argparsing import OneLineParser, fail_usage
from lew.errors import LewError
from lew.parameter_rules import parameter_problem
from lew.template import DEFAULT_TEMPLATE, load_template
from lew.ui import plural

PRICES_AS_OF = "2025-01"
PRICES_NOTE = (
    f"AWS public list prices for us-east-1 as of {PRICES_AS_OF}, without free tiers or discounts "
    "(Fargate Spot prices move; verify every price on the AWS pricing pages before relying on a figure)"
)

HOURS_PER_MONTH = 730.0  # AWS's own convention for monthly figures
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
FARGATE_MINIMUM_SECONDS = 60.0  # Fargate bills per second with a one-minute minimum per task
FARGATE_FREE_STORAGE_GB = 20.0  # ephemeral storage up to 20 GB is included in the task price
GLUE_MINIMUM_SECONDS = 60.0  # Glue 2.0+ jobs bill per second with a one-minute minimum per run
LAMBDA_MAX_SECONDS = 900.0  # the 15-minute limit of one Lambda invocation
LAMBDA_MAX_MEMORY_MB = 10_240
LAMBDA_MB_PER_VCPU = 1_769  # Lambda gives one full vCPU at 1,769 MB, proportionally below and above
LAMBDA_MIN_MEMORY_MB = 128
GLUE_MIN_DPUS = 0.0625  # a Python shell job's smallest size (1/16 DPU)

Architecture = Literal["x86", "arm"]
Capacity = Literal["on-demand", "spot"]


@dataclass(frozen=True)
class Prices:
    """Unit prices in USD. Defaults: us-east-1 list prices as of PRICES_AS_OF."""

    fargate_vcpu_hour_x86: float = 0.04048
    fargate_gb_hour_x86: float = 0.004445
    fargate_vcpu_hour_arm: float = 0.03238
    fargate_gb_hour_arm: float = 0.00356
    # Fargate Spot x86 as published for us-east-1; Spot prices move with spare capacity.
    fargate_spot_vcpu_hour_x86: float = 0.01334058
    fargate_spot_gb_hour_x86: float = 0.00146489
    # No stable published ARM Spot figure: the x86 Spot discount (about 67 %) applied to the ARM price.
    fargate_spot_vcpu_hour_arm: float = 0.01067
    fargate_spot_gb_hour_arm: float = 0.00117
    fargate_storage_gb_hour: float = 0.000111  # ephemeral storage beyond the included 20 GB
    lambda_request: float = 0.20 / 1_000_000
    lambda_gb_second_x86: float = 0.0000166667
    lambda_gb_second_arm: float = 0.0000133334
    sqs_request: float = 0.40 / 1_000_000  # standard queue, per 64 KB chunk; our messages are one chunk
    s3_put_request: float = 0.005 / 1_000  # PUT, COPY, POST, LIST
    s3_get_request: float = 0.0004 / 1_000  # GET, HEAD and the rest
    glue_dpu_hour: float = 0.44
    cloudwatch_alarm_month: float = 0.10  # a standard-resolution alarm on one metric

    def fargate_vcpu_hour(self, architecture: Architecture, capacity: Capacity) -> float:
        """The vCPU-hour price for an architecture and a capacity provider."""
        if capacity == "spot":
            return self.fargate_spot_vcpu_hour_arm if architecture == "arm" else self.fargate_spot_vcpu_hour_x86
        return self.fargate_vcpu_hour_arm if architecture == "arm" else self.fargate_vcpu_hour_x86

    def fargate_gb_hour(self, architecture: Architecture, capacity: Capacity) -> float:
        """The memory GB-hour price for an architecture and a capacity provider."""
        if capacity == "spot":
            return self.fargate_spot_gb_hour_arm if architecture == "arm" else self.fargate_spot_gb_hour_x86
        return self.fargate_gb_hour_arm if architecture == "arm" else self.fargate_gb_hour_x86

    def lambda_gb_second(self, architecture: Architecture) -> float:
        """The Lambda GB-second price for an architecture."""
        return self.lambda_gb_second_arm if architecture == "arm" else self.lambda_gb_second_x86


@dataclass(frozen=True)
class Workload:
    """What has to be done: how many archives arrive, and how long one takes a worker task."""

    archives_per_day: float
    seconds_per_archive: float
    outputs_per_archive: int = 1

    @property
    def archives_per_month(self) -> float:
        return self.archives_per_day * DAYS_PER_MONTH


@dataclass(frozen=True)
class Design:
    """The deployed design's parameters (template defaults unless said otherwise)."""

    task_vcpu: float = 1.0  # WorkerCpu 1024
    task_memory_gb: float = 2.0  # WorkerMemory 2048
    task_storage_gb: float = 21.0  # WorkerEphemeralStorage 21
    architecture: Architecture = "x86"
    capacity: Capacity = "on-demand"
    # How many archives one task drains before it idles out: 1 when uploads are sparse (the dear case),
    # up to MessagesPerWorker (5) and more when they arrive in bursts.
    archives_per_task: float = 1.0
    # Billed from the start of the image pull until the task stops: pull + container start.
    task_startup_seconds: float = 30.0
    idle_polls: int = 2  # IdlePolls: empty long polls before a task exits
    wait_time_seconds: float = 20.0  # WaitTimeSeconds: the length of one long poll
    visibility_timeout: float = 300.0  # VisibilityTimeout: heartbeats come every third of it
    job_timeout: float = 3600.0  # JobTimeout: a job running longer is killed and fails (priced, not run)
    receive_batch_size: int = 1  # messages per ReceiveMessage (and per DeleteMessageBatch)
    launcher_seconds: float = 0.2  # one launcher invocation, billed per millisecond
    launcher_memory_mb: int = 256  # the template's MemorySize
    launcher_architecture: Architecture = "arm"  # the template's Architectures: [arm64]
    launcher_sqs_requests_per_upload: int = 2  # SendMessage + GetQueueAttributes (the depth it sizes from)
    reconcile_ticks_per_month: float = 43_800.0  # rate(1 minute) = 60 x 730
    reconcile_sqs_requests_per_tick: int = 1  # GetQueueAttributes
    s3_gets_per_archive: int = 2  # the manifest lookup under the claim (a 404 is billed as a GET) + the archive
    # The claim (a conditional PUT before the job) and the manifest (after it); outputs and refreshes are added.
    s3_puts_per_archive: int = 2
    alarms: int = 4  # the template's CloudWatch alarms: DLQ, oldest message, launcher failures, task start failures

    def __post_init__(self) -> None:
        problems = []
        size_problem = fargate.task_size_problem(self.task_vcpu, self.task_memory_gb)
        if size_problem is not None:
            problems.append(f"task size: {size_problem}")
        if not FARGATE_FREE_STORAGE_GB <= self.task_storage_gb <= 200:
            problems.append(f"task ephemeral storage must be 20-200 GB, got {self.task_storage_gb}")
        if self.archives_per_task < 1:
            problems.append(f"archives per task must be at least 1, got {self.archives_per_task}")
        if not 1 <= self.receive_batch_size <= 10:
            problems.append(f"receive batch size must be 1-10, got {self.receive_batch_size}")
        if self.visibility_timeout <= 0:
            problems.append(f"visibility timeout must be positive, got {self.visibility_timeout}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Line:
    """One priced line of a bill: what, how many units, and what it costs per month."""

    item: str
    quantity: float
    unit: str
    usd: float


@dataclass(frozen=True)
class Estimate:
    """The monthly cost of one way of running the workload, or why it cannot run that way."""

    name: str
    lines: tuple[Line, ...] = ()
    not_possible: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)


def fargate_billed_seconds_per_task(workload: Workload, design: Design) -> float:
    """Seconds billed for one task: start-up, its archives, the idle polls before it exits; one minute at least."""
    running = (
        design.task_startup_seconds
        + design.archives_per_task * workload.seconds_per_archive
        + design.idle_polls * design.wait_time_seconds
    )
    return max(FARGATE_MINIMUM_SECONDS, math.ceil(running))


def tasks_per_month(workload: Workload, design: Design) -> float:
    """Task launches per month when each task drains `archives_per_task` archives."""
    return workload.archives_per_month / design.archives_per_task


def fargate_lines(task_seconds: float, design: Design, prices: Prices, label: str) -> list[Line]:
    """vCPU, memory and extra-storage lines for a number of billed task-seconds."""
    hours = task_seconds / 3600
    vcpu_hours = hours * design.task_vcpu
    gb_hours = hours * design.task_memory_gb
    storage_gb_hours = hours * max(0.0, design.task_storage_gb - FARGATE_FREE_STORAGE_GB)
    kind = f"{design.architecture}, {design.capacity}"
    lines = [
        Line(
            f"{label}: vCPU ({kind})",
            vcpu_hours,
            "vCPU-h",
            vcpu_hours * prices.fargate_vcpu_hour(design.architecture, design.capacity),
        ),
        Line(
            f"{label}: memory ({kind})",
            gb_hours,
            "GB-h",
            gb_hours * prices.fargate_gb_hour(design.architecture, design.capacity),
        ),
    ]
    if storage_gb_hours:
        lines.append(
            Line(
                f"{label}: storage beyond 20 GB",
                storage_gb_hours,
                "GB-h",
                storage_gb_hours * prices.fargate_storage_gb_hour,
            )
        )
    return lines


def heartbeats_per_archive(workload: Workload, design: Design) -> int:
    """ChangeMessageVisibility calls while one archive is processed: one every third of the visibility timeout."""
    return math.floor(workload.seconds_per_archive / (design.visibility_timeout / 3))


def s3_puts_per_archive(workload: Workload, design: Design) -> float:
    """PUTs one job makes: the claim, one per output, the manifest, and a claim refresh at every heartbeat."""
    return design.s3_puts_per_archive + workload.outputs_per_archive + heartbeats_per_archive(workload, design)


def s3_request_lines(workload: Workload, design: Design, prices: Prices, *, claims: bool = True) -> list[Line]:
    """The worker's S3 requests (worker/job.py, claims.py, publish.py): GETs of the manifest and the archive; PUTs
    of the claim, the outputs, the manifest and the claim's refreshes (deleting a claim is a free DELETE).

    `claims=False` leaves out the claim and its refreshes, for alternatives that run each job exactly once.
    """
    gets = workload.archives_per_month * design.s3_gets_per_archive
    if claims:
        puts = workload.archives_per_month * s3_puts_per_archive(workload, design)
        what = "claim, outputs, manifest, claim refreshes"
    else:
        puts = workload.archives_per_month * (workload.outputs_per_archive + 1)
        what = "outputs, manifest"
    return [
        Line("S3 GET requests (manifest lookup, download)", gets, "requests", gets * prices.s3_get_request),
        Line(f"S3 PUT requests ({what})", puts, "requests", puts * prices.s3_put_request),
    ]


def worker_sqs_requests_per_archive(workload: Workload, design: Design) -> float:
    """SQS requests one archive costs in a worker: its share of a receive, its delete, and its heartbeats."""
    received = 1 / design.receive_batch_size  # one ReceiveMessage brings up to RECEIVE_BATCH_SIZE messages
    deleted = 1  # DeleteMessage, one per message as its job settles (worker/drain.py)
    return received + deleted + heartbeats_per_archive(workload, design)


def design_cost(workload: Workload, design: Design, prices: Prices) -> Estimate:
    """lew: a launcher Lambda per upload and per reconcile tick, Fargate tasks that drain the queue and exit."""
    tasks = tasks_per_month(workload, design)
    task_seconds = tasks * fargate_billed_seconds_per_task(workload, design)
    lines = fargate_lines(task_seconds, design, prices, "Fargate tasks")

    invocations = workload.archives_per_month + design.reconcile_ticks_per_month
    billed_ms = math.ceil(design.launcher_seconds * 1000)
    launcher_gb_seconds = invocations * billed_ms / 1000 * design.launcher_memory_mb / 1024
    lines += [
        Line("Lambda launcher: requests (uploads + reconcile ticks)", invocations, "requests",
             invocations * prices.lambda_request),
        Line("Lambda launcher: duration", launcher_gb_seconds, "GB-s",
             launcher_gb_seconds * prices.lambda_gb_second(design.launcher_architecture)),
    ]  # fmt: skip

    per_archive = design.launcher_sqs_requests_per_upload + worker_sqs_requests_per_archive(workload, design)
    message_requests = workload.archives_per_month * per_archive
    idle_requests = tasks * design.idle_polls
    reconcile_requests = design.reconcile_ticks_per_month * design.reconcile_sqs_requests_per_tick
    lines += [
        Line("SQS: per message (send, depth check, receive, heartbeats, delete)", message_requests, "requests",
             message_requests * prices.sqs_request),
        Line("SQS: empty long polls before each task exits", idle_requests, "requests",
             idle_requests * prices.sqs_request),
        Line("SQS: reconcile depth checks", reconcile_requests, "requests", reconcile_requests * prices.sqs_request),
    ]  # fmt: skip
    lines += s3_request_lines(workload, design, prices)
    lines.append(Line("CloudWatch alarms", design.alarms, "alarms", design.alarms * prices.cloudwatch_alarm_month))
    notes = (
        f"{plural(tasks, 'task launch', 'task launches', spec=',.0f')} a month, "
        f"{plural(design.archives_per_task, 'archive', spec='g')} each, "
        f"{fargate_billed_seconds_per_task(workload, design):,.0f} s billed per task",
    )
    name = f"lew (Lambda + SQS + Fargate {design.capacity}, {design.architecture})"
    return Estimate(name, tuple(lines), notes=notes)


def always_on_cost(workload: Workload, design: Design, prices: Prices) -> Estimate:
    """An ECS service of the same task size running 24/7, long-polling the queue that S3 notifies directly."""
    busy_seconds = workload.archives_per_month * workload.seconds_per_archive
    tasks = max(1, math.ceil(busy_seconds / SECONDS_PER_MONTH))
    lines = fargate_lines(tasks * SECONDS_PER_MONTH, design, prices, f"{plural(tasks, 'always-on task')}")
    idle_seconds = max(0.0, tasks * SECONDS_PER_MONTH - busy_seconds)
    polls = idle_seconds / design.wait_time_seconds
    message_requests = workload.archives_per_month * worker_sqs_requests_per_archive(workload, design)
    lines += [
        Line("SQS: per message (receive, heartbeats, delete)", message_requests, "requests",
             message_requests * prices.sqs_request),
        Line("SQS: empty long polls while idle", polls, "requests", polls * prices.sqs_request),
    ]  # fmt: skip
    lines += s3_request_lines(workload, design, prices)
    notes = (f"{plural(tasks, 'task')} needed for {busy_seconds / 3600:,.1f} busy hours a month",)
    return Estimate("Always-on ECS service", tuple(lines), notes=notes)


def glue_cost(workload: Workload, prices: Prices, dpus: float = 4.0) -> Estimate:
    """One AWS Glue job run per archive, billed per second with a one-minute minimum per run."""
    billed_seconds = max(GLUE_MINIMUM_SECONDS, math.ceil(workload.seconds_per_archive))
    dpu_hours = workload.archives_per_month * dpus * billed_seconds / 3600
    lines = [Line(f"Glue: {dpus:g} DPU per run", dpu_hours, "DPU-h", dpu_hours * prices.glue_dpu_hour)]
    lines += s3_request_lines(workload, Design(), prices, claims=False)
    notes = (f"{billed_seconds:,.0f} s billed per run",)
    return Estimate("AWS Glue job per archive", tuple(lines), notes=notes)


def lambda_memory_mb(design: Design) -> int:
    """Lambda memory that buys at least the task's vCPU (CPU scales with memory) and its memory."""
    return max(math.ceil(design.task_memory_gb * 1024), math.ceil(design.task_vcpu * LAMBDA_MB_PER_VCPU))


def lambda_only_cost(workload: Workload, design: Design, prices: Prices) -> Estimate:
    """One Lambda invocation per archive, doing the whole job, when the 15-minute and 10 GB limits allow it."""
    name = "All in Lambda"
    memory_mb = lambda_memory_mb(design)
    if workload.seconds_per_archive > LAMBDA_MAX_SECONDS:
        return Estimate(
            name, not_possible=f"a job takes {workload.seconds_per_archive:,.0f} s, over the 15-minute limit"
        )
    if memory_mb > LAMBDA_MAX_MEMORY_MB:
        return Estimate(name, not_possible=f"{memory_mb} MB needed for the task's CPU/memory, over Lambda's 10,240 MB")
    invocations = workload.archives_per_month
    gb_seconds = invocations * math.ceil(workload.seconds_per_archive * 1000) / 1000 * memory_mb / 1024
    lines = [
        Line("Lambda: requests", invocations, "requests", invocations * prices.lambda_request),
        Line(f"Lambda: duration at {memory_mb} MB", gb_seconds, "GB-s",
             gb_seconds * prices.lambda_gb_second(design.architecture)),
    ]  # fmt: skip
    lines += s3_request_lines(workload, design, prices, claims=False)
    notes = ("POV-Ray would have to ship in a container image; /tmp is at most 10 GB",)
    return Estimate(name, tuple(lines), notes=notes)


def at_rest(design: Design | None = None, prices: Prices | None = None) -> Estimate:
    """The deployed stack's bill in a month without uploads: the reconcile schedule and the alarms."""
    return design_cost(Workload(archives_per_day=0, seconds_per_archive=0), design or Design(), prices or Prices())


def compare(workload: Workload, design: Design, prices: Prices, glue_dpus: float = 4.0) -> list[Estimate]:
    """lew's design and the three alternatives, in that order."""
    return [
        design_cost(workload, design, prices),
        always_on_cost(workload, design, prices),
        glue_cost(workload, prices, glue_dpus),
        lambda_only_cost(workload, design, prices),
    ]


# ---------------------------------------------------------------------------------------------------------------
# The `cost` subcommand


def _number(text: str, *, integer: bool = False) -> float:
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {'whole ' if integer else ''}number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def at_least(low: float, *, integer: bool = False, why: str = "") -> Callable[[str], float]:
    """An argparse type: a number >= low (`why` says whose rule it is)."""

    def parse(text: str) -> float:
        value = _number(text, integer=integer)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is below the minimum {low:g}{why}")
        return value

    return parse


def between(
    low: float, high: float, *, above_low: bool = False, integer: bool = False, why: str = ""
) -> Callable[[str], float]:
    """An argparse type: a number in [low, high] (or (low, high] with `above_low`)."""

    def parse(text: str) -> float:
        value = _number(text, integer=integer)
        if value < low or (above_low and value == low) or value > high:
            bounds = f"more than {low:g} and at most {high:g}" if above_low else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"{text} is not {bounds}{why}")
        return value

    return parse


def vcpu_size(text: str) -> float:
    """An argparse type: a vCPU count Fargate offers."""
    value = _number(text)
    if value not in fargate.VCPU_CHOICES:
        choices = ", ".join(f"{choice:g}" for choice in fargate.VCPU_CHOICES)
        raise argparse.ArgumentTypeError(f"{text} vCPU is not a Fargate size (choose {choices})")
    return value


def as_template_parameter(parameter: str, *, integer: bool = False, scale: float = 1) -> Callable[[str], float]:
    """An argparse type checked against what template.yaml declares for `parameter` (value x `scale` in its units).

    The deployed stack can only run what the template allows, so the cost of anything else is not worth a figure.
    """

    def parse(text: str) -> float:
        value = _number(text, integer=integer)
        in_template_units = value * scale
        spec = _template_parameters().get(parameter, {})
        as_text = f"{in_template_units:g}" if not integer else str(int(in_template_units))
        problem = parameter_problem(parameter, as_text, spec)
        if problem is not None:
            unit_note = f" ({as_text} in its units)" if scale != 1 else ""
            raise argparse.ArgumentTypeError(f"{text} is {problem} of {parameter}{unit_note} in template.yaml")
        return value

    return parse


@functools.cache
def _template_parameters() -> dict[str, Any]:
    try:
        return dict(load_template(DEFAULT_TEMPLATE).get("Parameters") or {})
    except LewError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `cost` subcommand (its handler is `run`, set as the `handler` default, as lew.cli dispatches)."""
    parser = subparsers.add_parser(
        "cost",
        help="estimate the monthly cost of the design and its alternatives",
        description=f"Monthly cost of lew and of three alternatives for the same workload. Prices: {PRICES_NOTE}.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


LAMBDA_LIMIT = " (Lambda's limit)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `cost` options: the workload, the design's parameters and every price, each checked as it is parsed."""
    defaults = Design()
    non_negative = at_least(0)
    work = parser.add_argument_group("workload")
    work.add_argument("--archives-per-day", type=non_negative, required=True, help="uploads a day")
    work.add_argument("--seconds-per-archive", type=non_negative, required=True,
                      help="task-seconds one archive takes a worker (see BENCHMARKS.md)")  # fmt: skip
    work.add_argument("--outputs-per-archive", type=at_least(0, integer=True), default=1,
                      help="files each job uploads (default 1)")  # fmt: skip
    design = parser.add_argument_group("design (checked against template.yaml and Fargate's task sizes)")
    design.add_argument("--vcpu", type=vcpu_size, default=defaults.task_vcpu, help="task vCPU (default 1)")
    design.add_argument("--memory-gb", type=non_negative, default=defaults.task_memory_gb,
                        help="task memory, a Fargate size for --vcpu (default 2)")  # fmt: skip
    design.add_argument("--storage-gb", type=as_template_parameter("WorkerEphemeralStorage"),
                        default=defaults.task_storage_gb,
                        help="task ephemeral storage (default 21; beyond 20 is billed)")  # fmt: skip
    design.add_argument("--arm", action="store_true", help="Graviton (ARM64) worker tasks (and all-in-Lambda)")
    design.add_argument("--spot", action="store_true", help="FARGATE_SPOT capacity")
    design.add_argument("--archives-per-task", type=at_least(1), default=defaults.archives_per_task,
                        help="archives one task drains before it exits (default 1: sparse uploads)")  # fmt: skip
    design.add_argument("--task-startup-seconds", type=non_negative, default=defaults.task_startup_seconds,
                        help="billed image pull and start per task (default 30)")  # fmt: skip
    design.add_argument("--idle-polls", type=as_template_parameter("IdlePolls", integer=True),
                        default=defaults.idle_polls, help="IDLE_POLLS (default 2)")  # fmt: skip
    design.add_argument("--wait-time-seconds", type=as_template_parameter("WaitTimeSeconds"),
                        default=defaults.wait_time_seconds, help="WAIT_TIME_SECONDS (default 20)")  # fmt: skip
    design.add_argument("--visibility-timeout", type=as_template_parameter("VisibilityTimeout"),
                        default=defaults.visibility_timeout, help="VISIBILITY_TIMEOUT (default 300)")  # fmt: skip
    design.add_argument("--job-timeout", type=as_template_parameter("JobTimeout"), default=defaults.job_timeout,
                        help="JOB_TIMEOUT: seconds a job may run (default 3600)")  # fmt: skip
    design.add_argument("--receive-batch-size", type=as_template_parameter("ReceiveBatchSize", integer=True),
                        default=defaults.receive_batch_size, help="RECEIVE_BATCH_SIZE (default 1)")  # fmt: skip
    design.add_argument("--launcher-seconds", type=between(0, LAMBDA_MAX_SECONDS, above_low=True, why=LAMBDA_LIMIT),
                        default=defaults.launcher_seconds,
                        help="duration of one launcher invocation (default 0.2)")  # fmt: skip
    lambda_memory = between(LAMBDA_MIN_MEMORY_MB, LAMBDA_MAX_MEMORY_MB, integer=True, why=LAMBDA_LIMIT)
    design.add_argument("--launcher-memory-mb", type=lambda_memory,
                        default=defaults.launcher_memory_mb, help="launcher memory (default 256)")  # fmt: skip
    design.add_argument("--launcher-arch", choices=("arm", "x86"), default=defaults.launcher_architecture,
                        help="launcher architecture (default arm, as in the template)")  # fmt: skip
    design.add_argument("--reconcile-ticks-per-month", type=non_negative, default=defaults.reconcile_ticks_per_month,
                        help="reconcile schedule runs a month (default 43,800: once a minute)")  # fmt: skip
    design.add_argument("--glue-dpus", type=at_least(GLUE_MIN_DPUS, why=" (Glue's smallest job)"), default=4.0,
                        help="DPUs per Glue run (default 4)")  # fmt: skip
    price = parser.add_argument_group("prices (USD)", PRICES_NOTE)
    for item in fields(Prices):
        price.add_argument(f"--price-{item.name.replace('_', '-')}", type=non_negative, default=item.default,
                           dest=f"price_{item.name}", metavar="USD", help=f"default {item.default:.10g}")  # fmt: skip


def from_args(args: argparse.Namespace) -> tuple[Workload, Design, Prices]:
    """The workload, design and prices the parsed options describe (ValueError names a bad value and its option)."""
    size_problem = fargate.task_size_problem(args.vcpu, args.memory_gb)
    if size_problem is not None:
        raise ValueError(f"--memory-gb: {size_problem}")
    workload = Workload(args.archives_per_day, args.seconds_per_archive, int(args.outputs_per_archive))
    design = Design(
        task_vcpu=args.vcpu,
        task_memory_gb=args.memory_gb,
        task_storage_gb=args.storage_gb,
        architecture="arm" if args.arm else "x86",
        capacity="spot" if args.spot else "on-demand",
        archives_per_task=args.archives_per_task,
        task_startup_seconds=args.task_startup_seconds,
        idle_polls=int(args.idle_polls),
        wait_time_seconds=args.wait_time_seconds,
        visibility_timeout=args.visibility_timeout,
        job_timeout=args.job_timeout,
        receive_batch_size=int(args.receive_batch_size),
        launcher_seconds=args.launcher_seconds,
        launcher_memory_mb=int(args.launcher_memory_mb),
        launcher_architecture=args.launcher_arch,
        reconcile_ticks_per_month=args.reconcile_ticks_per_month,
    )
    prices = replace(Prices(), **{item.name: getattr(args, f"price_{item.name}") for item in fields(Prices)})
    return workload, design, prices


def timeout_warning(workload: Workload, design: Design) -> str | None:
    """One line when a job of this workload would outlast JobTimeout (the worker would kill it), else None."""
    if workload.seconds_per_archive <= design.job_timeout:
        return None
    return (
        f"--seconds-per-archive {workload.seconds_per_archive:g} is above JobTimeout {design.job_timeout:g} "
        "(--job-timeout): such jobs would time out and fail, not finish; the figures price them as if they finished"
    )


def render(workload: Workload, estimates: Sequence[Estimate]) -> str:
    """A plain-text report: lew's bill line by line, then the comparison."""
    design = estimates[0]
    out = [
        f"Workload: {plural(workload.archives_per_day, 'archive', spec=',.6g')} a day "
        f"({workload.archives_per_month:,.0f} a month), "
        f"{workload.seconds_per_archive:,.6g} task-seconds each",
        "",
        f"{design.name}, per month:",
    ]
    width = max(len(line.item) for line in design.lines)
    for line in design.lines:
        out.append(f"  {line.item:<{width}}  {line.quantity:>16,.2f} {line.unit:<8} ${line.usd:>12,.4f}")
    out.append(f"  {'total':<{width}}  {'':>16} {'':<8} ${design.total:>12,.2f}")
    out += [f"  ({note})" for note in design.notes]
    out += ["", "Compared, per month:"]
    name_width = max(len(estimate.name) for estimate in estimates)
    for estimate in estimates:
        figure = f"not possible: {estimate.not_possible}" if estimate.not_possible else f"${estimate.total:>12,.2f}"
        out.append(f"  {estimate.name:<{name_width}}  {figure}")
        out += [f"  {'':<{name_width}}    {note}" for note in estimate.notes if not estimate.not_possible]
    out += ["", f"Prices: {PRICES_NOTE}."]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Print the estimate for parsed `cost` options; 2 with one line on a bad value (as for a malformed option)."""
    try:
        workload, design, prices = from_args(args)
    except ValueError as error:
        return fail_usage("lew cost", str(error))
    warning = timeout_warning(workload, design)
    if warning is not None:
        sys.stderr.write(f"lew cost: warning: {warning}\n")
    print(render(workload, compare(workload, design, prices, args.glue_dpus)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lew.cost ...`: the `cost` subcommand on its own."""
    parser = OneLineParser(prog="lew cost", description=f"Monthly cost estimate. Prices: {PRICES_NOTE}.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
