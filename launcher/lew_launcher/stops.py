"""Which stopped ECS tasks failed to start: one rule for the launcher and for `lew status` (standard library only)."""

from __future__ import annotations

from typing import Final

TASK_FAILED_TO_START: Final = "TaskFailedToStart"
# Stops that someone chose: a task stopped by hand (or by a service) before it ran did not fail to start.
DELIBERATE_STOP_CODES: Final = frozenset({"UserInitiated", "ServiceSchedulerInitiated"})


def failed_to_start(stop_code: str | None, started: bool) -> bool:
    """ECS says the task failed to start, or it stopped without ever running and nobody chose to stop it."""
    if stop_code in DELIBERATE_STOP_CODES:
        return False
    return stop_code == TASK_FAILED_TO_START or not started
