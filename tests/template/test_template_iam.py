"""Least privilege in the translated template, and proof that the checkers catch what they look for."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

TASK_ROLES = {"WorkerTaskRole", "WorkerExecutionRole"}


def statement(helpers: ModuleType, **body: Any) -> Any:
    return helpers.Statement("TestRole", "test", {"Effect": "Allow", "Sid": "Test", **body})


# --- the checkers themselves -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"Action": "*", "Resource": "arn:aws:sqs:us-east-1:123456789012:q"},
        {"Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Action": ["sqs:ReceiveMessage", "sqs:SendMessage*"], "Resource": {"Fn::GetAtt": ["Q", "Arn"]}},
        {"Action": "sqs:SendMessage", "Resource": "*"},
        {"Action": "sqs:SendMessage", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "x"}}},
        {"Action": "ecs:ListTasks", "Resource": "*"},
        {
            "Action": ["ecs:ListTasks", "ecs:StopTask"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"ecs:cluster": "c"}},
        },
        {"Action": "sqs:SendMessage", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:x:*"}},
        {"NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
    ],
)
def test_statement_checker_rejects_broad_grants(helpers: ModuleType, body: dict[str, Any]) -> None:
    assert helpers.statement_problems(statement(helpers, **body)) != []


@pytest.mark.parametrize(
    "body",
    [
        {"Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"], "Resource": {"Fn::GetAtt": ["Q", "Arn"]}},
        {"Action": "ecs:ListTasks", "Resource": "*", "Condition": {"ArnEquals": {"ecs:cluster": "c"}}},
        {"Action": "s3:GetObject", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/${InputPrefix}*"}},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
    ],
)
def test_statement_checker_accepts_scoped_grants(helpers: ModuleType, body: dict[str, Any]) -> None:
    assert helpers.statement_problems(statement(helpers, **body)) == []


def test_pass_role_checker_rejects_other_roles_and_missing_condition(helpers: ModuleType) -> None:
    roles = [{"Fn::GetAtt": [name, "Arn"]} for name in sorted(TASK_ROLES)]
    condition = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    good = statement(helpers, Action="iam:PassRole", Resource=roles, Condition=condition)
    assert helpers.pass_role_problems(good, TASK_ROLES) == []
    for bad in (
        statement(helpers, Action="iam:PassRole", Resource="*", Condition=condition),
        statement(
            helpers, Action="iam:PassRole", Resource=[*roles, {"Fn::GetAtt": ["Admin", "Arn"]}], Condition=condition
        ),
        statement(helpers, Action="iam:PassRole", Resource=roles),
        statement(
            helpers, Action="iam:PassRole", Resource=roles, Condition={"StringEquals": {"iam:PassedToService": "*"}}
        ),
    ):
        assert helpers.pass_role_problems(bad, TASK_ROLES) != []


def test_s3_scope_checker_rejects_the_whole_bucket(helpers: ModuleType) -> None:
    bucket = helpers.S3_BUCKET_ARN
    for bad in (
        statement(helpers, Action="s3:GetObject", Resource={"Fn::Sub": f"{bucket}/*"}),
        statement(helpers, Action="s3:PutObject", Resource={"Fn::Sub": helpers.S3_OBJECT_SCOPES["read"]}),
        statement(helpers, Action="s3:ListBucket", Resource={"Fn::Sub": bucket}),
        statement(helpers, Action="s3:DeleteObject", Resource={"Fn::Sub": f"{bucket}/${{ResultPrefix}}"}),
        # deleting results (outputs, manifests) is never granted; only the claims folder may be deleted from
        statement(helpers, Action="s3:DeleteObject", Resource={"Fn::Sub": helpers.S3_OBJECT_SCOPES["results"]}),
        statement(helpers, Action="s3:DeleteObject", Resource={"Fn::Sub": f"{bucket}/${{ResultPrefix}}*.json"}),
        statement(helpers, Action="s3:DeleteObject", Resource={"Fn::Sub": f"{bucket}/${{ResultPrefix}}.lew-claims/*"}),
        statement(helpers, Action="s3:PutObject", Resource={"Fn::Sub": helpers.S3_OBJECT_SCOPES["claims"]}),
        statement(helpers, Action="s3:DeleteObjectVersion", Resource={"Fn::Sub": helpers.S3_OBJECT_SCOPES["claims"]}),
        statement(helpers, Action="s3:PutObjectAcl", Resource={"Fn::Sub": helpers.S3_OBJECT_SCOPES["results"]}),
    ):
        assert helpers.s3_scope_problems([bad]) != []


def test_s3_scope_checker_accepts_claim_deletes(helpers: ModuleType) -> None:
    good = statement(helpers, Action="s3:DeleteObject", Resource={"Fn::Sub": helpers.S3_OBJECT_SCOPES["claims"]})
    assert helpers.s3_scope_problems([good]) == []


# --- the template ------------------------------------------------------------------------------------------------


def test_no_wildcard_actions_or_needless_star_resources(
    helpers: ModuleType, translated_template: dict[str, Any]
) -> None:
    statements = list(helpers.policy_statements(translated_template))
    assert len(statements) >= 10  # the walk found the policies (launcher, task and execution roles, resource policies)
    problems = [problem for entry in statements for problem in helpers.statement_problems(entry)]
    assert problems == []


def test_only_known_aws_managed_policies_are_attached(helpers: ModuleType, translated_template: dict[str, Any]) -> None:
    attached = {
        arn
        for resource in translated_template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for arn in resource["Properties"].get("ManagedPolicyArns", [])
    }
    assert attached <= helpers.ALLOWED_MANAGED_POLICIES


def test_pass_role_only_for_the_task_roles_to_ecs_tasks(
    helpers: ModuleType, translated_template: dict[str, Any]
) -> None:
    statements = list(helpers.policy_statements(translated_template))
    passing = [entry for entry in statements if entry.allows and "iam:PassRole" in entry.actions]
    assert [entry.owner for entry in passing] == ["LauncherFunctionRole"]
    assert [problem for entry in statements for problem in helpers.pass_role_problems(entry, TASK_ROLES)] == []


def test_task_role_s3_access_is_limited_to_the_prefixes(
    helpers: ModuleType, translated_template: dict[str, Any]
) -> None:
    statements = [entry for entry in helpers.policy_statements(translated_template) if entry.owner == "WorkerTaskRole"]
    assert helpers.s3_scope_problems(statements) == []
    granted = {
        (action, helpers.resource_text(resource))
        for entry in statements
        for action in entry.actions
        for resource in entry.resources
        if action.startswith("s3:")
    }
    read, results = helpers.S3_OBJECT_SCOPES["read"], helpers.S3_OBJECT_SCOPES["results"]
    claims, cancels = helpers.S3_OBJECT_SCOPES["claims"], helpers.S3_OBJECT_SCOPES["cancels"]
    assert {("s3:GetObject", read), ("s3:GetObject", results), ("s3:PutObject", results)} <= granted
    assert ("s3:ListBucket", helpers.S3_BUCKET_ARN) in granted
    # the in-flight claims and the cancel markers it honoured are the only objects the worker may delete
    deletes = {(action, scope) for action, scope in granted if "Delete" in action}
    assert deletes == {("s3:DeleteObject", claims), ("s3:DeleteObject", cancels)}


def test_task_role_consumes_the_work_queue_and_feeds_the_dlq(
    helpers: ModuleType, translated_template: dict[str, Any]
) -> None:
    statements = [entry for entry in helpers.policy_statements(translated_template) if entry.owner == "WorkerTaskRole"]
    sqs = {
        (action, resource["Fn::GetAtt"][0])
        for entry in statements
        for action in entry.actions
        for resource in entry.resources
        if action.startswith("sqs:")
    }
    work = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}
    assert sqs == {(action, "WorkQueue") for action in work} | {("sqs:SendMessage", "DeadLetterQueue")}


def test_task_roles_trust_only_ecs_tasks(translated_template: dict[str, Any]) -> None:
    for role in TASK_ROLES:
        trust = translated_template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [entry["Principal"] for entry in trust] == [{"Service": "ecs-tasks.amazonaws.com"}]
        assert all(
            entry["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"} for entry in trust
        )


def test_launcher_starts_only_worker_tasks_in_its_cluster(
    helpers: ModuleType, translated_template: dict[str, Any]
) -> None:
    statements = {
        entry.body["Sid"]: entry.body
        for entry in helpers.policy_statements(translated_template)
        if entry.owner == "LauncherFunctionRole" and "Sid" in entry.body
    }
    run = statements["StartWorkers"]
    assert run["Action"] == "ecs:RunTask"
    family = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${AWS::StackName}-worker:*"
    assert run["Resource"] == {"Fn::Sub": family}
    for sid in ("StartWorkers", "CountWorkers", "DescribeWorkers"):
        assert statements[sid]["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["Cluster", "Arn"]}}}
    enqueue = statements["EnqueueAndReadBacklog"]
    assert set(enqueue["Action"]) == {"sqs:SendMessage", "sqs:GetQueueAttributes"}
    assert enqueue["Resource"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}


# --- job events ----------------------------------------------------------------------------------------------------

DEFAULT_BUS_ARN = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}


@pytest.mark.parametrize(
    ("event_bus", "bus_arn"),
    [("stack", {"Fn::GetAtt": ["JobEventBus", "Arn"]}), ("default", DEFAULT_BUS_ARN)],
)
def test_only_the_worker_and_launcher_put_events_and_only_on_the_jobs_bus_as_lew(
    helpers: ModuleType, resolved: Any, event_bus: str, bus_arn: Any
) -> None:
    # GIVEN the template deployed with either bus
    template = resolved(EventBus=event_bus)

    # THEN the task role and the launcher may put events on exactly that bus, as source "lew" only; nobody else
    putting = [
        entry
        for entry in helpers.policy_statements(template)
        if entry.allows and any(action.startswith("events:") for action in entry.actions)
    ]
    assert sorted((entry.owner, tuple(entry.actions), str(entry.resources)) for entry in putting) == [
        ("LauncherFunctionRole", ("events:PutEvents",), str([bus_arn])),
        ("WorkerTaskRole", ("events:PutEvents",), str([bus_arn])),
    ]
    assert all(entry.body["Condition"] == {"StringEquals": {"events:source": "lew"}} for entry in putting)
    assert ("JobEventBus" in template["Resources"]) is (event_bus == "stack")


def test_worker_and_launcher_are_told_the_bus(resolved: Any) -> None:
    for event_bus, expected in (("stack", {"Ref": "JobEventBus"}), ("default", "default")):
        resources = resolved(EventBus=event_bus)["Resources"]
        container = resources["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
        environment = {item["Name"]: item["Value"] for item in container["Environment"]}
        assert environment["EVENT_BUS_NAME"] == expected
        launcher = resources["LauncherFunction"]["Properties"]["Environment"]["Variables"]
        assert launcher["EVENT_BUS_NAME"] == expected


def test_notification_email_wires_an_encrypted_topic_and_a_rule_for_failed_and_dead_lettered_jobs(
    resolved: Any,
) -> None:
    # GIVEN no NotificationEmail, then one
    quiet = resolved()["Resources"]
    resources = resolved(NotificationEmail="ops@example.com")["Resources"]

    # THEN nothing is created without it
    assert not {"NotificationKey", "NotificationTopic", "NotificationTopicPolicy", "FailedJobsRule"} & set(quiet)
    # AND with it, the rule sends failed and dead-lettered jobs of the stack's bus to the topic
    rule = resources["FailedJobsRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "JobEventBus"}
    assert rule["EventPattern"] == {
        "source": ["lew"],
        "detail-type": ["lew Job State Change"],
        "detail": {"status": ["failed", "dead-lettered"]},
    }
    assert [target["Arn"] for target in rule["Targets"]] == [{"Ref": "NotificationTopic"}]
    topic = resources["NotificationTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "NotificationKey"}
    assert topic["Subscription"] == [{"Protocol": "email", "Endpoint": "ops@example.com"}]
    assert resources["NotificationKey"]["Properties"]["EnableKeyRotation"] is True
    # AND only that rule may publish to the topic
    (statement,) = resources["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["FailedJobsRule", "Arn"]}}}
