"""The template's worker parameters allow exactly what the worker accepts (one rule, checked from both sides)."""

from __future__ import annotations

from typing import Any

from worker.commands import TERM_GRACE_SECONDS
from worker.settings import ECS_STOP_TIMEOUT_SECONDS, MAX_STOP_GRACE_SECONDS, Settings

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/lew-work"


def test_stop_grace_bound_is_the_workers(raw_template: dict[str, Any]) -> None:
    # GIVEN the template's StopGraceSeconds, which becomes the task's STOP_GRACE_SECONDS
    parameter = raw_template["Parameters"]["StopGraceSeconds"]
    [container] = raw_template["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"]

    # THEN its maximum is the worker's, which leaves time to kill the processor and release before SIGKILL
    assert parameter["MaxValue"] == MAX_STOP_GRACE_SECONDS
    assert container["StopTimeout"] == ECS_STOP_TIMEOUT_SECONDS
    assert MAX_STOP_GRACE_SECONDS + TERM_GRACE_SECONDS < ECS_STOP_TIMEOUT_SECONDS
    assert Settings.from_env({"QUEUE_URL": QUEUE, "STOP_GRACE_SECONDS": str(parameter["MaxValue"])})
