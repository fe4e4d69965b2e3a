"""Settings.from_env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from lew_launcher.settings import AssignPublicIp, CapacityProvider, ConfigurationError, Settings, task_family

REQUIRED = {
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/lew-work",
    "CLUSTER": "lew",
    "TASK_DEFINITION": "lew-worker",
    "SUBNETS": "subnet-1",
}


def test_settings_defaults_match_the_template_parameters() -> None:
    settings = Settings.from_env(REQUIRED)

    assert settings.container_name == "worker"
    assert settings.subnets == ("subnet-1",)
    assert settings.security_groups == ()
    assert settings.assign_public_ip is AssignPublicIp.ENABLED
    assert settings.suffixes == (".zip", ".tar", ".tar.gz", ".tgz")
    assert settings.input_prefix == "incoming/"
    assert settings.result_prefix == "results/"
    assert settings.max_workers == 4
    assert settings.messages_per_worker == 5
    assert settings.capacity_provider is CapacityProvider.FARGATE
    assert settings.spot_fallback_seconds == 900


def test_settings_parse_lists_choices_and_numbers() -> None:
    settings = Settings.from_env(
        REQUIRED
        | {
            "SUBNETS": " subnet-a , subnet-b,,",
            "SECURITY_GROUPS": "sg-1,sg-2",
            "ASSIGN_PUBLIC_IP": "disabled",
            "SUFFIXES": ".ZIP, .Tar.Gz",
            "INPUT_PREFIX": "",
            "MAX_WORKERS": "0",
            "MESSAGES_PER_WORKER": "12",
            "CAPACITY_PROVIDER": "FARGATE_SPOT",
        }
    )

    assert settings.subnets == ("subnet-a", "subnet-b")
    assert settings.security_groups == ("sg-1", "sg-2")
    assert settings.assign_public_ip is AssignPublicIp.DISABLED
    assert settings.suffixes == (".zip", ".tar.gz")
    assert settings.input_prefix == ""
    assert settings.max_workers == 0
    assert settings.messages_per_worker == 12
    assert settings.capacity_provider is CapacityProvider.FARGATE_SPOT


def test_settings_empty_suffixes_accept_every_key() -> None:
    assert Settings.from_env(REQUIRED | {"SUFFIXES": ""}).suffixes == ()


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(REQUIRED)
    with pytest.raises(AttributeError):
        settings.max_workers = 10  # type: ignore[misc]


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_settings_missing_required_variable_is_named(missing: str) -> None:
    environ = {name: value for name, value in REQUIRED.items() if name != missing}

    with pytest.raises(ConfigurationError, match=f"{missing} is required"):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MAX_WORKERS", "four", "MAX_WORKERS must be a whole number, got 'four'"),
        ("MAX_WORKERS", "-1", "MAX_WORKERS must be at least 0, got -1"),
        ("MESSAGES_PER_WORKER", "0", "MESSAGES_PER_WORKER must be at least 1, got 0"),
        ("MESSAGES_PER_WORKER", "2.5", "MESSAGES_PER_WORKER must be a whole number"),
        ("CAPACITY_PROVIDER", "EC2", "CAPACITY_PROVIDER must be one of FARGATE, FARGATE_SPOT, got 'EC2'"),
        ("ASSIGN_PUBLIC_IP", "yes", "ASSIGN_PUBLIC_IP must be one of ENABLED, DISABLED, got 'YES'"),
        ("SPOT_FALLBACK_SECONDS", "-1", "SPOT_FALLBACK_SECONDS must be at least 0, got -1"),
        ("SPOT_FALLBACK_SECONDS", "15m", "SPOT_FALLBACK_SECONDS must be a whole number, got '15m'"),
        ("RESULT_PREFIX", "", "RESULT_PREFIX must not be empty"),
        ("CONTAINER_NAME", " ", "CONTAINER_NAME must not be empty"),
        ("TASK_DEFINITION", ":3", "TASK_DEFINITION ':3' names no task definition family"),
        ("INPUT_PREFIX", "results/in/", "INPUT_PREFIX 'results/in/' lies under RESULT_PREFIX 'results/'"),
    ],
)
def test_settings_invalid_value_is_named(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(REQUIRED | {name: value})

    assert expected in str(raised.value)


def test_settings_report_every_problem_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"MAX_WORKERS": "x", "CAPACITY_PROVIDER": "spot"})

    message = str(raised.value)
    for name in ("QUEUE_URL", "CLUSTER", "TASK_DEFINITION", "SUBNETS", "MAX_WORKERS", "CAPACITY_PROVIDER"):
        assert name in message


@pytest.mark.parametrize(
    ("task_definition", "family"),
    [
        ("lew-worker", "lew-worker"),
        ("lew-worker:7", "lew-worker"),
        ("arn:aws:ecs:us-east-1:123456789012:task-definition/lew-worker:7", "lew-worker"),
        ("arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/lew-worker", "lew-worker"),
    ],
)
def test_task_family_accepts_every_form(task_definition: str, family: str) -> None:
    assert task_family(task_definition) == family
    assert Settings.from_env(REQUIRED | {"TASK_DEFINITION": task_definition}).task_family == family
