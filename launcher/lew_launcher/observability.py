"""The launcher's Powertools logger, metrics and tracer: one of each, shared by every module of the package."""

from __future__ import annotations

from typing import Final

from aws_lambda_powertools import Logger, Metrics, Tracer

DEFAULT_METRICS_NAMESPACE: Final = "lew"

logger = Logger()
tracer = Tracer()
metrics = Metrics()
