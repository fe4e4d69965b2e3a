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
    claims = helpers.S3_OBJECT_SCOPES["claims"]
    assert {("s3:GetObject", read), ("s3:GetObject", results), ("s3:PutObject", results)} <= granted
    assert ("s3:ListBucket", helpers.S3_BUCKET_ARN) in granted
    # the in-flight claims are the only objects the worker may delete
    assert {(action, scope) for action, scope in granted if "Delete" in action} == {("s3:DeleteObject", claims)}


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
