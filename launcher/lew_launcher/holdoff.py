"""Holding back worker starts while tasks keep failing to start, so that a permanent fault cannot cause a RunTask storm.

Each task that stops without ever running invokes the launcher, whose scaling step replaces it. A fault that every
task meets (a missing image, an unreachable registry, a bad subnet) would then start a task, lose it, start another,
as fast as ECS fails them. The streak counts the distinct tasks that failed to start since a task last started;
from the second one on, starts wait ``min(300, 15 x 2^(n-2))`` seconds after the last failure (15 s, 30 s, 60 s...
then every 5 minutes), whichever event or schedule asks for them. A task seen running with a ``startedAt`` after
the last failure ends the streak. The streak lives in the execution environment (with a reserved concurrency of 1,
one warm environment serves every invocation; a cold start forgets it and allows one more round of starts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

HOLD_BASE_SECONDS: Final = 15.0
HOLD_MAX_SECONDS: Final = 300.0


def hold_seconds(failures: int) -> float:
    """How long starts wait after the last of ``failures`` start failures in a row: none for a single one."""
    if failures < 2:
        return 0.0
    return min(HOLD_MAX_SECONDS, HOLD_BASE_SECONDS * 2.0 ** (failures - 2))


@dataclass
class StartFailureStreak:
    """The tasks that failed to start since a task last started (wall-clock times, to compare with ECS's)."""

    clock: Callable[[], float] = time.time
    _failed: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return len(self._failed)

    def record(self, task_arn: str) -> int:
        """Count one task's start failure (a repeated event of the same task counts once); return the streak."""
        self._failed.setdefault(task_arn, self.clock())
        return len(self._failed)

    def saw_start(self, started_at: datetime | None) -> None:
        """A task that started after the last failure shows that starts work again: the streak ends."""
        if started_at is not None and self._failed and started_at.timestamp() > max(self._failed.values()):
            self._failed.clear()

    def remaining_hold(self) -> float:
        """Seconds that starts must still wait (0 when they may go ahead)."""
        if not self._failed:
            return 0.0
        waited = self.clock() - max(self._failed.values())
        return max(0.0, hold_seconds(len(self._failed)) - waited)

    def clear(self) -> None:
        self._failed.clear()
