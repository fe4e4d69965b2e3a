"""Scheduled jobs in template.yaml: an EventBridge Scheduler schedule that invokes the launcher with one run's event,
its least-privilege role, the worker's read grant on exactly the scheduled object, and the parameters' rules."""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from lew.parameter_rules import broken_rules
from lew_launcher.events import EventKind, parse_event
from lew_launcher.schedule import read_schedule_event

Resolved = Callable[..., dict[str, Any]]

SCHEDULE = {"ScheduleExpression": "cron(0 3 * * ? *)", "ScheduleObjectKey": "schedules/nightly-etl.zip"}
SCHEDULE_RESOURCES = {"JobSchedule", "JobScheduleRole"}
BUCKET_NAME = "lew-123456789012-us-east-1"
SCHEDULE_ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/lew-job"
# The context attributes Scheduler replaces in a target's input (docs: "Adding context attributes").
CONTEXT_ATTRIBUTES = {
    "<aws.scheduler.scheduled-time>": "2026-11-30T03:00:00Z",
    "<aws.scheduler.schedule-arn>": SCHEDULE_ARN,
}


def schedule_input(resources: dict[str, Any], key: str) -> Any:
    """The launcher's event for one firing: the Input's !Sub and Scheduler's context attributes, substituted."""
    text = resources["JobSchedule"]["Properties"]["Target"]["Input"]["Fn::Sub"]
    assert set(re.findall(r"\$\{([^}]*)\}", text)) == {"Bucket", "ScheduleObjectKey"}
    assert set(re.findall(r"<aws\.scheduler\.[a-z-]+>", text)) == set(CONTEXT_ATTRIBUTES)
    text = text.replace("${Bucket}", BUCKET_NAME).replace("${ScheduleObjectKey}", key)
    for attribute, value in CONTEXT_ATTRIBUTES.items():
        text = text.replace(attribute, value)
    return json.loads(text)


def pattern(raw_template: dict[str, Any], name: str) -> str:
    return str(raw_template["Parameters"][name]["AllowedPattern"])


# --- with and without a schedule -------------------------------------------------------------------------------------


def test_schedule_without_an_expression_creates_nothing(resolved: Resolved) -> None:
    # GIVEN the default parameters (no ScheduleExpression)
    deployed = resolved()

    # THEN there is no schedule, no role for it, and the worker reads nothing more than InputPrefix
    assert not SCHEDULE_RESOURCES & set(deployed["Resources"])
    assert "JobScheduleArn" not in deployed["Outputs"]
    assert "ScheduleObjectKey" not in json.dumps(deployed["Resources"])
    # AND the key output is there, empty, so that lew can tell "no schedule" from "an older template"
    assert deployed["Outputs"]["ScheduleObjectKey"]["Value"] == ""


def test_schedule_invokes_the_launcher_at_the_expression_in_the_timezone(resolved: Resolved) -> None:
    # GIVEN a schedule in a time zone
    deployed = resolved(**SCHEDULE, ScheduleTimezone="Europe/Berlin")
    schedule = deployed["Resources"]["JobSchedule"]["Properties"]

    # THEN it fires at the scheduled minute, enabled, in that zone, and invokes the launcher through its own role
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["LauncherFunction", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["JobScheduleRole", "Arn"]}
    # AND an undeliverable firing is retried a bounded number of times, then kept with the launcher's failures
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["LauncherFailureQueue", "Arn"]}}
    assert deployed["Outputs"]["JobScheduleArn"]["Value"] == {"Fn::GetAtt": ["JobSchedule", "Arn"]}
    assert deployed["Outputs"]["ScheduleObjectKey"]["Value"] == "schedules/nightly-etl.zip"


