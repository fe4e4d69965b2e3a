"""Settings of the local stack: `template.yaml`'s parameter defaults, plus a few visible local overrides."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lew import fargate
from lew import parameter_rules as rules
from lew import template as cfn
from lew.errors import LewError
from lew.local.chaos import StartFailures
from lew.local.processor_parameters import SUBMIT_HINT, not_a_template_parameter
from lew.schedule import key_problem

LOCAL_STACK_NAME = "lew-local"
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
CONTAINER_NAME = "worker"
FAKE_ACCESS_KEY = "lew-local"  # moto accepts any credentials; these can never sign a real AWS request
FAKE_SECRET_KEY = "lew-local-secret"  # noqa: S105  # not a secret: see above
BUILTIN_PROCESSORS = ("povray", "inventory", "command")
POVRAY_INSTALL_HINT = "install POV-Ray to render the scenes: apt-get install povray, or brew install povray"

# Parameter -> environment variable, as docs/ARCHITECTURE.md fixes them. Used for any variable that the
# template's own environment blocks do not set (or set from something only CloudFormation can resolve).
LAUNCHER_ENV_FROM_PARAMETERS = {
    "SUFFIXES": "Suffixes",
    "INPUT_PREFIX": "InputPrefix",
    "RESULT_PREFIX": "ResultPrefix",
    "MAX_WORKERS": "MaxWorkers",
    "MESSAGES_PER_WORKER": "MessagesPerWorker",
    "CAPACITY_PROVIDER": "CapacityProvider",
    "SPOT_FALLBACK_SECONDS": "SpotFallbackSeconds",
    "ASSIGN_PUBLIC_IP": "AssignPublicIp",
}
WORKER_ENV_FROM_PARAMETERS = {
    "INPUT_PREFIX": "InputPrefix",
    "RESULT_PREFIX": "ResultPrefix",
    "PROCESSOR": "Processor",
    "PROCESS_COMMAND": "ProcessCommand",
    "PROCESS_PARAMETERS": "ProcessParameters",
    "VISIBILITY_TIMEOUT": "VisibilityTimeout",
    "JOB_TIMEOUT": "JobTimeout",
    "STOP_GRACE_SECONDS": "StopGraceSeconds",
    "IDLE_POLLS": "IdlePolls",
    "WAIT_TIME_SECONDS": "WaitTimeSeconds",
    "MAX_ARCHIVE_BYTES": "MaxArchiveBytes",
    "MAX_UNPACKED_BYTES": "MaxUnpackedBytes",
    "MAX_MEMBERS": "MaxMembers",
}
# The parameters the local stack reads. Their values come only from template.yaml, so local cannot drift from deployed.
REQUIRED_PARAMETERS = (
    "InputPrefix",
    "ResultPrefix",
    "Suffixes",
    "MaxWorkers",
    "MessagesPerWorker",
    "CapacityProvider",
    "AssignPublicIp",
    "Processor",
    "VisibilityTimeout",
    "MaxReceiveCount",
    "JobTimeout",
    "StopGraceSeconds",
    "IdlePolls",
    "WaitTimeSeconds",
    "ReconcileSchedule",
    "MaxArchiveBytes",
    "MaxUnpackedBytes",
    "MaxMembers",
    "WorkerCpu",
    "WorkerMemory",
)
# What local mode changes, and why. Printed by `lew local up` and `lew demo`, so nothing is hidden.
LOCAL_OVERRIDES: dict[str, tuple[str, str]] = {
    "WaitTimeSeconds": ("2", "workers notice an empty queue in seconds, not minutes"),
    "StopGraceSeconds": ("5", "Ctrl-C stops local workers quickly"),
}
DEFAULT_RECONCILE_SECONDS = 5.0


@dataclass(frozen=True)
class Override:
    """One value that local mode sets differently from the template."""

    name: str
    template_value: str
    local_value: str
    reason: str


@dataclass(frozen=True)
class LocalSettings:
    """Everything the local stack is built from; names are deterministic so that `--endpoint` can find them."""

    parameters: Mapping[str, str]
    overrides: tuple[Override, ...]
    template: Mapping[str, Any] = field(repr=False)
    stack_name: str = LOCAL_STACK_NAME
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    reconcile_seconds: float = DEFAULT_RECONCILE_SECONDS
    lambda_retry_delays: tuple[float, ...] = (1.0, 2.0)  # Lambda's async retries, 1 and 2 minutes, sped up
    worker_command: tuple[str, ...] = (sys.executable, "-m", "worker")
    worker_cwd: Path = cfn.REPO_ROOT
    worker_kill_grace_seconds: float = 10.0
    port: int = 0  # the moto server's port on 127.0.0.1; 0 takes any free one
    task_start_failures: StartFailures | None = None  # the chaos option --fail-task-starts (lew.local.chaos)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames.for_stack(self.stack_name, self.account_id, self.region)

    def parameter(self, name: str) -> str:
        try:
            return self.parameters[name]
        except KeyError:
            raise LewError(f"template parameter {name} has no default and no local value") from None

    def int_parameter(self, name: str) -> int:
        value = self.parameter(name)
        try:
            return int(value)
        except ValueError:
            raise LewError(f"template parameter {name} must be a whole number, got {value!r}") from None

    @property
    def processor(self) -> str:
        return self.parameter("Processor")


@dataclass(frozen=True)
class ResourceNames:
    """Names of the local stack's resources, derived from the stack name like the template's `!Sub`s."""

    bucket: str
    work_queue: str
    dead_letter_queue: str
    inbox_queue: str
    launcher_failure_queue: str
    cluster: str
    task_family: str

    @classmethod
    def for_stack(cls, stack_name: str, account_id: str, region: str) -> ResourceNames:
        return cls(
            bucket=f"{stack_name}-{account_id}-{region}",
            work_queue=f"{stack_name}-work",
            dead_letter_queue=f"{stack_name}-dlq",
            inbox_queue=f"{stack_name}-launcher-inbox",
            launcher_failure_queue=f"{stack_name}-launcher-failures",
            cluster=stack_name,
            task_family=f"{stack_name}-worker",
        )


def default_processor() -> str:
    """POV-Ray when it is installed, else the pure-Python inventory processor."""
    return "povray" if shutil.which("povray") else "inventory"


def validate_processor(name: str) -> str:
    """Accept a built-in processor or a `package.module:function` reference; reject anything else in one line."""
    if name in BUILTIN_PROCESSORS:
        if name == "povray" and not shutil.which("povray"):
            raise LewError(f"processor povray needs POV-Ray on PATH; {POVRAY_INSTALL_HINT}")
        return name
    module, _, function = name.partition(":")
    if module and function and all(part.isidentifier() for part in [*module.split("."), function]):
        return name
    choices = ", ".join(BUILTIN_PROCESSORS)
    raise LewError(f"unknown processor {name!r}: choose {choices}, or package.module:function")


def parse_assignments(
    assignments: Sequence[str],
    known: Mapping[str, Any],
    source: str = "template.yaml",
    *,
    processor: str | None = None,
    job_option: str = SUBMIT_HINT,
) -> dict[str, str]:
    """Parse `Name=Value` parameter overrides given on the command line, rejecting names `known` lacks.

    A name `known` lacks is refused in one line saying where job parameters go instead (`job_option`), and so
    whether the processor (`processor`, else the default) declares it as one (`not_a_template_parameter`).
    """
    parsed: dict[str, str] = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise LewError(f"--param {assignment!r}: expected NAME=VALUE, e.g. MaxWorkers=2")
        parsed[name] = value
    for name, value in parsed.items():
        if name not in known:
            raise LewError(
                _unknown_parameter(
                    name, value, source, declared=known, given=parsed, processor=processor, job_option=job_option
                )
            )
    return parsed


def _unknown_parameter(
    name: str,
    value: str,
    source: str,
    *,
    declared: Mapping[str, Any],
    given: Mapping[str, str],
    processor: str | None,
    job_option: str,
) -> str:
    """The one line for a `--param` the template does not declare, with the processor's job parameters in mind."""
    chosen = processor or given.get("Processor") or default_processor()
    default = str((declared.get("ProcessParameters") or {}).get("Default") or "")
    process_parameters = given.get("ProcessParameters") or default or os.environ.get("PROCESS_PARAMETERS", "")
    return not_a_template_parameter(
        name, value, source, processor=chosen, process_parameters=process_parameters, job_option=job_option
    )


