"""template.yaml, translated offline by samtranslator: the resources, filters and settings issue 2 asks for."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

Resolved = Callable[..., dict[str, Any]]

# docs/ARCHITECTURE.md's parameter table: `lew local` reads these defaults, so they are a contract.
CONTRACT_DEFAULTS = {
    "InputPrefix": "incoming/",
    "ResultPrefix": "results/",
    "Suffixes": ".zip,.tar,.tar.gz,.tgz",
    "MaxWorkers": "4",
    "MessagesPerWorker": "5",
    "CapacityProvider": "FARGATE",
    "SpotFallbackSeconds": "900",
    "Subnets": "",
    "SecurityGroups": "",
    "AssignPublicIp": "ENABLED",
    "Processor": "povray",
    "VisibilityTimeout": "300",
    "MaxReceiveCount": "5",
    "JobTimeout": "3600",
    "StopGraceSeconds": "100",
    "IdlePolls": "2",
    "WaitTimeSeconds": "20",
    "ReceiveBatchSize": "1",
    "MaxArchiveBytes": str(5 * 1024**3),
    "MaxUnpackedBytes": str(20 * 1024**3),
    "MaxMembers": "10000",
    "ReconcileSchedule": "rate(1 minute)",
    "WorkerCpu": "1024",
    "WorkerMemory": "2048",
    "WorkerEphemeralStorage": "21",
    "WorkerImage": "",
    "LogRetentionDays": "30",
}
LAUNCHER_ENV = {
    "QUEUE_URL", "CLUSTER", "TASK_DEFINITION", "CONTAINER_NAME", "SUBNETS", "SECURITY_GROUPS", "ASSIGN_PUBLIC_IP",
    "SUFFIXES", "INPUT_PREFIX", "RESULT_PREFIX", "MAX_WORKERS", "MESSAGES_PER_WORKER", "CAPACITY_PROVIDER",
    "SPOT_FALLBACK_SECONDS",
    "EVENT_BUS_NAME",
}  # fmt: skip
WORKER_ENV = {
    "QUEUE_URL": {"Ref": "WorkQueue"},
    "DLQ_URL": {"Ref": "DeadLetterQueue"},
    "INPUT_PREFIX": "incoming/",
    "RESULT_PREFIX": "results/",
    "PROCESSOR": "povray",
    "VISIBILITY_TIMEOUT": "300",
    "JOB_TIMEOUT": "3600",
    "STOP_GRACE_SECONDS": "100",
    "IDLE_POLLS": "2",
    "WAIT_TIME_SECONDS": "20",
    "RECEIVE_BATCH_SIZE": "1",
    "MAX_ARCHIVE_BYTES": str(5 * 1024**3),
    "MAX_UNPACKED_BYTES": str(20 * 1024**3),
    "MAX_MEMBERS": "10000",
    "TMPDIR": "/tmp",
    "EVENT_BUS_NAME": {"Ref": "JobEventBus"},
}
REQUIRED_OUTPUTS = {
    "BucketName", "QueueUrl", "DlqUrl", "ClusterName", "TaskDefinitionArn", "RepositoryUri", "LogGroupName",
    "LauncherFunctionName", "InputPrefix", "ResultPrefix", "EventBusName", "EventBusArn",
}  # fmt: skip


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def test_template_sections_in_conventional_order(raw_template: dict[str, Any]) -> None:
    # GIVEN the SAM app templates' convention  THEN  the sections appear in that order
    order = ["Description", "Parameters", "Conditions", "Globals", "Resources", "Outputs"]
    assert [key for key in raw_template if key in order] == order


def test_parameters_have_the_contract_defaults(helpers: ModuleType, raw_template: dict[str, Any]) -> None:
    defaults = helpers.parameter_values(raw_template)
    assert {name: defaults.get(name) for name in CONTRACT_DEFAULTS} == CONTRACT_DEFAULTS


def test_every_parameter_and_output_is_described(raw_template: dict[str, Any]) -> None:
    undocumented = [name for name, spec in raw_template["Parameters"].items() if not spec.get("Description")]
    undocumented += [name for name, spec in raw_template["Outputs"].items() if not spec.get("Description")]
    assert undocumented == []


def test_deploy_docs_table_every_parameter(raw_template: dict[str, Any]) -> None:
    # GIVEN docs/deploy.md's parameter table (one row per parameter: | `Name` | default | meaning |)
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)

    # THEN it names every parameter of the template once, and no other
    assert sorted(rows) == sorted(raw_template["Parameters"])


def test_globals_set_runtime_tracing_and_powertools(raw_template: dict[str, Any]) -> None:
    function = raw_template["Globals"]["Function"]
    assert function["Runtime"] == "python3.12"
    assert function["Tracing"] == {"Ref": "Tracing"}
    assert function["Architectures"] == ["arm64"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= set(function["Environment"]["Variables"])


def test_bucket_is_encrypted_private_and_named_without_a_reference(resolved: Resolved) -> None:
    bucket = props(resolved(), "Bucket")
    rules = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    # A computed name, so policies can name the bucket without a Ref (no circular dependency).
    assert bucket["BucketName"] == {"Fn::Sub": "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"}


def test_bucket_policy_denies_requests_without_tls(resolved: Resolved) -> None:
    policy = props(resolved(), "BucketPolicy")
    assert policy["Bucket"] == {"Ref": "Bucket"}
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["Bucket", "Arn"]} in statement["Resource"]
    assert {"Fn::Sub": "${Bucket.Arn}/*"} in statement["Resource"]


def test_upload_notification_invokes_launcher_for_the_input_prefix(resolved: Resolved) -> None:
    # WHEN the default Suffixes (several) are deployed
    [config] = props(resolved(), "Bucket")["NotificationConfiguration"]["LambdaConfigurations"]
    # THEN every created object under the input prefix invokes the launcher, whose whitelist checks the suffix
    assert config["Function"] == {"Fn::GetAtt": ["LauncherFunction", "Arn"]}
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "incoming/"}]


@pytest.mark.parametrize(
    ("suffixes", "expected_suffix_rule"),
    [
        (".zip", [{"Name": "suffix", "Value": ".zip"}]),
        (".zip,.tgz", []),
        ("", []),
    ],
)
def test_upload_notification_filters_on_the_suffix_when_there_is_exactly_one(
    resolved: Resolved, suffixes: str, expected_suffix_rule: list[dict[str, str]]
) -> None:
    template = resolved(Suffixes=suffixes, InputPrefix="uploads/")
    [config] = props(template, "Bucket")["NotificationConfiguration"]["LambdaConfigurations"]
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}, *expected_suffix_rule]


def test_launcher_may_be_invoked_by_s3_of_this_account_only(resolved: Resolved) -> None:
    permission = props(resolved(), "LauncherFunctionUploadPermission")
    assert permission["Principal"] == "s3.amazonaws.com"
    assert permission["SourceAccount"] == "123456789012"


def test_queues_are_encrypted_and_work_redrives_to_dlq(resolved: Resolved) -> None:
    template = resolved(MaxReceiveCount="7", VisibilityTimeout="900")
    for queue in of_type(template, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    work = props(template, "WorkQueue")
    assert work["VisibilityTimeout"] == "900"
    assert work["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": "7",
    }


def test_dlq_outlives_the_work_queue(resolved: Resolved) -> None:
    # A message keeps its enqueue time when it moves to the DLQ, so the DLQ must keep messages longer.
    template = resolved()
    work = props(template, "WorkQueue")["MessageRetentionPeriod"]
    dlq = props(template, "DeadLetterQueue")["MessageRetentionPeriod"]
    assert dlq == 14 * 24 * 3600
    assert 4 * 24 * 3600 <= work < dlq


def test_queues_deny_requests_without_tls(resolved: Resolved) -> None:
    template = resolved()
    policy = props(template, "QueuesTlsOnlyPolicy")
    queues = set(of_type(template, "AWS::SQS::Queue"))
    assert {ref["Ref"] for ref in policy["Queues"]} == queues
    [statement] = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "sqs:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {resource["Fn::GetAtt"][0] for resource in statement["Resource"]} == queues


def test_launcher_environment_is_exactly_the_contract(resolved: Resolved) -> None:
    function = props(resolved(), "LauncherFunction")
    variables = function["Environment"]["Variables"]
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert set(variables) - powertools - {"POWERTOOLS_TRACE_DISABLED"} == LAUNCHER_ENV
    assert function["Handler"] == "lew_launcher.app.handler"
    assert variables["CONTAINER_NAME"] == "worker"
    assert variables["TASK_DEFINITION"] == {"Ref": "WorkerTaskDefinition"}
    assert (variables["MAX_WORKERS"], variables["MESSAGES_PER_WORKER"], variables["SUFFIXES"]) == (
        "4",
        "5",
        ".zip,.tar,.tar.gz,.tgz",
    )


def test_launcher_uses_the_created_network_when_no_subnets_are_given(resolved: Resolved) -> None:
    template = resolved()
    variables = props(template, "LauncherFunction")["Environment"]["Variables"]
    assert variables["SUBNETS"] == {"Fn::Join": [",", [{"Ref": "PublicSubnetA"}, {"Ref": "PublicSubnetB"}]]}
    assert variables["SECURITY_GROUPS"] == {"Ref": "WorkerSecurityGroup"}
    assert variables["ASSIGN_PUBLIC_IP"] == "ENABLED"
    assert {"Vpc", "PublicSubnetA", "PublicSubnetB", "S3Endpoint", "DefaultRoute"} <= set(template["Resources"])
    assert of_type(template, "AWS::EC2::NatGateway") == {}  # a NAT gateway costs money at rest


def test_launcher_uses_given_network_and_creates_none(resolved: Resolved) -> None:
    template = resolved(Subnets="subnet-1,subnet-2", SecurityGroups="sg-1", AssignPublicIp="DISABLED")
    variables = props(template, "LauncherFunction")["Environment"]["Variables"]
    assert (variables["SUBNETS"], variables["SECURITY_GROUPS"], variables["ASSIGN_PUBLIC_IP"]) == (
        "subnet-1,subnet-2",
        "sg-1",
        "DISABLED",
    )
    assert not [name for name, res in template["Resources"].items() if res["Type"].startswith("AWS::EC2::")]


def test_created_security_group_allows_no_ingress_and_only_https_out(resolved: Resolved) -> None:
    group = props(resolved(), "WorkerSecurityGroup")
    assert "SecurityGroupIngress" not in group
    assert [(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in group["SecurityGroupEgress"]] == [
        ("tcp", 443, 443)
    ]


@pytest.mark.parametrize(("concurrency", "expected"), [("1", "1"), ("3", "3"), ("0", None)])
def test_launcher_reserved_concurrency_bounds_overshoot(
    resolved: Resolved, concurrency: str, expected: str | None
) -> None:
    function = props(resolved(LauncherConcurrency=concurrency), "LauncherFunction")
    assert function.get("ReservedConcurrentExecutions") == expected


def test_launcher_async_retries_are_bounded_and_failures_kept(resolved: Resolved) -> None:
    config = props(resolved(), "LauncherFunctionEventInvokeConfig")
    assert config["FunctionName"] == {"Ref": "LauncherFunction"}
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["LauncherFailureQueue", "Arn"]}


def test_reconcile_schedule_rate_is_the_parameter(resolved: Resolved) -> None:
    template = resolved(ReconcileSchedule="rate(5 minutes)")
    [(rule_id, rule)] = [
        (name, rule)
        for name, rule in of_type(template, "AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["LauncherFunction", "Arn"]}
    permission = props(template, f"{rule_id}Permission")
    assert permission["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def test_cluster_offers_fargate_and_fargate_spot(resolved: Resolved) -> None:
    cluster = props(resolved(), "Cluster")
    assert set(cluster["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}


def test_task_definition_runs_a_hardened_fargate_worker(resolved: Resolved) -> None:
    template = resolved(WorkerCpu="2048", WorkerMemory="4096", WorkerEphemeralStorage="50")
    task = props(template, "WorkerTaskDefinition")
    assert task["Family"] == {"Fn::Sub": "${AWS::StackName}-worker"}
    assert task["NetworkMode"] == "awsvpc"
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert (task["Cpu"], task["Memory"], task["EphemeralStorage"]["SizeInGiB"]) == ("2048", "4096", "50")
    assert task["TaskRoleArn"] == {"Fn::GetAtt": ["WorkerTaskRole", "Arn"]}
    assert task["ExecutionRoleArn"] == {"Fn::GetAtt": ["WorkerExecutionRole", "Arn"]}
    [container] = task["ContainerDefinitions"]
    assert container["Name"] == "worker"
    assert container["StopTimeout"] == 120
    assert container["User"] not in {"0", "root"} and not container["User"].startswith(("0:", "root"))
    assert container["ReadonlyRootFilesystem"] is True
    # The only writable place: a bind mount on the task's ephemeral storage, where TMPDIR points.
    [mount] = container["MountPoints"]
    assert mount["SourceVolume"] in {volume["Name"] for volume in task["Volumes"]}
    environment = {entry["Name"]: entry["Value"] for entry in container["Environment"]}
    assert mount["ContainerPath"] == environment["TMPDIR"]
    logs = container["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs"
    assert logs["Options"]["awslogs-group"] == {"Ref": "WorkerLogGroup"}


def test_worker_environment_is_the_contract(resolved: Resolved) -> None:
    [container] = props(resolved(), "WorkerTaskDefinition")["ContainerDefinitions"]
    environment = {entry["Name"]: entry["Value"] for entry in container["Environment"]}
    assert {name: environment.get(name) for name in WORKER_ENV} == WORKER_ENV


def test_receive_batch_size_is_bounded_by_sqs_and_reaches_the_worker(
    raw_template: dict[str, Any], resolved: Resolved
) -> None:
    parameter = raw_template["Parameters"]["ReceiveBatchSize"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (1, 10)
    [container] = props(resolved(ReceiveBatchSize="10"), "WorkerTaskDefinition")["ContainerDefinitions"]
    assert {entry["Name"]: entry["Value"] for entry in container["Environment"]}["RECEIVE_BATCH_SIZE"] == "10"


def test_worker_image_defaults_to_the_stack_repository(resolved: Resolved) -> None:
    def image(**parameters: str) -> Any:
        [container] = props(resolved(**parameters), "WorkerTaskDefinition")["ContainerDefinitions"]
        return container["Image"]

    assert image() == {"Fn::Sub": "${Repository.RepositoryUri}:latest"}
    assert image(WorkerImage="example.com/worker@sha256:abc") == "example.com/worker@sha256:abc"


def test_stop_grace_ends_before_ecs_kills_the_task(raw_template: dict[str, Any]) -> None:
    [container] = raw_template["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"]
    grace = raw_template["Parameters"]["StopGraceSeconds"]
    assert grace["Default"] < grace["MaxValue"] < container["StopTimeout"]


def test_log_groups_have_retention(resolved: Resolved) -> None:
    groups = of_type(resolved(LogRetentionDays="7"), "AWS::Logs::LogGroup")
    assert set(groups) == {"WorkerLogGroup", "LauncherLogGroup"}
    assert {group["Properties"]["RetentionInDays"] for group in groups.values()} == {"7"}


def test_launcher_log_group_is_the_one_lambda_writes_to(resolved: Resolved) -> None:
    template = resolved()
    name = props(template, "LauncherLogGroup")["LogGroupName"]
    assert name == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-launcher"}
    assert props(template, "LauncherFunction")["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-launcher"}
    assert "LauncherLogGroup" in template["Resources"]["LauncherFunction"]["DependsOn"]


def test_repository_scans_on_push_and_expires_images(resolved: Resolved) -> None:
    repository = props(resolved(), "Repository")
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    rules = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    selections = [rule["selection"] for rule in rules]
    assert all(rule["action"] == {"type": "expire"} for rule in rules)
    assert any(selection["tagStatus"] == "untagged" for selection in selections)
    assert any(selection["countType"] == "imageCountMoreThan" for selection in selections)


def test_alarms_watch_the_dlq_and_the_oldest_message(resolved: Resolved) -> None:
    template = resolved(OldestMessageAlarmSeconds="900", AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:ops")
    alarms = {name: alarm["Properties"] for name, alarm in of_type(template, "AWS::CloudWatch::Alarm").items()}
    dlq = alarms["DeadLetterQueueAlarm"]
    assert (dlq["MetricName"], dlq["ComparisonOperator"], dlq["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "GreaterThanThreshold",
        0,
    )
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    oldest = alarms["OldestMessageAlarm"]
    assert (oldest["MetricName"], oldest["Threshold"]) == ("ApproximateAgeOfOldestMessage", "900")
    assert oldest["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["WorkQueue", "QueueName"]}}]
    assert all(alarm["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:ops"] for alarm in alarms.values())


def test_alarms_have_no_actions_without_a_topic(resolved: Resolved) -> None:
    alarms = of_type(resolved(), "AWS::CloudWatch::Alarm").values()
    assert all("AlarmActions" not in alarm["Properties"] for alarm in alarms)


def test_outputs_cover_what_operators_need(resolved: Resolved) -> None:
    outputs = resolved()["Outputs"]
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert outputs["BucketName"]["Value"] == {"Ref": "Bucket"}
    assert outputs["QueueUrl"]["Value"] == {"Ref": "WorkQueue"}
    assert outputs["DlqUrl"]["Value"] == {"Ref": "DeadLetterQueue"}
    assert outputs["TaskDefinitionArn"]["Value"] == {"Ref": "WorkerTaskDefinition"}
    assert outputs["RepositoryUri"]["Value"] == {"Fn::GetAtt": ["Repository", "RepositoryUri"]}


XRAY_POLICY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"


def _launcher_tracing(helpers: ModuleType, raw_template: dict[str, Any], tracing: str | None) -> tuple[Any, Any, Any]:
    """The launcher's TracingConfig, managed policies and POWERTOOLS_TRACE_DISABLED as deployed with Tracing."""
    overrides = {} if tracing is None else {"Tracing": tracing}
    deployed = helpers.resolve(helpers.translate(raw_template, overrides), overrides)
    function = props(deployed, "LauncherFunction")
    policies = props(deployed, "LauncherFunctionRole")["ManagedPolicyArns"]
    return function.get("TracingConfig"), policies, function["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"]


