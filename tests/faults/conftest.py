"""Fixtures of the fault matrix: a fault-injecting proxy in front of a real moto server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.proxy import FaultProxy


@pytest.fixture
def proxy(moto_server: str) -> Iterator[FaultProxy]:
    """A started fault proxy in front of the test's moto server; its ``endpoint`` is what clients should use."""
    with FaultProxy(moto_server) as started:
        yield started
