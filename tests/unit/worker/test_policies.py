"""Backoff, idle shutdown and the signal-driven stop."""

from __future__ import annotations

import os
import random
import signal

import pytest

from worker.dispatch import backoff_seconds
from worker.shutdown import IdleShutdown, Shutdown


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 30), (2, 60), (3, 120), (4, 240), (5, 300), (40, 300)])
def test_backoff_seconds_doubles_per_receive_up_to_the_cap_with_jitter(attempt: int, ceiling: int) -> None:
    rng = random.Random(attempt)

    delays = [backoff_seconds(attempt, 300, rng) for _ in range(200)]

    assert min(delays) >= ceiling // 2
    assert max(delays) <= ceiling
    assert len(set(delays)) > 1  # jittered


def test_backoff_seconds_is_at_least_one_second() -> None:
    assert backoff_seconds(1, 1) == 1


def test_idle_shutdown_needs_empty_polls_in_a_row() -> None:
    idle = IdleShutdown(idle_polls=2)

    idle.record(0)
    assert not idle.drained
    idle.record(3)
    idle.record(0)
    assert not idle.drained
    idle.record(0)
    assert idle.drained


def test_shutdown_aborts_when_the_grace_period_ends() -> None:
    shutdown = Shutdown(grace_seconds=0.05)

    shutdown.request_stop("SIGTERM")

    assert shutdown.stopping.is_set()
    assert shutdown.abort.wait(timeout=2)
    assert shutdown.reason == "SIGTERM"


def test_shutdown_a_second_signal_aborts_at_once() -> None:
    shutdown = Shutdown(grace_seconds=60)

    shutdown.request_stop("SIGINT")
    assert not shutdown.abort.is_set()
    shutdown.request_stop("SIGINT")

    assert shutdown.abort.is_set()
    shutdown.cancel_timer()


def test_shutdown_install_handles_sigterm() -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    shutdown = Shutdown(grace_seconds=60)
    try:
        shutdown.install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert shutdown.stopping.wait(timeout=2)
        assert shutdown.reason == "SIGTERM"
    finally:
        shutdown.cancel_timer()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
