"""A moto stack for the launcher (queue, cluster, Fargate task definition, network) and spies on its ECS client."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.moto_api import state_manager

from lew_launcher import app
from lew_launcher.keys import decode_key
from lew_launcher.observability import logger
from lew_launcher.retry import RetryPolicy

FAMILY = "lew-worker"


@pytest.fixture(autouse=True)
def fresh_launcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets new clients (inside its own moto mock), an empty launch memory, and retries that don't sleep."""
    app.aws_clients.cache_clear()
    app.LAUNCH_MEMORY.clear()
    monkeypatch.setattr(app, "DEFAULT_RETRY", RetryPolicy(attempts=4, sleep=lambda _seconds: None))
    yield
    app.aws_clients.cache_clear()
    app.LAUNCH_MEMORY.clear()


@pytest.fixture
def tasks_stay_running() -> Iterator[None]:
    """moto moves a task one state further at every DescribeTasks; real tasks keep running while they work."""
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    yield
    state_manager.unset_transition(model_name="ecs::task")


@dataclass
class Stack:
    queue_url: str
    cluster: str
    task_definition_arn: str
    subnet: str
    security_group: str
    env: dict[str, str] = field(default_factory=dict)

    def messages(self) -> list[dict[str, Any]]:
        """Receive (and leave in flight) every message on the queue; return their decoded bodies."""
        sqs = boto3.client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300)
            if not batch.get("Messages"):
                return bodies
            bodies.extend(json.loads(message["Body"]) for message in batch["Messages"])

    def keys(self) -> list[str]:
        """The decoded object keys of every message on the queue, the way the worker decodes them."""
        return [decode_key(record["s3"]["object"]["key"]) for body in self.messages() for record in body["Records"]]

    def enqueue_directly(self, count: int) -> None:
        """Put work on the queue the way a bucket notifying SQS directly (or a redelivery) would."""
        sqs = boto3.client("sqs")
        for index in range(count):
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"Records": [{"n": index}]}))

    def running_tasks(self) -> list[str]:
        ecs = boto3.client("ecs")
        return ecs.list_tasks(cluster=self.cluster, family=FAMILY, desiredStatus="RUNNING")["taskArns"]


@pytest.fixture
def stack(aws: None, tasks_stay_running: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The resources the launcher uses, and its environment variables set as the template sets them."""
    sqs, ecs, ec2 = boto3.client("sqs"), boto3.client("ecs"), boto3.client("ec2")
    queue_url = sqs.create_queue(QueueName="lew-work")["QueueUrl"]
    cluster = ecs.create_cluster(clusterName="lew")["cluster"]["clusterName"]
    task_definition_arn = ecs.register_task_definition(
        family=FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        # moto needs a container-level memory to place a task; the real template sets it on the task.
        containerDefinitions=[{"name": "worker", "image": "lew-worker:latest", "memory": 2048, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    # moto's default VPC has DNS hostnames on, which its RunTask needs for the task's network interface.
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    security_group = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [subnet["VpcId"]]}]
    )["SecurityGroups"][0]["GroupId"]
    env = {
        "QUEUE_URL": queue_url,
        "CLUSTER": cluster,
        "TASK_DEFINITION": task_definition_arn,
        "CONTAINER_NAME": "worker",
        "SUBNETS": subnet["SubnetId"],
        # moto's RunTask needs securityGroups; real ECS falls back to the VPC's default group when it is left out.
        "SECURITY_GROUPS": security_group,
        "ASSIGN_PUBLIC_IP": "ENABLED",
        "SUFFIXES": ".zip,.tar,.tar.gz,.tgz",
        "INPUT_PREFIX": "incoming/",
        "RESULT_PREFIX": "results/",
        "MAX_WORKERS": "4",
        "MESSAGES_PER_WORKER": "5",
        "CAPACITY_PROVIDER": "FARGATE",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Stack(queue_url, cluster, task_definition_arn, subnet["SubnetId"], security_group, env)


@dataclass
class RunTaskSpy:
    """Every RunTask request the launcher's ECS client makes, and an optional scripted answer for each."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[Callable[[dict[str, Any]], tuple[int, dict[str, Any]] | None]] = field(default_factory=list)

    @property
    def counts(self) -> list[int]:
        return [request["count"] for request in self.requests]

    def record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    def answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self.answers:
            return None  # let moto run the task
        scripted = self.answers.pop(0)(json.loads(params["body"]))
        if scripted is None:
            return None
        status, parsed = scripted
        return AWSResponse("https://ecs.us-east-1.amazonaws.com/", status, {}, None), parsed


@pytest.fixture
def run_task_spy(stack: Stack) -> RunTaskSpy:
    """Hook the launcher's own (cached) ECS client: record RunTask parameters, inject failures when scripted."""
    spy = RunTaskSpy()
    _, ecs = app.aws_clients()
    ecs.meta.events.register("before-parameter-build.ecs.RunTask", spy.record)
    ecs.meta.events.register("before-call.ecs.RunTask", spy.answer)
    return spy


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """The launcher's JSON log lines (its handler keeps the stdout it was created with, so capsys can't see them)."""
    stream = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    monkeypatch.setattr(handler, "stream", stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def emf_documents(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The CloudWatch embedded-metric documents Powertools printed (to stdout, which capsys sees) so far."""

    def documents() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        return [line for line in lines if "_aws" in line]

    return documents
