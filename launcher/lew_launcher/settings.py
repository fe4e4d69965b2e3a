"""The launcher's configuration: a frozen ``Settings`` read from the environment once per invocation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

_Choice = TypeVar("_Choice", bound=StrEnum)


class ConfigurationError(ValueError):
    """One or more environment variables are missing or invalid; the message names each of them."""


class CapacityProvider(StrEnum):
    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"


class AssignPublicIp(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


# Defaults of the optional variables (the template's parameter defaults, see docs/ARCHITECTURE.md).
ENV_DEFAULTS: Final[Mapping[str, str]] = {
    "CONTAINER_NAME": "worker",
    "SECURITY_GROUPS": "",
    "ASSIGN_PUBLIC_IP": "ENABLED",
    "SUFFIXES": ".zip,.tar,.tar.gz,.tgz",
    "INPUT_PREFIX": "incoming/",
    "RESULT_PREFIX": "results/",
    "MAX_WORKERS": "4",
    "MESSAGES_PER_WORKER": "5",
    "CAPACITY_PROVIDER": "FARGATE",
    "SPOT_FALLBACK_SECONDS": "900",
}


@dataclass(frozen=True)
class Settings:
    """The launcher's configuration, read once per invocation from the environment."""

    queue_url: str
    cluster: str
    task_definition: str
    container_name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: AssignPublicIp
    suffixes: tuple[str, ...]  # lower-case; empty accepts every key
    input_prefix: str  # empty accepts every key outside RESULT_PREFIX
    result_prefix: str
    max_workers: int
    messages_per_worker: int
    capacity_provider: CapacityProvider
    # With FARGATE_SPOT: after a capacity failure, start workers on FARGATE for this long (0: never fall back).
    spot_fallback_seconds: int = 900
    event_bus_name: str = ""  # where the `queued` job events go (lew_launcher/job_events.py); empty publishes none

    @property
    def task_family(self) -> str:
        """The task definition's family, whichever form TASK_DEFINITION takes."""
        return task_family(self.task_definition)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every variable; raise one ConfigurationError that lists all problems."""
        problems: list[str] = []

        def text(name: str) -> str:
            value = environ.get(name, ENV_DEFAULTS.get(name, "")).strip()
            if not value and name not in ENV_DEFAULTS:
                problems.append(f"{name} is required and is not set")
            return value

        def listing(name: str) -> tuple[str, ...]:
            return tuple(item.strip() for item in text(name).split(",") if item.strip())

        def integer(name: str, minimum: int) -> int:
            raw = text(name)
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be a whole number, got {raw!r}")
                return minimum
            if value < minimum:
                problems.append(f"{name} must be at least {minimum}, got {value}")
            return value

        def choice(name: str, allowed: type[_Choice]) -> _Choice:
            raw = text(name).upper()
            try:
                return allowed(raw)
            except ValueError:
                problems.append(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
                return next(iter(allowed))

        task_definition = text("TASK_DEFINITION")
        if task_definition and not task_family(task_definition):
            problems.append(f"TASK_DEFINITION {task_definition!r} names no task definition family")
        container_name = text("CONTAINER_NAME")
        if not container_name:
            problems.append("CONTAINER_NAME must not be empty")
        input_prefix, result_prefix = text("INPUT_PREFIX"), text("RESULT_PREFIX")
        if not result_prefix:
            problems.append("RESULT_PREFIX must not be empty: it keeps the launcher from processing its own outputs")
        elif input_prefix.startswith(result_prefix):
            problems.append(
                f"INPUT_PREFIX {input_prefix!r} lies under RESULT_PREFIX {result_prefix!r}, so every upload would be "
                "skipped; use separate prefixes"
            )
        settings = cls(
            queue_url=text("QUEUE_URL"),
            cluster=text("CLUSTER"),
            task_definition=task_definition,
            container_name=container_name,
            subnets=listing("SUBNETS"),
            security_groups=listing("SECURITY_GROUPS"),
            assign_public_ip=choice("ASSIGN_PUBLIC_IP", AssignPublicIp),
            suffixes=tuple(suffix.lower() for suffix in listing("SUFFIXES")),
            input_prefix=input_prefix,
            result_prefix=result_prefix,
            max_workers=integer("MAX_WORKERS", minimum=0),
            messages_per_worker=integer("MESSAGES_PER_WORKER", minimum=1),
            capacity_provider=choice("CAPACITY_PROVIDER", CapacityProvider),
            spot_fallback_seconds=integer("SPOT_FALLBACK_SECONDS", minimum=0),
            event_bus_name=environ.get("EVENT_BUS_NAME", "").strip(),
        )
        if problems:
            raise ConfigurationError("invalid launcher configuration: " + "; ".join(problems))
        return settings


def cluster_name(cluster: str) -> str:
    """The cluster's name, whether given as a name or as an ARN (``arn:...:cluster/NAME``)."""
    return cluster.rsplit("cluster/", 1)[-1] if cluster.startswith("arn:") else cluster


def task_family(task_definition: str) -> str:
    """The family of a task definition given as an ARN, ``family:revision`` or ``family``."""
    name = task_definition.rsplit("task-definition/", 1)[-1] if task_definition.startswith("arn:") else task_definition
    return name.split(":", 1)[0].strip()
