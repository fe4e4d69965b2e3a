"""Check, before anything starts, that the launcher and the workers will accept the configuration they are given.

Every `--param` is checked against template.yaml; that cannot see what only the launcher's and the worker's own
settings checks refuse (a Number that is not whole, `--processor command` without a command, a PROCESS_PARAMETERS
entry of an unknown kind). Without this check the stack would start, and stop on the first job. So the environments
the local stack gives its launcher and its workers are built here, with the resources' identifiers in the shapes
moto gives them, and each component's own `Settings.from_env` is run on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lew.errors import LewError
from lew.local.job_events import event_bus_name
from lew.local.resources import LocalResources, launcher_env, worker_env
from lew.local.settings import (
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    LAUNCHER_ENV_FROM_PARAMETERS,
    WORKER_ENV_FROM_PARAMETERS,
    LocalSettings,
)
from lew_launcher.settings import ConfigurationError as LauncherConfigurationError
from lew_launcher.settings import Settings as LauncherSettings
from worker.settings import ConfigurationError as WorkerConfigurationError
from worker.settings import Settings as WorkerSettings

VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)\b")


def inherited_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What local processes inherit from lew's own environment: everything but AWS's variables (the stack sets
    those, so that no real credentials or endpoint reach them)."""
    return {name: value for name, value in environ.items() if not name.startswith("AWS_")}


def platform_environment(endpoint: str, region: str) -> dict[str, str]:
    """What Lambda and Fargate would provide: a region and credentials; here also the local endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def check_configuration(settings: LocalSettings, environ: Mapping[str, str]) -> None:
    """Run the worker's and the launcher's settings checks on what the local stack would give them.

    `environ` is lew's own environment (the processes inherit it, e.g. a PROCESS_COMMAND of the shell). Raises a
    LewError of one line naming every variable either refuses, each with the template parameter that sets it.
    """
    resources = placeholder_resources(settings)
    base = {**inherited_environment(environ), **platform_environment(_endpoint(settings), settings.region)}
    problems: list[str] = []
    try:
        WorkerSettings.from_env(worker_environment(settings, environ))
    except WorkerConfigurationError as error:
        worker_problems = [_with_parameter(problem, WORKER_ENV_FROM_PARAMETERS) for problem in error.problems]
        problems.append("the workers would refuse their configuration: " + "; ".join(worker_problems))
    try:
        LauncherSettings.from_env({**base, **resources.launcher_environment})
    except LauncherConfigurationError as error:
        message = str(error).removeprefix("invalid launcher configuration: ")
        launcher_problems = [_with_parameter(problem, LAUNCHER_ENV_FROM_PARAMETERS) for problem in message.split("; ")]
        problems.append("the launcher would refuse its configuration: " + "; ".join(launcher_problems))
    if problems:
        raise LewError(f"{'; and '.join(problems)}; nothing was started")


def worker_environment(settings: LocalSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a local worker gets (with placeholder resource identifiers): what it inherits from
    `environ`, what the platform provides, and what the task definition sets, in that order of precedence."""
    platform = platform_environment(_endpoint(settings), settings.region)
    return {**inherited_environment(environ), **platform, **placeholder_resources(settings).worker_environment}


def placeholder_resources(settings: LocalSettings) -> LocalResources:
    """The local resources' identifiers as moto will give them, before any exists; with both environments."""
    names = settings.names
    endpoint = _endpoint(settings)
    queue_url = f"{endpoint}/{settings.account_id}/{names.work_queue}"
    dlq_url = f"{endpoint}/{settings.account_id}/{names.dead_letter_queue}"
    event_bus = event_bus_name(settings.stack_name)
    resources = LocalResources(
        bucket=names.bucket,
        queue_url=queue_url,
        dlq_url=dlq_url,
        inbox_url=f"{endpoint}/{settings.account_id}/{names.inbox_queue}",
        launcher_failure_url=f"{endpoint}/{settings.account_id}/{names.launcher_failure_queue}",
        cluster=names.cluster,
        task_family=names.task_family,
        task_definition_arn=(
            f"arn:aws:ecs:{settings.region}:{settings.account_id}:task-definition/{names.task_family}:1"
        ),
        subnets=("subnet-00000000",),
        security_groups=("sg-00000000",),
        launcher_environment={},
        worker_environment=worker_env(settings, queue_url=queue_url, dlq_url=dlq_url, event_bus=event_bus),
        event_bus=event_bus,
    )
    return LocalResources(**{**resources.__dict__, "launcher_environment": launcher_env(settings, resources)})


def _endpoint(settings: LocalSettings) -> str:
    return f"http://127.0.0.1:{settings.port or 5000}"


def _with_parameter(problem: str, parameters: Mapping[str, str]) -> str:
    """The problem, naming the template parameter that sets its variable, if one does."""
    match = VARIABLE.match(problem.strip())
    parameter = parameters.get(match.group(1)) if match else None
    return f"{problem.strip()} (template parameter {parameter})" if parameter else problem.strip()
