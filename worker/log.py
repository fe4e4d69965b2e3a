"""The worker's one structured JSON logger (Powertools), created on first use rather than at import."""

from __future__ import annotations

import functools

from aws_lambda_powertools import Logger

SERVICE = "lew-worker"


@functools.cache
def get_logger() -> Logger:
    """The worker's logger; LOG_LEVEL or POWERTOOLS_LOG_LEVEL set its level (INFO by default)."""
    return Logger(service=SERVICE)