def test_schedule_name_and_description_fit_schedulers_limits_for_any_key(resolved: Resolved) -> None:
    # GIVEN the longest stack name the bucket allows (35 characters) and the longest key (1024)
    schedule = resolved(**{**SCHEDULE, "ScheduleObjectKey": "k" * 1024})["Resources"]["JobSchedule"]["Properties"]
    stack = "s" * 35

    # THEN the name fits Scheduler's 64 characters and the description its 512: neither may hold the key
    name = schedule["Name"]["Fn::Sub"].replace("${AWS::StackName}", stack)
    description = schedule["Description"]["Fn::Sub"].replace("${AWS::StackName}", stack)
    assert re.fullmatch(r"[0-9a-zA-Z-_.]{1,64}", name)
    assert len(description) <= 512
    assert "${" not in description  # no other parameter (the key) in it


def test_schedule_timezone_defaults_to_utc(resolved: Resolved) -> None:
    schedule = resolved(**SCHEDULE)["Resources"]["JobSchedule"]["Properties"]
    assert schedule["ScheduleExpressionTimezone"] == "UTC"


def test_schedule_input_is_exactly_the_launchers_scheduled_job_event(resolved: Resolved) -> None:
    # GIVEN a schedule
    resources = resolved(**SCHEDULE)["Resources"]

    # WHEN CloudFormation substitutes the bucket and the key, and Scheduler the context attributes of one firing
    event = schedule_input(resources, SCHEDULE["ScheduleObjectKey"])

    # THEN the launcher receives exactly the contract's event
    assert event == {
        "source": "lew.schedule",
        "detail-type": "Scheduled Job",
        "detail": {
            "bucket": BUCKET_NAME,
            "key": "schedules/nightly-etl.zip",
            "scheduledTime": "2026-11-30T03:00:00Z",
            "schedule": SCHEDULE_ARN,
        },
    }
    # AND the launcher reads it as one scheduled job of that object, its run named by the scheduled time
    assert parse_event(event).kind is EventKind.SCHEDULED_JOB
    bucket, key, run = read_schedule_event(event)
    assert (bucket, key, run.id, run.schedule) == (
        BUCKET_NAME,
        "schedules/nightly-etl.zip",
        "20261130T030000Z",
        SCHEDULE_ARN,
    )
    # AND ${Bucket} is the bucket's name (Ref), the one the launcher and the worker use
    assert resources["Bucket"]["Properties"]["BucketName"] == {
        "Fn::Sub": "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"
    }


# Every ASCII character, and a few beyond: what the key's AllowedPattern lets through must stay one JSON string in the
# input and one object in the IAM ARN; what it refuses is exactly what would not.
KEY_CHARACTERS = [chr(code) for code in range(128)] + ["é", "\u00a0", "\u2028", "日", "😀"]
JSON_BREAKERS = {chr(code) for code in range(32)} | {'"', "\\"}
IAM_WIDENERS = {"*", "?", "$"}  # wildcards, and the '$' of an IAM policy variable ${...}
CONTEXT_MARKERS = {"<", ">"}  # a Scheduler context attribute <aws.scheduler....>
REFUSED = JSON_BREAKERS | IAM_WIDENERS | CONTEXT_MARKERS | {"\x7f"}


@pytest.mark.parametrize("character", KEY_CHARACTERS, ids=lambda character: f"U+{ord(character):04X}")
def test_schedule_key_pattern_refuses_exactly_what_breaks_the_input_or_widens_the_grant(
    raw_template: dict[str, Any], resolved: Resolved, character: str
) -> None:
    # GIVEN a key with this character
    key = f"schedules/a{character}b.zip"

    # WHEN the template's pattern decides
    accepted = re.fullmatch(pattern(raw_template, "ScheduleObjectKey"), key) is not None

    # THEN it refuses exactly the characters that would break the JSON input, widen the grant or look like a
    # context attribute
    assert accepted is (character not in REFUSED)
    if accepted:
        # AND an accepted key reaches the launcher verbatim
        assert schedule_input(resolved(**SCHEDULE)["Resources"], key)["detail"]["key"] == key


