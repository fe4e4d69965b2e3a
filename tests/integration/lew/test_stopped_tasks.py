"""`lew status`'s stopped tasks against moto: the family's tasks stopped in the last hour, failed starts first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto.ecs.models import ecs_backends  # moto keeps no stopCode or times: the test sets them as ECS would

from lew.stopped_tasks import print_stopped_tasks, stopped_tasks, stopped_tasks_report

REGION = "us-east-1"
NOW = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def start_task(ecs: Any, family: str) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    task = ecs.run_task(
        cluster="lew",
        taskDefinition=family,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet["SubnetId"]], "securityGroups": [group["GroupId"]]}
        },
    )["tasks"][0]
    return str(task["taskArn"])


def stop(ecs: Any, arn: str, *, code: str, reason: str, ago: timedelta, ran: bool) -> None:
    ecs.stop_task(cluster="lew", task=arn, reason=reason)
    task = ecs_backends["123456789012"][REGION].tasks["lew"][arn]
    task.stop_code, task.stopped_at = code, NOW - ago
    if ran:
        task.started_at = NOW - ago - timedelta(minutes=1)


def test_stopped_tasks_lists_the_family_stopped_within_the_hour_failed_starts_first(aws: None) -> None:
    # GIVEN the worker family and another family in the cluster
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="lew")
    for family in ("lew-worker", "other"):
        ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            containerDefinitions=[{"name": "worker", "image": "x", "memory": 512}],
        )
    exited, failed, old, running = (start_task(ecs, "lew-worker") for _ in range(4))
    other = start_task(ecs, "other")
    # WHEN tasks stop: one exited after running, one failed to start, one long ago; one keeps running
    stop(
        ecs,
        exited,
        code="EssentialContainerExited",
        reason="Essential container in task exited",
        ago=timedelta(minutes=5),
        ran=True,
    )
    stop(
        ecs,
        failed,
        code="TaskFailedToStart",
        reason="CannotPullContainerError: not found",
        ago=timedelta(minutes=10),
        ran=False,
    )
    stop(ecs, old, code="TaskFailedToStart", reason="old", ago=timedelta(hours=2), ran=False)
    stop(ecs, other, code="TaskFailedToStart", reason="not ours", ago=timedelta(minutes=1), ran=False)

    # THEN only the worker family's tasks stopped within the hour are listed, the failed start first
    found = stopped_tasks(ecs, "lew", "lew-worker", now=NOW)
    assert [task.task_arn for task in found] == [failed, exited]
    assert running not in [task.task_arn for task in found]
    assert (found[0].stop_code, found[0].started, found[0].reason) == (
        "TaskFailedToStart",
        False,
        "CannotPullContainerError: not found",
    )
    assert (found[1].stop_code, found[1].started, found[1].failed_to_start) == ("EssentialContainerExited", True, False)


def test_stopped_tasks_report_shows_an_active_spot_fallback_only(aws: None) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    arn = ecs.create_cluster(clusterName="lew")["cluster"]["clusterArn"]
    assert stopped_tasks_report(ecs, "lew", "lew-worker").spot_fallback_until is None

    until = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "lew:spot-fallback-until", "value": until}])
    report = stopped_tasks_report(ecs, "lew", "lew-worker")
    assert report.spot_fallback_until is not None
    assert report.spot_fallback_until.strftime("%Y-%m-%dT%H:%M:%SZ") == until

    ecs.tag_resource(resourceArn=arn, tags=[{"key": "lew:spot-fallback-until", "value": "2020-01-01T00:00:00Z"}])
    assert stopped_tasks_report(ecs, "lew", "lew-worker").spot_fallback_until is None


def test_report_shows_the_launchers_hold_on_starts_after_two_failed_starts_until_a_task_starts(
    aws: None, capsys: Any
) -> None:
    # GIVEN the worker family, and two of its tasks that failed to start a minute apart, after one that ran
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="lew")
    ecs.register_task_definition(
        family="lew-worker",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        containerDefinitions=[{"name": "worker", "image": "x", "memory": 512}],
    )
    now = datetime.now(UTC)
    ran, first, second = (start_task(ecs, "lew-worker") for _ in range(3))
    backend = ecs_backends["123456789012"][REGION].tasks["lew"]
    for arn, ago, code in ((ran, 30, "EssentialContainerExited"), (first, 20, "TaskFailedToStart"), (second, 10, "")):
        ecs.stop_task(cluster="lew", task=arn, reason="CannotPullContainerError: not found")
        backend[arn].stop_code, backend[arn].stopped_at = code or "TaskFailedToStart", now - timedelta(seconds=ago)
        backend[arn].started_at = now - timedelta(minutes=5) if arn == ran else None

    # WHEN `lew status` reads the stopped tasks
    report = stopped_tasks_report(ecs, "lew", "lew-worker")
    print_stopped_tasks(report, limit=10)

    # THEN it says that the launcher holds starts back: 2 failures in a row, 15 s after the last
    assert report.start_hold is not None
    assert (report.start_hold.failures, report.start_hold.seconds) == (2, 15.0)
    assert abs(report.start_hold.last_failure - backend[second].stopped_at) < timedelta(milliseconds=1)
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("starts held back: 2 worker tasks in a row failed to start (the last at ")
    assert "fix the cause below" in line

    # WHEN a task then starts and runs
    started = start_task(ecs, "lew-worker")
    backend[started].started_at = None
    assert stopped_tasks_report(ecs, "lew", "lew-worker").start_hold is not None  # still starting: no start yet
    backend[started].started_at = now

    # THEN the streak is over: no hold
    assert stopped_tasks_report(ecs, "lew", "lew-worker").start_hold is None