def test_launcher_tracing_is_off_by_default_with_no_xray_permission(
    helpers: ModuleType, raw_template: dict[str, Any]
) -> None:
    # GIVEN the default parameters
    # WHEN the template is deployed
    tracing_config, policies, trace_disabled = _launcher_tracing(helpers, raw_template, None)
    # THEN Lambda does not trace, the role may not write to X-Ray, and the launcher never loads the X-Ray SDK
    assert raw_template["Parameters"]["Tracing"]["Default"] == "Disabled"
    assert tracing_config is None
    assert XRAY_POLICY not in policies
    assert trace_disabled == "true"


def test_launcher_tracing_active_traces_with_xray_permission(helpers: ModuleType, raw_template: dict[str, Any]) -> None:
    # GIVEN Tracing=Active
    tracing_config, policies, trace_disabled = _launcher_tracing(helpers, raw_template, "Active")
    # THEN Lambda traces actively, the role may write to X-Ray, and Powertools' Tracer records the subsegments
    assert tracing_config == {"Mode": "Active"}
    assert XRAY_POLICY in policies
    assert trace_disabled == "false"


def test_process_command_reaches_the_worker_only_when_set(resolved: Resolved) -> None:
    # GIVEN the template deployed without and with a ProcessCommand
    def environment(**parameters: str) -> dict[str, Any]:
        [container] = props(resolved(**parameters), "WorkerTaskDefinition")["ContainerDefinitions"]
        return {entry["Name"]: entry["Value"] for entry in container["Environment"]}

    # THEN an empty one leaves the image's own PROCESS_COMMAND alone, and a set one is passed as it is
    assert "PROCESS_COMMAND" not in environment()
    command = "python /app/etl.py --config {input_dir}/etl.toml"
    assert environment(Processor="command", ProcessCommand=command)["PROCESS_COMMAND"] == command


def test_process_parameters_reach_the_worker_only_when_set(resolved: Resolved) -> None:
    # GIVEN the template deployed without and with ProcessParameters
    def environment(**parameters: str) -> dict[str, Any]:
        [container] = props(resolved(**parameters), "WorkerTaskDefinition")["ContainerDefinitions"]
        return {entry["Name"]: entry["Value"] for entry in container["Environment"]}

    # THEN an empty one leaves the image's own PROCESS_PARAMETERS alone, and a set one is passed as it is
    assert "PROCESS_PARAMETERS" not in environment()
    declared = "threshold:int:0..100, mode:choice:fast|slow"
    assert environment(Processor="command", ProcessParameters=declared)["PROCESS_PARAMETERS"] == declared
