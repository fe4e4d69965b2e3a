"""Bounded retries with exponential backoff and full jitter, for SendMessageBatch entries and RunTask."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; ``sleep`` is injectable so tests run fast."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 4.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random  # jitter spreads retries; it needs no cryptographic randomness

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the given (0-based) failed attempt."""
        return self.jitter() * min(self.max_delay, self.base_delay * 2.0**attempt)


DEFAULT_RETRY = RetryPolicy()
