"""The local stack's --fail-task-starts option, its ECS event, and `lew status`'s stopped tasks: no AWS."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from lew import cli
from lew.errors import LewError
from lew.local.chaos import (
    INJECTED,
    StartFailureInjector,
    StartFailures,
    add_fail_task_starts_option,
    start_failures_from_args,
)
from lew.local.settings import build_settings
from lew.local.task_state import task_state_change_event
from lew.stopped_tasks import StoppedTask, StoppedTasksReport, print_stopped_tasks, stopped_task

TASK = {
    "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/lew-local/abc",
    "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/lew-local",
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/lew-local-worker:1",
    "group": "family:lew-local-worker",
    "containers": [{"name": "worker", "containerArn": "arn:container", "exitCode": 0}],
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0.3", (0.3, "TaskFailedToStart")),
        ("1:SpotInterruption", (1.0, "SpotInterruption")),
        ("0:TaskFailedToStart:ResourceInitializationError: no ENI", (0.0, "TaskFailedToStart")),
    ],
)
def test_start_failures_parse_share_stop_code_and_reason(spec: str, expected: tuple[float, str]) -> None:
    failures = StartFailures.parse(spec)
    assert (failures.share, failures.stop_code) == expected
    assert failures.reason.endswith(INJECTED)


def test_start_failures_keep_a_given_reason_with_its_colons() -> None:
    failures = StartFailures.parse("0.5:TaskFailedToStart:ResourceInitializationError: unable to pull secrets")
    assert failures.reason == f"ResourceInitializationError: unable to pull secrets {INJECTED}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lots", "the share must be a number from 0 to 1"),
        ("1.5", "the share must be from 0 to 1, got 1.5"),
        ("0.3:Bogus", "unknown stop code 'Bogus'; ECS's are TaskFailedToStart"),
    ],
)
def test_start_failures_refuse_a_bad_spec_in_one_line(spec: str, message: str) -> None:
    with pytest.raises(LewError, match=message):
        StartFailures.parse(spec)


def test_injector_fails_every_start_at_one_none_at_zero_and_repeats_with_a_seed() -> None:
    assert all(StartFailureInjector(StartFailures.parse("1")).should_fail() for _ in range(50))
    assert not any(StartFailureInjector(StartFailures.parse("0")).should_fail() for _ in range(50))
    first = StartFailureInjector(StartFailures.parse("0.3", seed=7))
    second = StartFailureInjector(StartFailures.parse("0.3", seed=7))
    draws = [first.should_fail() for _ in range(200)]
    assert draws == [second.should_fail() for _ in range(200)]
    assert 30 < sum(draws) < 90


def test_fail_task_starts_option_reads_the_environment_and_names_a_bad_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the environment variables
    monkeypatch.setenv("LEW_FAIL_TASK_STARTS", "1:SpotInterruption")
    monkeypatch.setenv("LEW_FAIL_TASK_STARTS_SEED", "4")
    parser = argparse.ArgumentParser()
    add_fail_task_starts_option(parser)
    # THEN they are the options' defaults
    failures = start_failures_from_args(parser.parse_args([]))
    assert failures is not None
    assert (failures.share, failures.stop_code, failures.seed) == (1.0, "SpotInterruption", 4)
    assert start_failures_from_args(argparse.Namespace(), environ={}) is None
    # AND a bad value is one argparse error line naming the option
    with pytest.raises(SystemExit):
        parser.parse_args(["--fail-task-starts", "2"])
    assert capsys.readouterr().err.endswith(
        "error: argument --fail-task-starts: '2': the share must be from 0 to 1, got 2\n"
    )


@pytest.mark.parametrize(
    ("variables", "options", "line"),
    [
        ({"LEW_FAIL_TASK_STARTS": "2"}, [], "LEW_FAIL_TASK_STARTS='2': the share must be from 0 to 1, got 2"),
        ({"LEW_FAIL_TASK_STARTS": "0.3:Bogus"}, [], "LEW_FAIL_TASK_STARTS='0.3:Bogus': unknown stop code 'Bogus'"),
        (
            {"LEW_FAIL_TASK_STARTS": "1", "LEW_FAIL_TASK_STARTS_SEED": "x"},
            [],
            "LEW_FAIL_TASK_STARTS_SEED='x': the seed must be a whole number",
        ),
        ({"LEW_FAIL_TASK_STARTS_SEED": "x"}, ["--fail-task-starts", "1"], "LEW_FAIL_TASK_STARTS_SEED='x': the seed"),
    ],
)
def test_lew_local_up_names_the_environment_variable_a_bad_value_came_from(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    options: list[str],
    line: str,
) -> None:
    # GIVEN a bad value in an environment variable that stands in for a chaos option
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    # WHEN `lew local up` runs without (or with) the options
    code = cli.main(["local", "up", "--processor", "inventory", *options])

    # THEN one line names the variable, not the option, before any stack starts
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"lew: error: {line}")
    assert "--fail-task-starts" not in err and err.count("\n") == 1


def test_an_option_wins_over_a_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEW_FAIL_TASK_STARTS", "lots")
    monkeypatch.setenv("LEW_FAIL_TASK_STARTS_SEED", "x")
    parser = argparse.ArgumentParser()
    add_fail_task_starts_option(parser)

    args = parser.parse_args(["--fail-task-starts", "0.5", "--fail-task-starts-seed", "3"])

    failures = start_failures_from_args(args)

    assert failures is not None and (failures.share, failures.seed) == (0.5, 3)


def test_lew_local_up_names_the_option_once_for_a_bad_share(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN `lew local up` is given a share above 1
    with pytest.raises(SystemExit) as exited:
        cli.main(["local", "up", "--fail-task-starts", "2"])

    # THEN one line names the option once, then the value and what is wrong
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "lew local up: error: --fail-task-starts: '2': the share must be from 0 to 1, got 2 "
        "(see `lew local up --help`)\n"
    )


def test_task_state_change_event_of_a_task_that_never_ran_has_no_started_at() -> None:
    stopped_at = datetime(2026, 11, 30, 17, 0, 1, tzinfo=UTC)
    event = task_state_change_event(
        TASK,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: not found",
        started_at=None,
        stopped_at=stopped_at,
        region="us-east-1",
        account_id="123456789012",
    )
    assert (event["source"], event["detail-type"], event["time"]) == (
        "aws.ecs",
        "ECS Task State Change",
        "2026-11-30T17:00:01Z",
    )
    detail = event["detail"]
    assert "startedAt" not in detail
    assert (detail["lastStatus"], detail["stopCode"], detail["stoppedAt"]) == (
        "STOPPED",
        "TaskFailedToStart",
        "2026-11-30T17:00:01.000Z",
    )
    assert detail["containers"][0]["reason"] == "CannotPullContainerError: not found"
    ran = task_state_change_event(
        TASK,
        stop_code="EssentialContainerExited",
        reason="exit 0",
        started_at=stopped_at,
        stopped_at=stopped_at,
        region="us-east-1",
        account_id="123456789012",
    )
    assert ran["detail"]["startedAt"] == "2026-11-30T17:00:01.000Z"
    assert ran["detail"]["containers"][0]["exitCode"] == 0


def test_stopped_task_reads_describe_tasks_defensively() -> None:
    never_ran = stopped_task(
        TASK
        | {
            "stopCode": "TaskFailedToStart",
            "stoppedReason": "Task failed to start",
            "containers": [{"name": "worker", "reason": "CannotPullContainerError: not found", "exitCode": None}],
        }
    )
    assert never_ran.reason == "Task failed to start; worker: CannotPullContainerError: not found"
    assert (never_ran.started, never_ran.failed_to_start, never_ran.task_id) == (False, True, "abc")
    ran = stopped_task(TASK | {"stopCode": "EssentialContainerExited", "startedAt": datetime.now(UTC)})
    assert (ran.reason, ran.failed_to_start) == ("worker: exit 0", False)
    bare = stopped_task({"taskArn": "arn:aws:ecs:r:1:task/c/x"})
    assert (bare.stop_code, bare.reason, bare.stopped_at) == (None, "no reason given", None)


def test_print_stopped_tasks_shows_the_fallback_the_table_and_what_was_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tasks = [
        StoppedTask(f"arn:aws:ecs:r:1:task/c/t{n}", "TaskFailedToStart", "CannotPullContainerError", False, None, None)
        for n in range(3)
    ]
    report = StoppedTasksReport(tasks, datetime(2026, 11, 30, 17, 15, tzinfo=UTC))

    print_stopped_tasks(report, limit=2)

    out = capsys.readouterr().out
    assert "Spot fallback: workers start on FARGATE until 17:15:00Z" in out
    assert "worker tasks stopped in the last hour: 3, 3 failed to start" in out
    assert "t0" in out and "t1" in out and "t2" not in out
    assert "... and 1 more (--limit 3 shows them)" in out
    print_stopped_tasks(StoppedTasksReport([], None), limit=2)
    assert capsys.readouterr().out == "worker tasks stopped in the last hour: none\n"


def test_build_settings_shows_injected_start_failures_among_the_local_differences() -> None:
    settings = build_settings(processor="inventory", task_start_failures=StartFailures.parse("0.3:SpotInterruption"))

    (override,) = [item for item in settings.overrides if item.name == "task starts"]
    assert (override.template_value, override.local_value) == ("none fail", "30% fail with SpotInterruption")
