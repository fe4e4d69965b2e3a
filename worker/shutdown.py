"""When to stop: on SIGTERM/SIGINT (with a grace period for the current job), or when the queue is drained."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from types import FrameType


class Shutdown:
    """A stop request and, STOP_GRACE_SECONDS later (or at a second signal), an abort of the current job."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.stopping = threading.Event()  # stop receiving; finish the current job if it can
        self.abort = threading.Event()  # kill the processor and release the messages: the grace is over
        self.reason: str | None = None
        self._timer: threading.Timer | None = None

    def request_stop(self, reason: str) -> None:
        """Stop receiving now; abort the current job when the grace period ends (or at once, the second time)."""
        if self.stopping.is_set():
            self.abort.set()
            return
        self.reason = reason
        self.stopping.set()
        self._timer = threading.Timer(self.grace_seconds, self.abort.set)
        self._timer.daemon = True
        self._timer.start()

    def cancel_timer(self) -> None:
        """Forget the grace timer (the worker is exiting anyway)."""
        if self._timer is not None:
            self._timer.cancel()

    def install(self) -> None:
        """Handle SIGTERM (ECS stop, Spot interruption, scale-in) and SIGINT (Ctrl-C) in the main thread."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request_stop(signal.Signals(signum).name)


@dataclass
class IdleShutdown:
    """The queue is drained after `idle_polls` empty long polls in a row."""

    idle_polls: int
    empty_in_a_row: int = 0

    def record(self, received: int) -> None:
        """Count one receive that returned `received` messages."""
        self.empty_in_a_row = 0 if received else self.empty_in_a_row + 1

    @property
    def drained(self) -> bool:
        """True once enough empty receives came in a row."""
        return self.empty_in_a_row >= self.idle_polls
