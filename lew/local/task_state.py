"""What the ECS agent reports about a task and moto does not: stop codes, start and stop times, and state events.

moto's StopTask keeps only the reason: its tasks have no ``stopCode``, ``startedAt`` or ``stoppedAt``, and moto
sends no ``Task State Change`` events. The local ECS agent fills both gaps, as Fargate's agent would:

* ``MotoTaskNotes`` writes the three fields on moto's own task model (the server runs in this process), so that
  DescribeTasks, the launcher and ``lew status`` see what they would see on ECS;
* ``task_state_change_event`` builds ECS's event for a stopped task, and ``EventBridgePublisher`` puts it on moto's
  default event bus, where ``create_task_stopped_rule`` has made the template's own rule (its pattern read from
  template.yaml) forward matching events to the launcher's inbox: the rule's filter is exercised, not assumed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from lew import template as cfn

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

RULE_EVENT: Final = "TaskStartFailure"  # the launcher's EventBridgeRule event in template.yaml
DETAIL_TYPE: Final = "ECS Task State Change"
CONTAINER_EXITED: Final = "EssentialContainerExited"


class MotoTaskNotes:
    """Sets ``stopCode``, ``startedAt`` and ``stoppedAt`` on moto's in-process model of the cluster's tasks."""

    def __init__(self, account_id: str, region: str, cluster: str) -> None:
        self._account_id, self._region, self._cluster = account_id, region, cluster

    def _task(self, task_arn: str) -> Any:
        from moto.ecs.models import ecs_backends  # noqa: PLC0415  # moto's server, in this process

        return ecs_backends[self._account_id][self._region].tasks.get(self._cluster, {}).get(task_arn)

    def started(self, task_arn: str, at: datetime) -> None:
        task = self._task(task_arn)
        if task is not None:
            task.started_at = at

    def stopped(self, task_arn: str, stop_code: str, at: datetime) -> None:
        task = self._task(task_arn)
        if task is not None:
            task.stop_code, task.stopped_at = stop_code, at


def task_state_change_event(
    task: Mapping[str, Any],
    *,
    stop_code: str,
    reason: str,
    started_at: datetime | None,
    stopped_at: datetime,
    region: str,
    account_id: str,
) -> dict[str, Any]:
    """ECS's ``Task State Change`` event of a stopped task, from its DescribeTasks form (docs/local.md)."""

    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    containers = [
        {
            "containerArn": container.get("containerArn", ""),
            "name": container.get("name", ""),
            "lastStatus": "STOPPED",
            "taskArn": task["taskArn"],
            **({"reason": reason} if started_at is None else {"exitCode": container.get("exitCode", 0)}),
        }
        for container in task.get("containers", [])
    ]
    detail: dict[str, Any] = {
        "clusterArn": task["clusterArn"],
        "taskArn": task["taskArn"],
        "taskDefinitionArn": task["taskDefinitionArn"],
        "group": task.get("group", ""),
        "launchType": task.get("launchType", "FARGATE"),
        "capacityProviderName": task.get("capacityProviderName") or "FARGATE",
        "startedBy": task.get("startedBy", ""),
        "containers": containers,
        "desiredStatus": "STOPPED",
        "lastStatus": "STOPPED",
        "stopCode": stop_code,
        "stoppedReason": reason,
        "stoppedAt": iso(stopped_at),
        "version": 3,
    }
    if started_at is not None:  # a task that never ran has no startedAt: the rule tells failed starts by that
        detail["startedAt"] = iso(started_at)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.ecs",
        "account": account_id,
        "time": stopped_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [task["taskArn"]],
        "detail": detail,
    }


class EventBridgePublisher:
    """Puts events on the default bus of the local stack's EventBridge, as AWS services do."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def __call__(self, event: Mapping[str, Any]) -> None:
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": list(event.get("resources", [])),
        }
        answer = self._events.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused the {event['detail-type']} event: {answer.get('Entries')}")


def resolved_pattern(
    template: Mapping[str, Any], *, cluster_arn: str, pseudo: Mapping[str, str]
) -> dict[str, Any] | None:
    """The template's task-start-failure rule pattern with this stack's cluster ARN and pseudo parameters.

    None when the template has no such rule (then, as deployed, no stopped task reaches the launcher).
    """
    functions = cfn.resources_of_type(template, "AWS::Serverless::Function").values()
    rules = [function["Properties"].get("Events", {}).get(RULE_EVENT) for function in functions]
    rule = next((rule for rule in rules if rule), None)
    if rule is None:
        return None
    pattern = rule["Properties"]["Pattern"]

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if value == {"Fn::GetAtt": ["Cluster", "Arn"]}:
            return cluster_arn
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]*)\}", lambda match: pseudo[match[1]], value["Fn::Sub"])
        return {key: resolve(item) for key, item in value.items()}

    resolved: dict[str, Any] = resolve(pattern)
    return resolved


def create_task_stopped_rule(
    events: Any, sqs: SQSClient, *, name: str, pattern: Mapping[str, Any], inbox_url: str
) -> None:
    """The template's rule on the local default bus, delivering to the launcher's inbox (as its Lambda target)."""
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "launcher-inbox", "Arn": inbox_arn}])
