"""The launcher's Powertools logger, metrics and tracer: one of each, shared by every module of the package.

The tracer is Powertools' ``Tracer``, created at the first traced call and only when tracing is on. Creating a
``Tracer`` imports the X-Ray SDK and patches botocore (and every other library the SDK can patch), even with
``POWERTOOLS_TRACE_DISABLED=true``: in Lambda that adds more than half of ``import boto3`` to every cold start
(BENCHMARKS.md row 4). With tracing off (the template's default, ``Tracing=Disabled``) the SDK is never imported;
with it on, the first invocation creates the ``Tracer`` and every traced call is a subsegment as before.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

DEFAULT_METRICS_NAMESPACE: Final = "lew"

_Function = TypeVar("_Function", bound=Callable[..., Any])


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    """Powertools' own rule: on inside Lambda (``LAMBDA_TASK_ROOT`` set, not ``sam local``), unless
    ``POWERTOOLS_TRACE_DISABLED`` is true. Raises ValueError when that variable is not a true or false word."""
    if resolve_truthy_env_var_choice(env=environ.get(constants.TRACER_DISABLED_ENV, "false")):
        return False
    in_lambda = bool(environ.get(constants.LAMBDA_TASK_ROOT_ENV))
    emulated = bool(environ.get(constants.SAM_LOCAL_ENV) or environ.get(constants.CHALICE_LOCAL_ENV))
    return in_lambda and not emulated


class LazyTracer:
    """Decorators with the meaning of ``Tracer``'s, whose ``Tracer`` is created at the first call, if tracing is on.

    ``enabled`` is asked once, at the first traced call (the environment of a Lambda execution environment does not
    change); ``reset`` forgets the answer and the tracer, as a new execution environment would.
    """

    def __init__(
        self, enabled: Callable[[], bool] = lambda: tracing_enabled(os.environ), factory: Callable[[], Tracer] = Tracer
    ) -> None:
        self._enabled = enabled
        self._factory = factory
        self._decided = False
        self._tracer: Tracer | None = None

    def get(self) -> Tracer | None:
        """The Powertools ``Tracer``, created now if this is the first call and tracing is on; None when it is off."""
        if not self._decided:
            self._tracer = self._factory() if self._enabled() else None
            self._decided = True
        return self._tracer

    def reset(self) -> None:
        self._decided, self._tracer = False, None

    def capture_method(self, *, capture_response: bool = True) -> Callable[[_Function], _Function]:
        """``Tracer.capture_method``: the decorated function's calls are subsegments when tracing is on."""
        return self._decorator(
            lambda tracer, function: tracer.capture_method(capture_response=capture_response)(function)
        )

    def capture_lambda_handler(self, *, capture_response: bool = True) -> Callable[[_Function], _Function]:
        """``Tracer.capture_lambda_handler``: the handler is a subsegment (ColdStart annotated) when tracing is on."""
        return self._decorator(
            lambda tracer, function: tracer.capture_lambda_handler(function, capture_response=capture_response)
        )

    def _decorator(
        self, wrap: Callable[[Tracer, Callable[..., Any]], Callable[..., Any]]
    ) -> Callable[[_Function], _Function]:
        def decorate(function: _Function) -> _Function:
            # The Tracer's wrapper of `function` and that Tracer, made once per tracer (reset() may bring a new one).
            wrapped: list[tuple[Tracer, Callable[..., Any]]] = []

            @functools.wraps(function)
            def call(*args: Any, **kwargs: Any) -> Any:
                tracer = self.get()
                if tracer is None:
                    return function(*args, **kwargs)
                if not wrapped or wrapped[0][0] is not tracer:
                    wrapped[:] = [(tracer, wrap(tracer, function))]
                return wrapped[0][1](*args, **kwargs)

            return cast("_Function", call)

        return decorate


# An invocation that adds no metric (a task-stop event handled without a start failure, an S3 test event) is normal
# here: Powertools' UserWarning at its flush is two lines of noise in CloudWatch Logs and under `lew local up`'s
# [launcher]. Filtered as Powertools' docs suggest, by its message only; `raise_on_empty_metrics` stays False.
EMPTY_METRICS_WARNING: Final = "No application metrics to publish"
warnings.filterwarnings("ignore", message=EMPTY_METRICS_WARNING, category=UserWarning)

logger = Logger()
tracer = LazyTracer()
metrics = Metrics()
