"""The local stack refuses, before it starts, a configuration its launcher or its workers would refuse."""

from __future__ import annotations

import pytest

from lew.errors import LewError
from lew.local.preflight import check_configuration, placeholder_resources
from lew.local.settings import build_settings

NOTHING_INHERITED: dict[str, str] = {}


@pytest.mark.parametrize(
    ("processor", "parameters", "named"),
    [
        # the worker's settings check: a required variable missing, a value of a kind it cannot read, a number
        # the template allows (a Number) but the worker does not (a whole one), a pair that contradicts
        ("command", {}, "PROCESS_COMMAND is required by PROCESSOR=command and is not set (template parameter "
         "ProcessCommand)"),
        ("command", {"ProcessCommand": "true", "ProcessParameters": "threshold:integer:0..100"},
         "PROCESS_PARAMETERS cannot be read: 'threshold:integer:0..100': the kind must be one of int, float, bool, "
         "choice, text (template parameter ProcessParameters)"),
        ("inventory", {"IdlePolls": "1.5"}, "IDLE_POLLS must be a whole number, got '1.5' (template parameter "
         "IdlePolls)"),
        ("inventory", {"ProcessCommand": "true"}, "PROCESS_COMMAND is set but PROCESSOR=inventory ignores it"),
    ],
)  # fmt: skip
def test_build_settings_refuses_what_the_worker_would_refuse(
    processor: str, parameters: dict[str, str], named: str
) -> None:
    # GIVEN values that template.yaml allows but the worker's own settings check refuses
    # WHEN the local settings are built
    with pytest.raises(LewError) as raised:
        build_settings(processor=processor, parameters=parameters, environ=NOTHING_INHERITED)

    # THEN one line names the variable and the parameter that sets it, and says nothing was started
    message = str(raised.value)
    assert message.startswith("the workers would refuse their configuration: "), message
    assert named in message
    assert message.endswith("; nothing was started")
    assert "\n" not in message


def test_build_settings_refuses_what_the_launcher_would_refuse_naming_both_components() -> None:
    # GIVEN one value the worker refuses and one the launcher refuses
    parameters = {"IdlePolls": "1.5", "MaxWorkers": "2.5"}

    # WHEN the local settings are built
    with pytest.raises(LewError) as raised:
        build_settings(processor="inventory", parameters=parameters, environ=NOTHING_INHERITED)

    # THEN the one line names both, each with its component
    assert str(raised.value) == (
        "the workers would refuse their configuration: IDLE_POLLS must be a whole number, got '1.5' (template "
        "parameter IdlePolls); and the launcher would refuse its configuration: MAX_WORKERS must be a whole number, "
        "got '2.5' (template parameter MaxWorkers); nothing was started"
    )


def test_build_settings_accepts_a_process_command_the_workers_inherit() -> None:
    # GIVEN no ProcessCommand in the template, but a PROCESS_COMMAND in lew's environment (the workers inherit it)
    inherited = {"PROCESS_COMMAND": "python3 etl.py {input_dir} {output_dir}"}

    # WHEN the local settings are built for the command processor THEN they are accepted
    assert build_settings(processor="command", environ=inherited).processor == "command"


def test_build_settings_check_false_skips_the_components_checks() -> None:
    # GIVEN a value beyond the worker's check, for a test that means it
    # WHEN the settings are built without checks THEN nothing is refused
    settings = build_settings(processor="command", check=False, environ=NOTHING_INHERITED)

    assert settings.processor == "command"


def test_check_configuration_sees_aws_variables_of_its_own_environment_not_the_callers() -> None:
    # GIVEN a caller whose AWS_REGION is not a region (the stack replaces every AWS_ variable for its processes)
    settings = build_settings(processor="inventory", environ=NOTHING_INHERITED)

    # WHEN the configuration is checked THEN it passes, as the stack's processes would get the local region
    check_configuration(settings, {"AWS_REGION": "nowhere", "AWS_ENDPOINT_URL": "not a url"})


def test_placeholder_resources_give_both_components_every_variable_the_stack_sets() -> None:
    # GIVEN the default local settings
    settings = build_settings(processor="inventory", environ=NOTHING_INHERITED)

    # WHEN the placeholder resources are made
    resources = placeholder_resources(settings)

    # THEN the worker and the launcher get their queues, cluster and bus in the shapes moto gives them
    assert resources.worker_environment["QUEUE_URL"].endswith("/123456789012/lew-local-work")
    assert resources.worker_environment["EVENT_BUS_NAME"] == "lew-local-jobs"
    assert resources.launcher_environment["TASK_DEFINITION"].startswith("arn:aws:ecs:us-east-1:123456789012:")
    assert resources.launcher_environment["QUEUE_URL"] == resources.worker_environment["QUEUE_URL"]


def test_check_configuration_says_a_bad_value_came_from_lews_environment() -> None:
    # GIVEN lew's own environment exports an OUTPUT_DIR the worker refuses (the template does not set it)
    # WHEN the local settings are built
    with pytest.raises(LewError) as raised:
        build_settings(processor="inventory", environ={"OUTPUT_DIR": "/abs"})

    # THEN the line says where the value came from, so that the user knows what to change
    assert "got '/abs' (from lew's environment)" in str(raised.value)


def test_check_configuration_does_not_blame_the_environment_for_what_the_template_sets() -> None:
    # GIVEN lew's environment has an IDLE_POLLS the template's value replaces
    # WHEN the local settings are built THEN they pass: the workers get the template's value
    assert build_settings(processor="inventory", environ={"IDLE_POLLS": "abc"}).processor == "inventory"
