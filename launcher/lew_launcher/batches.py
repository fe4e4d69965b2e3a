"""The AWS APIs' batch limits, and slicing a sequence into batches that respect them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

SQS_BATCH_SIZE: Final = 10  # SendMessageBatch takes at most 10 entries
RUN_TASK_MAX_COUNT: Final = 10  # RunTask starts at most 10 tasks per call
DESCRIBE_TASKS_MAX: Final = 100  # DescribeTasks takes at most 100 ARNs

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
