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
from typing import Any

from lew import template as cfn
from lew.errors import LewError
from lew.local.job_events import event_bus_name
from lew.local.resources import LocalResources, launcher_env, worker_env
from lew.local.settings import (
    CONTAINER_NAME,
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
    LewError of one line naming every variable either refuses, each with where its value came from (the template
    parameter that sets it, or lew's environment).
    """
    resources = placeholder_resources(settings)
    inherited = inherited_environment(environ)
    base = {**inherited, **platform_environment(_endpoint(settings), settings.region)}
    problems: list[str] = []
    worker = worker_environment(settings, environ)
    try:
        WorkerSettings.from_env(worker)
    except WorkerConfigurationError as error:
        template_env = cfn.container_environment(settings.template, CONTAINER_NAME)
        sources = _parameter_sources(settings, WORKER_ENV_FROM_PARAMETERS, template_env, worker, inherited)
        worker_problems = [_with_parameter(problem, sources) for problem in error.problems]
        problems.append("the workers would refuse their configuration: " + "; ".join(worker_problems))
    launcher = {**base, **resources.launcher_environment}
    try:
        LauncherSettings.from_env(launcher)
    except LauncherConfigurationError as error:
        message = str(error).removeprefix("invalid launcher configuration: ")
        template_env = cfn.function_environment(settings.template)
        sources = _parameter_sources(settings, LAUNCHER_ENV_FROM_PARAMETERS, template_env, launcher, inherited)
        launcher_problems = [_with_parameter(problem, sources) for problem in message.split("; ")]
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


def _parameter_sources(
    settings: LocalSettings,
    contract: Mapping[str, str],
    template_env: Mapping[str, Any],
    environment: Mapping[str, str],
    inherited: Mapping[str, str],
) -> dict[str, str]:
    """Variable -> where its value came from, as the error says it: `template parameter X` (by the contract of
    docs/ARCHITECTURE.md or a plain `!Ref` in the template's block, when the value is that parameter's), or `from
    lew's environment` (inherited, which the template does not set)."""
    candidates = dict(contract)
    for name, raw in template_env.items():
        if isinstance(raw, Mapping) and set(raw) == {"Ref"} and raw["Ref"] in settings.parameters:
            candidates[name] = str(raw["Ref"])
    sources = {
        name: f"template parameter {parameter}"
        for name, parameter in candidates.items()
        # its value, or nothing when the parameter is empty (the template then sets nothing: ProcessCommand)
        if environment.get(name, "") == settings.parameters.get(parameter)
    }
    for name, value in inherited.items():
        if name not in sources and environment.get(name) == value:
            sources[name] = "from lew's environment"
    return sources


def _with_parameter(problem: str, sources: Mapping[str, str]) -> str:
    """The problem, saying where its variable's value came from, when that is known."""
    match = VARIABLE.match(problem.strip())
    source = sources.get(match.group(1)) if match else None
    return f"{problem.strip()} ({source})" if source else problem.strip()