def test_schedule_key_pattern_accepts_the_empty_default_and_s3s_longest_key(raw_template: dict[str, Any]) -> None:
    spec = raw_template["Parameters"]["ScheduleObjectKey"]
    assert re.fullmatch(spec["AllowedPattern"], spec["Default"])
    assert spec["MaxLength"] == 1024


@pytest.mark.parametrize("key", ["schedules/", "/", "schedules/nightly/"])
def test_schedule_key_pattern_refuses_a_folder(raw_template: dict[str, Any], key: str) -> None:
    # a key ending in '/' is a folder marker, which the launcher would refuse at every run
    assert re.fullmatch(pattern(raw_template, "ScheduleObjectKey"), key) is None


@pytest.mark.parametrize(
    ("expression", "accepted"),
    [
        ("", True),
        ("rate(1 day)", True),
        ("rate(1 minute)", True),
        ("rate(15 minutes)", True),
        ("rate(12 hours)", True),
        ("cron(0 3 * * ? *)", True),
        ("cron(0/15 8-17 ? * MON-FRI *)", True),
        ("at(2027-01-01T03:00:00)", True),
        ("rate(0 days)", False),
        ("rate(1 week)", False),
        ("rate(day)", False),
        ("cron(0 3 * * ?)", False),  # five fields: Scheduler's cron has six
        ("at(2027-01-01 03:00:00)", False),
        ("at(2027-01-01T03:00:00Z)", False),
        ("every day", False),
        (" rate(1 day)", False),
    ],
)
def test_schedule_expression_pattern_is_schedulers_syntax(
    raw_template: dict[str, Any], expression: str, accepted: bool
) -> None:
    assert (re.fullmatch(pattern(raw_template, "ScheduleExpression"), expression) is not None) is accepted


def test_schedule_timezone_pattern_accepts_every_iana_name(raw_template: dict[str, Any]) -> None:
    # GIVEN the IANA time zone database (the tzdata package)
    names = zoneinfo.available_timezones()
    assert len(names) > 300
    spec = raw_template["Parameters"]["ScheduleTimezone"]

    # THEN every name fits the parameter, and a few things that are not names do not
    assert [
        name for name in names if not re.fullmatch(spec["AllowedPattern"], name) or len(name) > spec["MaxLength"]
    ] == []
    for not_a_name in ("", "Europe Berlin", "../etc/passwd", "UTC\n", "+01:00"):
        assert re.fullmatch(spec["AllowedPattern"], not_a_name) is None, not_a_name


# --- least privilege -------------------------------------------------------------------------------------------------


def test_schedule_role_trusts_only_scheduler_of_this_account(helpers: ModuleType, resolved: Resolved) -> None:
    role = resolved(**SCHEDULE)["Resources"]["JobScheduleRole"]["Properties"]
    account = helpers.PSEUDO_PARAMETERS["AWS::AccountId"]  # the stack's own account (Ref AWS::AccountId)
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }
    ]
    assert "ManagedPolicyArns" not in role


def test_schedule_role_may_only_invoke_the_launcher_and_record_undelivered_runs(
    helpers: ModuleType, resolved: Resolved
) -> None:
    # GIVEN a schedule
    deployed = resolved(**SCHEDULE)

    # THEN its role may invoke the launcher and send to the launcher's failure queue, and nothing else
    statements = [entry for entry in helpers.policy_statements(deployed) if entry.owner == "JobScheduleRole"]
    grants = sorted((tuple(entry.actions), str(entry.resources)) for entry in statements if entry.allows)
    assert grants == [
        (("lambda:InvokeFunction",), str([{"Fn::GetAtt": ["LauncherFunction", "Arn"]}])),
        (("sqs:SendMessage",), str([{"Fn::GetAtt": ["LauncherFailureQueue", "Arn"]}])),
    ]
    # AND nothing in the deployed template grants more than it needs
    assert [
        problem for entry in helpers.policy_statements(deployed) for problem in helpers.statement_problems(entry)
    ] == []
    # AND no other role may invoke the launcher
    invoking = [
        entry.owner for entry in helpers.policy_statements(deployed) if "lambda:InvokeFunction" in entry.actions
    ]
    assert invoking == ["JobScheduleRole"]


