"""Create the local stack's AWS resources in moto, named and configured from the template's parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lew import template as cfn
from lew.local.job_events import create_job_events
from lew.local.settings import (
    CONTAINER_NAME,
    LAUNCHER_ENV_FROM_PARAMETERS,
    WORKER_ENV_FROM_PARAMETERS,
    LocalSettings,
)
from lew.queues import create_work_queue, queue_arn

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

WORKER_IMAGE = "lew-worker:local"  # never pulled: the local ECS agent runs `python -m worker` instead
# Long enough for Lambda's retries of one event (a few seconds locally) to finish before redelivery.
INBOX_VISIBILITY_TIMEOUT = 120


@dataclass(frozen=True)
class LocalResources:
    """What the local stack created; the same facts a deployed stack's outputs give."""

    bucket: str
    queue_url: str
    dlq_url: str
    inbox_url: str
    launcher_failure_url: str
    cluster: str
    task_family: str
    task_definition_arn: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    launcher_environment: Mapping[str, str]
    worker_environment: Mapping[str, str]
    event_bus: str = ""  # job state-change events (lew/local/job_events.py)
    events_queue_url: str = ""  # a rule copies every job event here: what `lew events` reads


def create_resources(
    settings: LocalSettings, *, s3: S3Client, sqs: SQSClient, ecs: ECSClient, ec2: Any, events: Any
) -> LocalResources:
    """Create bucket, queues, notification, network, cluster and task definition; return their identifiers."""
    names = settings.names
    s3.create_bucket(Bucket=names.bucket)
    s3.put_bucket_encryption(
        Bucket=names.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    queue_url, dlq_url = create_work_queue(
        sqs,
        name=names.work_queue,
        dead_letter_name=names.dead_letter_queue,
        visibility_timeout=settings.int_parameter("VisibilityTimeout"),
        max_receive_count=settings.int_parameter("MaxReceiveCount"),
    )
    inbox_url = sqs.create_queue(
        QueueName=names.inbox_queue, Attributes={"VisibilityTimeout": str(INBOX_VISIBILITY_TIMEOUT)}
    )["QueueUrl"]
    launcher_failure_url = sqs.create_queue(QueueName=names.launcher_failure_queue)["QueueUrl"]
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket,
        NotificationConfiguration={"QueueConfigurations": notification_configurations(settings, inbox_url, sqs)},
    )

    event_bus, events_queue_url = create_job_events(events, sqs, stack_name=settings.stack_name)

    subnets, security_groups = default_network(ec2)
    ecs.create_cluster(clusterName=names.cluster)
    worker_environment = worker_env(settings, queue_url=queue_url, dlq_url=dlq_url, event_bus=event_bus)
    task_definition_arn = ecs.register_task_definition(
        family=names.task_family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu=settings.parameter("WorkerCpu"),
        memory=settings.parameter("WorkerMemory"),
        containerDefinitions=[
            {
                "name": CONTAINER_NAME,
                "image": WORKER_IMAGE,
                # moto's RunTask needs container-level memory; real Fargate takes it from the task.
                "memory": settings.int_parameter("WorkerMemory"),
                "essential": True,
                "stopTimeout": 120,
                "environment": [{"name": key, "value": value} for key, value in sorted(worker_environment.items())],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    resources = LocalResources(
        bucket=names.bucket,
        queue_url=queue_url,
        dlq_url=dlq_url,
        inbox_url=inbox_url,
        launcher_failure_url=launcher_failure_url,
        cluster=names.cluster,
        task_family=names.task_family,
        task_definition_arn=task_definition_arn,
        subnets=subnets,
        security_groups=security_groups,
        launcher_environment={},
        worker_environment=worker_environment,
        event_bus=event_bus,
        events_queue_url=events_queue_url,
    )
    return LocalResources(**{**resources.__dict__, "launcher_environment": launcher_env(settings, resources)})


def notification_configurations(settings: LocalSettings, inbox_url: str, sqs: SQSClient) -> list[Any]:
    """S3 → inbox notification filtered like the template's: the input prefix, and the suffix when only one is set.

    S3 takes one suffix rule per configuration; with several suffixes the launcher's own filter does the work.
    """
    suffixes = [suffix.strip() for suffix in settings.parameter("Suffixes").split(",") if suffix.strip()]
    rules = [{"Name": "prefix", "Value": settings.parameter("InputPrefix")}]
    if len(suffixes) == 1:
        rules.append({"Name": "suffix", "Value": suffixes[0]})
    return [
        {
            "Id": "lew-launcher",
            "QueueArn": queue_arn(sqs, inbox_url),
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": rules}},
        }
    ]


def default_network(ec2: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """moto's default VPC subnet and security group: RunTask validates both, and moto needs the VPC's DNS names."""
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    return (str(subnets[0]["SubnetId"]),), (str(groups[0]["GroupId"]),)


def _resolved(
    settings: LocalSettings,
    contract: Mapping[str, str],
    template_env: Mapping[str, Any],
    resources: Mapping[str, str],
) -> dict[str, str]:
    """Contract defaults, then whatever the template's block sets that resolves locally, then local resources."""
    pseudo = {
        "AWS::Region": settings.region,
        "AWS::AccountId": settings.account_id,
        "AWS::StackName": settings.stack_name,
    }
    environment = {
        name: settings.parameters[parameter] for name, parameter in contract.items() if parameter in settings.parameters
    }
    for name, raw in template_env.items():
        value = cfn.resolve_value(raw, settings.parameters, pseudo)
        if value is not None:
            environment[name] = value
    environment.update(resources)
    return environment


def worker_env(settings: LocalSettings, *, queue_url: str, dlq_url: str, event_bus: str = "") -> dict[str, str]:
    """The worker container's environment, as the template's task definition sets it, with local resources."""
    resources = {"QUEUE_URL": queue_url, "DLQ_URL": dlq_url, "AWS_REGION": settings.region}
    if event_bus:
        resources["EVENT_BUS_NAME"] = event_bus
    environment = _resolved(
        settings, WORKER_ENV_FROM_PARAMETERS, cfn.container_environment(settings.template, CONTAINER_NAME), resources
    )
    # As the template's HasProcessCommand and HasProcessParameters: an empty ProcessCommand or ProcessParameters
    # sets nothing, so that the worker's own PROCESS_COMMAND or PROCESS_PARAMETERS (the image's, or the local
    # environment's) is kept.
    for variable in ("PROCESS_COMMAND", "PROCESS_PARAMETERS"):
        if not environment.get(variable):
            environment.pop(variable, None)
    return environment


def launcher_env(settings: LocalSettings, resources: LocalResources) -> dict[str, str]:
    """The launcher function's environment, as the template sets it, pointed at the local resources."""
    return _resolved(
        settings,
        LAUNCHER_ENV_FROM_PARAMETERS,
        cfn.function_environment(settings.template),
        {
            "QUEUE_URL": resources.queue_url,
            "CLUSTER": resources.cluster,
            "TASK_DEFINITION": resources.task_definition_arn,
            "CONTAINER_NAME": CONTAINER_NAME,
            "SUBNETS": ",".join(resources.subnets),
            "SECURITY_GROUPS": ",".join(resources.security_groups),
            "AWS_REGION": settings.region,
            "EVENT_BUS_NAME": resources.event_bus,
        },
    )
