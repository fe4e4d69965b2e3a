"""The lazy tracer: Powertools' Tracer (and the X-Ray SDK) only when tracing is on, created at the first call."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lew_launcher.observability import LazyTracer, tracing_enabled

LAUNCHER_ROOT = Path(__file__).resolve().parents[3] / "launcher"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),  # sam local invoke
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, False),  # outside Lambda there is no X-Ray daemon
        ({}, False),
    ],
)
def test_tracing_enabled_follows_powertools_rule(environ: dict[str, str], expected: bool) -> None:
    # GIVEN an environment; WHEN asked; THEN tracing is on only in Lambda and not switched off
    assert tracing_enabled(environ) is expected


def test_tracing_enabled_refuses_a_word_that_is_not_true_or_false() -> None:
    with pytest.raises(ValueError, match="invalid truth value"):
        tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "maybe"})


@dataclass
class FakeTracer:
    """Records what a Powertools Tracer would trace."""

    traced: list[str] = field(default_factory=list)

    def capture_method(self, capture_response: bool = True) -> Any:
        return self._wrap("method", capture_response)

    def capture_lambda_handler(self, lambda_handler: Any, capture_response: bool = True) -> Any:
        return self._wrap("handler", capture_response)(lambda_handler)

    def _wrap(self, kind: str, capture_response: bool) -> Any:
        def decorate(function: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                self.traced.append(f"{kind} {function.__name__} capture_response={capture_response}")
                return function(*args, **kwargs)

            return call

        return decorate


def test_lazy_tracer_off_calls_the_function_and_creates_no_tracer() -> None:
    # GIVEN tracing off
    created: list[FakeTracer] = []

    def factory() -> Any:
        created.append(FakeTracer())
        return created[-1]

    lazy = LazyTracer(enabled=lambda: False, factory=factory)

    @lazy.capture_method(capture_response=False)
    def add(a: int, b: int) -> int:
        return a + b

    # WHEN the decorated function is called
    # THEN it runs as it is, and no Tracer was ever created
    assert add(2, 3) == 5
    assert lazy.get() is None
    assert created == []


def test_lazy_tracer_on_creates_one_tracer_at_the_first_call_and_traces_every_call() -> None:
    # GIVEN tracing on, and a decorated method and handler
    asked: list[bool] = []
    fake = FakeTracer()

    def enabled() -> bool:
        asked.append(True)
        return True

    lazy = LazyTracer(enabled=enabled, factory=lambda: fake)

    @lazy.capture_method(capture_response=False)
    def step(value: str) -> str:
        return value.upper()

    @lazy.capture_lambda_handler(capture_response=False)
    def handler(event: dict[str, Any], context: object) -> str:
        return step(event["value"])

    # THEN nothing is decided at decoration (import) time
    assert asked == []
    # WHEN the handler is invoked twice
    results = [handler({"value": "a"}, None), handler({"value": "b"}, None)]
    # THEN the environment was asked once, and every call went through the tracer
    assert results == ["A", "B"]
    assert asked == [True]
    assert (
        fake.traced
        == [
            "handler handler capture_response=False",
            "method step capture_response=False",
        ]
        * 2
    )


def test_lazy_tracer_reset_decides_again_like_a_new_execution_environment() -> None:
    # GIVEN a tracer that was off
    answers = iter([False, True])
    fake = FakeTracer()
    lazy = LazyTracer(enabled=lambda: next(answers), factory=lambda: fake)

    @lazy.capture_method()
    def work() -> int:
        return 1

    work()
    assert fake.traced == []
    # WHEN it is reset and tracing is now on
    lazy.reset()
    work()
    # THEN the next call is traced
    assert fake.traced == ["method work capture_response=True"]


def _in_a_fresh_interpreter(code: str, **environ: str) -> str:
    """Run `code` with launcher/ on the path (as in the Lambda bundle) and Lambda-like variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    env |= {"PYTHONPATH": str(LAUNCHER_ROOT), "AWS_LAMBDA_FUNCTION_NAME": "lew-launcher", **environ}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


CHECK = (
    "import sys; import lew_launcher.app; from lew_launcher.observability import tracer; "
    "created = tracer.get(); "
    "print(type(created).__name__, getattr(created, 'disabled', None), 'aws_xray_sdk' in sys.modules)"
)


def test_launcher_with_tracing_off_never_imports_the_xray_sdk() -> None:
    # GIVEN the deployed default: in Lambda, POWERTOOLS_TRACE_DISABLED=true (template parameter Tracing=Disabled)
    # WHEN the handler's module is imported and its first call decides on tracing
    seen = _in_a_fresh_interpreter(CHECK, LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_TRACE_DISABLED="true")
    # THEN there is no Tracer and the X-Ray SDK was never imported
    assert seen == "NoneType None False"


def test_launcher_with_tracing_on_creates_powertools_tracer() -> None:
    # GIVEN Tracing=Active: in Lambda, POWERTOOLS_TRACE_DISABLED=false
    seen = _in_a_fresh_interpreter(CHECK, LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_TRACE_DISABLED="false")
    # THEN the first call creates Powertools' Tracer, enabled, with the X-Ray SDK
    assert seen == "Tracer False True"


def test_an_invocation_with_no_metric_flushes_without_powertools_warning_and_other_warnings_still_show() -> None:
    # GIVEN the launcher imported in a fresh interpreter (Python's default warning filters, as in Lambda)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    env |= {"PYTHONPATH": str(LAUNCHER_ROOT), "AWS_LAMBDA_FUNCTION_NAME": "lew-launcher"}
    code = (
        "import warnings; import lew_launcher.app; from lew_launcher.observability import metrics; "
        "metrics.flush_metrics(); warnings.warn('another warning')"
    )

    # WHEN its metrics are flushed with none added (what a task-stop event's invocation does), then another warns
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    # THEN stderr holds only the other warning: no "No application metrics to publish" under [launcher]
    assert "No application metrics" not in result.stderr
    assert "UserWarning: another warning" in result.stderr
