"""Tasks that fail to start: the EventBridge rule, the launcher's permission, the Spot fallback IAM and the alarm."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from moto.events.models import EventPattern  # EventBridge's matching rules, as a library: no server, no network

Resolved = Callable[..., dict[str, Any]]
LoadEvent = Callable[[str], dict[str, Any]]
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/lew"
RULE = "LauncherFunctionTaskStartFailure"


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def deployed_pattern(helpers: ModuleType, value: Any) -> Any:
    """The rule's pattern with the stack's values: the cluster's ARN, and every ${...} of the pseudo parameters."""
    if isinstance(value, list):
        return [deployed_pattern(helpers, item) for item in value]
    if not isinstance(value, dict):
        return value
    if value == {"Fn::GetAtt": ["Cluster", "Arn"]}:
        return CLUSTER_ARN
    if set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]*)\}", lambda match: helpers.PSEUDO_PARAMETERS[match[1]], value["Fn::Sub"])
    return {key: deployed_pattern(helpers, item) for key, item in value.items()}


@pytest.fixture
def matches(helpers: ModuleType, resolved: Resolved) -> Callable[[dict[str, Any]], bool]:
    pattern = deployed_pattern(helpers, props(resolved(), RULE)["EventPattern"])
    matcher = EventPattern.load(json.dumps(pattern))
    return lambda event: bool(matcher.matches_event(event))


def variant(load_event: LoadEvent, **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("ecs-task-failed-to-start"))
    event["detail"] |= detail
    event["detail"] = {name: value for name, value in event["detail"].items() if value is not None}
    return event


def test_task_start_failure_rule_invokes_the_launcher_with_the_stack_cluster_and_family(resolved: Resolved) -> None:
    template = resolved()
    rule = props(template, RULE)
    assert rule["Targets"] == [{"Arn": {"Fn::GetAtt": ["LauncherFunction", "Arn"]}, "Id": f"{RULE}LambdaTarget"}]
    detail = rule["EventPattern"]["detail"]
    assert (rule["EventPattern"]["source"], rule["EventPattern"]["detail-type"]) == (
        ["aws.ecs"],
        ["ECS Task State Change"],
    )
    assert detail["clusterArn"] == [{"Fn::GetAtt": ["Cluster", "Arn"]}]
    family = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${AWS::StackName}-worker:"
    assert detail["taskDefinitionArn"] == [{"prefix": {"Fn::Sub": family}}]
    assert props(template, "WorkerTaskDefinition")["Family"] == {"Fn::Sub": "${AWS::StackName}-worker"}
    assert detail["lastStatus"] == ["STOPPED"]


def test_launcher_may_be_invoked_by_that_rule_only(resolved: Resolved) -> None:
    permission = props(resolved(), f"{RULE}Permission")
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["FunctionName"] == {"Ref": "LauncherFunction"}
    assert permission["SourceArn"] == {"Fn::GetAtt": [RULE, "Arn"]}


@pytest.mark.parametrize(
    "detail",
    [
        {},  # the sample: TaskFailedToStart, CannotPullContainerError, no startedAt
        {"stopCode": "TaskFailedToStart", "startedAt": "2026-11-21T19:31:20Z"},
        {"stopCode": "SpotInterruption", "capacityProviderName": "FARGATE_SPOT"},
        {"stopCode": "EssentialContainerExited", "stoppedReason": "CannotStartContainerError: ..."},
        {"taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/lew-worker:42"},
    ],
    ids=["sample", "failed-to-start-after-starting", "spot-before-running", "never-started", "other-revision"],
)
def test_task_start_failure_rule_matches_worker_tasks_that_never_ran(
    matches: Callable[[dict[str, Any]], bool], load_event: LoadEvent, detail: dict[str, Any]
) -> None:
    assert matches(variant(load_event, **detail))


@pytest.mark.parametrize(
    "detail",
    [
        {"stopCode": "EssentialContainerExited", "startedAt": "2026-11-21T19:31:20Z"},  # a worker that ran and exited
        {"stopCode": "SpotInterruption", "startedAt": "2026-11-21T19:31:20Z"},  # the worker releases its job itself
        {"stopCode": "UserInitiated"},  # stopped by hand before it ran
        {"lastStatus": "RUNNING", "desiredStatus": "RUNNING", "stopCode": None},
        {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/other"},
        {"taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/lew-worker-old:1"},
        {"taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/other:1"},
    ],
    ids=["ran", "spot-while-running", "user", "running", "other-cluster", "similar-family", "other-family"],
)
def test_task_start_failure_rule_ignores_everything_else(
    matches: Callable[[dict[str, Any]], bool], load_event: LoadEvent, detail: dict[str, Any]
) -> None:
    assert not matches(variant(load_event, **detail))


def _spot_statements(helpers: ModuleType, translated_template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    deployed = helpers.resolve(translated_template, parameters)
    return {
        entry.body["Sid"]: entry
        for entry in helpers.policy_statements(deployed)
        if entry.owner == "LauncherFunctionRole" and entry.body.get("Sid", "").endswith("SpotFallback")
    }


def test_spot_fallback_may_read_and_set_only_its_tag_on_the_stack_cluster(
    helpers: ModuleType, translated_template: dict[str, Any]
) -> None:
    # GIVEN FARGATE_SPOT with the default cool-down
    statements = _spot_statements(helpers, translated_template, CapacityProvider="FARGATE_SPOT")

    # THEN the launcher may read the cluster's tags and set the one fallback tag, on that cluster only
    read, record = statements["ReadSpotFallback"], statements["RecordSpotFallback"]
    assert set(read.actions) == {"ecs:DescribeClusters", "ecs:ListTagsForResource"}
    assert record.actions == ["ecs:TagResource"]
    assert read.resources == record.resources == [{"Fn::GetAtt": ["Cluster", "Arn"]}]
    assert record.body["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": ["lew:spot-fallback-until"]}}
    assert [problem for entry in statements.values() for problem in helpers.statement_problems(entry)] == []


@pytest.mark.parametrize("parameters", [{}, {"CapacityProvider": "FARGATE_SPOT", "SpotFallbackSeconds": "0"}])
def test_no_spot_fallback_permission_without_a_spot_fallback(
    helpers: ModuleType, translated_template: dict[str, Any], parameters: dict[str, str]
) -> None:
    assert _spot_statements(helpers, translated_template, **parameters) == {}


def test_spot_fallback_seconds_reaches_the_launcher(resolved: Resolved) -> None:
    variables = props(resolved(SpotFallbackSeconds="300"), "LauncherFunction")["Environment"]["Variables"]
    assert variables["SPOT_FALLBACK_SECONDS"] == "300"


def test_task_start_failure_alarm_watches_the_launcher_metric_of_this_cluster(
    raw_template: dict[str, Any], resolved: Resolved
) -> None:
    # GIVEN the launcher's metric namespace and service name (Globals)
    variables = raw_template["Globals"]["Function"]["Environment"]["Variables"]
    # WHEN the stack is deployed with an alarm topic
    alarm = props(resolved(AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:ops"), "TaskStartFailureAlarm")
    # THEN the alarm sums TaskStartFailures of this stack's cluster, and fires on repeated failures, not on one
    assert (alarm["Namespace"], alarm["MetricName"]) == (variables["POWERTOOLS_METRICS_NAMESPACE"], "TaskStartFailures")
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]},
        {"Name": "Cluster", "Value": {"Ref": "Cluster"}},
    ]
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Sum",
        "GreaterThanOrEqualToThreshold",
        3,
    )
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == ["arn:aws:sns:us-east-1:123456789012:ops"]