def template_parameters(template: dict[str, Any], template_path: Path) -> dict[str, str]:
    """The template's parameter defaults; a LewError naming any parameter the local stack needs but cannot find."""
    defaults = cfn.parameter_defaults(template)
    missing = [name for name in REQUIRED_PARAMETERS if name not in defaults]
    if missing:
        noun = "parameter" if len(missing) == 1 else "parameters"
        raise LewError(f"{template_path} has no default for the {noun} {', '.join(missing)}")
    return dict(defaults)


def check_parameters(
    template: Mapping[str, Any],
    template_path: Path,
    given: Mapping[str, str],
    effective: Mapping[str, str],
    *,
    processor: str | None = None,
) -> None:
    """Refuse, in one line naming the parameter, the value and the rule, a value the template does not allow.

    `given` are the caller's values (`--param`), `effective` every value the stack will use. Checked: each given
    value against its parameter's declaration, the template's Rules, and Fargate's CPU/memory pairs (the template
    can only describe those in words; CloudFormation would fail on them at the task definition).
    """
    declared = template.get("Parameters") or {}
    source = template_path.name
    for name, value in given.items():
        if name not in declared:
            raise LewError(
                _unknown_parameter(
                    name, value, source, declared=declared, given=given, processor=processor, job_option=SUBMIT_HINT
                )
            )
        problem = rules.parameter_problem(name, value, declared[name])
        if problem is not None:
            raise LewError(f"--param {name}={value!r}: {problem}; see {name} in {source}")
    for broken in rules.broken_rules(template, effective):
        involved = [f"--param {name}={given[name]!r}" for name in broken.parameters if name in given]
        if involved:
            raise LewError(f"{', '.join(involved)}: breaks the rule {broken.rule} of {source}: {broken.description}")
    size_parameters = [name for name in ("WorkerCpu", "WorkerMemory") if name in given]
    if size_parameters:
        cpu, memory = effective.get("WorkerCpu", ""), effective.get("WorkerMemory", "")
        if rules.NUMBER.fullmatch(cpu) and rules.NUMBER.fullmatch(memory):
            problem = fargate.task_size_problem(
                float(cpu) / fargate.CPU_UNITS_PER_VCPU, float(memory) / fargate.MIB_PER_GB
            )
            if problem is not None:
                named = ", ".join(f"--param {name}={given[name]!r}" for name in size_parameters)
                raise LewError(f"{named}: {problem}; WorkerCpu is {cpu} units, WorkerMemory {memory} MiB")


