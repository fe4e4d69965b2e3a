"""Run ids: the one shape the worker accepts, the real time each names, and what a run's command is told."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.runs import Run, run_environment, run_from_block, run_time, scheduled_time_of


@pytest.mark.parametrize(
    ("run", "moment", "scheduled"),
    [
        ("20261130T030000Z", datetime(2026, 11, 30, 3, 0, tzinfo=UTC), "2026-11-30T03:00:00Z"),
        ("20261130T030000.123Z", datetime(2026, 11, 30, 3, 0, 0, 123000, tzinfo=UTC), "2026-11-30T03:00:00.123Z"),
        ("20240229T235959Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), "2024-02-29T23:59:59Z"),
    ],
)
def test_run_time_and_scheduled_time_undo_the_run_id(run: str, moment: datetime, scheduled: str) -> None:
    assert run_time(run) == moment
    assert scheduled_time_of(run) == scheduled


@pytest.mark.parametrize("run", ["20261130T990000Z", "20261330T030000Z", "20250229T000000Z", "x", "20261130T030000"])
def test_run_time_refuses_what_names_no_real_time(run: str) -> None:
    with pytest.raises(ValueError, match=repr(run)):
        run_time(run)
    with pytest.raises(ValueError, match=r"^lew\.run "):
        run_from_block({"run": run})


def test_run_environment_tells_a_run_its_id_and_time_and_an_upload_nothing() -> None:
    assert run_environment(Run("20261130T030000Z", "2026-11-30T03:00:00Z")) == {
        "LEW_RUN_ID": "20261130T030000Z",
        "LEW_SCHEDULED_TIME": "2026-11-30T03:00:00Z",
    }
    assert run_environment(None) == {}
