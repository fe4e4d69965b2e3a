"""`lew status`'s reading of the launcher's hold on starts (holdoff's rule applied to the tasks ECS shows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lew.stopped_tasks import StartHold, StoppedTask, describe_start_hold, start_hold

NOW = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def task(*, failed: bool, stopped_ago: float, started_ago: float | None = None) -> StoppedTask:
    return StoppedTask(
        task_arn=f"arn:aws:ecs:us-east-1:1:task/lew/{stopped_ago}",
        stop_code="TaskFailedToStart" if failed else "EssentialContainerExited",
        reason="CannotPullContainerError",
        started=started_ago is not None,
        stopped_at=NOW - timedelta(seconds=stopped_ago),
        capacity_provider=None,
        started_at=None if started_ago is None else NOW - timedelta(seconds=started_ago),
    )


def test_start_hold_follows_the_launchers_streak_rule() -> None:
    # GIVEN a task that ran, then three that failed to start (10, 20, 40 s ago)
    tasks = [task(failed=False, stopped_ago=100, started_ago=400)] + [
        task(failed=True, stopped_ago=ago) for ago in (40, 20, 10)
    ]

    # THEN starts are held 30 s after the last failure (15 s x 2^(3-2)), as the launcher holds them
    assert start_hold(tasks, []) == StartHold(3, NOW - timedelta(seconds=10), 30.0)
    # AND a single failure holds nothing; a task that started after the failures ends the streak
    assert start_hold(tasks[:2], []) is None
    assert start_hold(tasks, [NOW - timedelta(seconds=5)]) is None
    # AND a start between the failures counts only those after it
    assert start_hold(tasks, [NOW - timedelta(seconds=30)]) == StartHold(2, NOW - timedelta(seconds=10), 15.0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (NOW, "so the launcher waits until 17:00:30Z, 30 s from now; each further failure doubles the wait"),
        (NOW + timedelta(minutes=1), "so the launcher waits 30 s, over since 17:00:30Z: the next upload or reconcile"),
    ],
)
def test_describe_start_hold_says_how_long_and_why_in_one_line(now: datetime, expected: str) -> None:
    line = describe_start_hold(StartHold(3, NOW, 30.0), now)

    assert line.startswith("starts held back: 3 worker tasks in a row failed to start (the last at 17:00:00Z), ")
    assert expected in line
    assert "the launcher keeps its count in memory, and a cold start forgets it" in line
    assert "\n" not in line