def _check_schedule_key(effective: Mapping[str, str]) -> None:
    """A ScheduleObjectKey the launcher would refuse at every tick is refused now, in one line (the template's rules
    cannot test a suffix or a prefix)."""
    key = effective.get("ScheduleObjectKey", "")
    suffixes = [item.strip() for item in effective.get("Suffixes", "").split(",") if item.strip()]
    problem = key_problem(key, suffixes=suffixes, result_prefix=effective.get("ResultPrefix", "")) if key else None
    if problem is not None:
        raise LewError(f"--param ScheduleObjectKey: {problem}")


def build_settings(
    template_path: Path = cfn.DEFAULT_TEMPLATE,
    *,
    processor: str | None = None,
    parameters: Mapping[str, str] | None = None,
    reconcile_seconds: float = DEFAULT_RECONCILE_SECONDS,
    check: bool = True,
    environ: Mapping[str, str] | None = None,
    **extra: Any,
) -> LocalSettings:
    """Read the template and apply, in order: its defaults, local overrides, then the caller's parameters.

    The caller's parameters are checked against the template's rules (`check_parameters`, a LewError naming the
    first bad one), then the whole configuration against the launcher's and the worker's own settings checks
    (`lew.local.preflight`, on the environment they would get: `environ`, default os.environ, is what they
    inherit); `check=False` is for tests that go beyond them on purpose, e.g. seconds-long timeouts.
    """
    template = cfn.load_template(template_path)
    effective = template_parameters(template, template_path)
    overrides = []
    for name, (local_value, reason) in LOCAL_OVERRIDES.items():
        if effective.get(name) != local_value:
            overrides.append(Override(name, effective.get(name, ""), local_value, reason))
            effective[name] = local_value
    for name, value in (parameters or {}).items():
        overrides.append(Override(name, effective.get(name, ""), value, "set with --param"))
        effective[name] = value
    if check:
        check_parameters(template, template_path, parameters or {}, effective, processor=processor)
        _check_schedule_key(effective)
    # `--param Processor=command` is honoured like `--processor command` (--processor wins when both are given).
    requested = processor or (parameters or {}).get("Processor")
    chosen = validate_processor(requested) if requested else default_processor()
    if effective.get("Processor") != chosen:
        reason = "chosen with --processor" if processor else "POV-Ray is not installed"
        overrides.append(Override("Processor", effective.get("Processor", ""), chosen, reason))
        effective["Processor"] = chosen
    schedule = effective["ReconcileSchedule"]
    if cfn.rate_seconds(schedule) != reconcile_seconds:
        overrides.append(
            Override("ReconcileSchedule", schedule, f"every {reconcile_seconds:g} s", "reconcile faster locally")
        )
    if reconcile_seconds <= 0:
        raise LewError(f"the reconcile interval must be positive, got {reconcile_seconds:g}")
    failures = extra.get("task_start_failures")
    if isinstance(failures, StartFailures):
        injected = f"{failures.share:.0%} fail with {failures.stop_code}"
        overrides.append(Override("task starts", "none fail", injected, "chaos: --fail-task-starts"))
    settings = LocalSettings(
        parameters=effective,
        overrides=tuple(overrides),
        template=template,
        reconcile_seconds=reconcile_seconds,
        **extra,
    )
    if check:
        from lew.local.preflight import check_configuration  # noqa: PLC0415  # it imports this module

        check_configuration(settings, os.environ if environ is None else environ)
    return settings