def test_worker_reads_exactly_the_scheduled_object_and_nothing_else_widens(
    helpers: ModuleType, resolved: Resolved
) -> None:
    # GIVEN the template without and with a schedule
    def task_role_s3_grants(**parameters: str) -> set[tuple[str, str | None]]:
        statements = [
            entry for entry in helpers.policy_statements(resolved(**parameters)) if entry.owner == "WorkerTaskRole"
        ]
        assert helpers.s3_scope_problems(statements) == []
        return {
            (action, helpers.resource_text(resource))
            for entry in statements
            for action in entry.actions
            for resource in entry.resources
            if action.startswith("s3:")
        }

    without, with_schedule = task_role_s3_grants(), task_role_s3_grants(**SCHEDULE)

    # THEN the schedule adds reading that one key (any of its versions), and nothing else
    scheduled = helpers.S3_OBJECT_SCOPES["scheduled"]
    assert with_schedule - without == {("s3:GetObject", scheduled), ("s3:GetObjectVersion", scheduled)}
    assert without <= with_schedule
    # AND the key is the parameter itself, never a pattern: the key's AllowedPattern refuses '*' and '?'
    assert scheduled.endswith("/${ScheduleObjectKey}")


# --- the rules -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "broken"),
    [
        ({}, []),
        (SCHEDULE, []),
        ({"ScheduleExpression": "rate(1 day)"}, ["ScheduleNeedsObject"]),
        ({"ScheduleObjectKey": "schedules/nightly-etl.zip"}, ["ObjectNeedsSchedule"]),
        ({"ScheduleTimezone": "Europe/Berlin"}, []),
    ],
)
def test_schedule_rules_want_the_expression_and_the_key_together(
    helpers: ModuleType, raw_template: dict[str, Any], given: dict[str, str], broken: list[str]
) -> None:
    # GIVEN these parameters (the others at their defaults)
    values = helpers.parameter_values(raw_template, given)

    # WHEN the template's Rules are evaluated
    found = broken_rules(raw_template, values)

    # THEN exactly the expected rule is broken, and its message names both parameters
    assert [rule.rule for rule in found] == broken
    for rule in found:
        assert set(rule.parameters) == {"ScheduleExpression", "ScheduleObjectKey"}
        assert "ScheduleExpression" in rule.description
        assert "ScheduleObjectKey" in rule.description


def test_schedule_parameters_are_grouped_in_the_console(raw_template: dict[str, Any]) -> None:
    groups = raw_template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    schedule = [group["Parameters"] for group in groups if group["Label"]["default"].startswith("Schedule")]
    assert schedule == [["ScheduleExpression", "ScheduleTimezone", "ScheduleObjectKey"]]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(raw_template["Parameters"])


# --- cost ----------------------------------------------------------------------------------------------------------


def test_schedule_adds_only_the_schedule_and_its_role(resolved: Resolved) -> None:
    # GIVEN the template without and with a schedule
    without, with_schedule = resolved()["Resources"], resolved(**SCHEDULE)["Resources"]

    # THEN the schedule adds exactly the schedule (billed per invocation only) and its role (IAM is free): nothing
    # billed at rest, no alarm for lew.cost's at-rest estimate to count
    assert set(with_schedule) - set(without) == SCHEDULE_RESOURCES
    assert set(without) <= set(with_schedule)
    kinds = sorted(with_schedule[name]["Type"] for name in SCHEDULE_RESOURCES)
    assert kinds == ["AWS::IAM::Role", "AWS::Scheduler::Schedule"]
