"""Keep held messages invisible while the worker works on them (ecs-watchbot's visibility heartbeat)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from worker.claims import HeldClaims
from worker.log import get_logger
from worker.messages import Received

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

SQS_BATCH_LIMIT = 10
T = TypeVar("T")


class Heartbeat:
    """A thread that extends the visibility of every held message, and refreshes the held claims, every `interval` s.

    Settling a message (delete, backoff, release) goes through `settle`, under the same lock as a beat,
    so that a beat can never undo a release or a backoff that has just been set.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        visibility_timeout: int,
        interval: float,
        claims: HeldClaims | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.visibility_timeout = visibility_timeout
        self.interval = interval
        # The running job's claim: refreshed at the same cadence, so it expires with the message, never before.
        self.claims = claims if claims is not None else HeldClaims()
        self._held: dict[str, str] = {}  # message id -> receipt handle
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, messages: Iterable[Received]) -> None:
        """Start extending these messages."""
        with self._lock:
            self._held.update({message.message_id: message.receipt_handle for message in messages})

    def settle(self, message_id: str, action: Callable[[], T]) -> T:
        """Stop extending a message and run the action that settles it, with no beat in between."""
        with self._lock:
            self._held.pop(message_id, None)
            return action()

    @property
    def held(self) -> list[str]:
        """The ids of the messages being extended."""
        with self._lock:
            return list(self._held)

    def beat(self) -> None:
        """Extend every held message once (forget those SQS no longer knows), then refresh every held claim."""
        try:
            self._extend_messages()
        finally:
            self.claims.refresh_all()

    def _extend_messages(self) -> None:
        with self._lock:
            items = list(self._held.items())
            for start in range(0, len(items), SQS_BATCH_LIMIT):
                chunk = items[start : start + SQS_BATCH_LIMIT]
                entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": self.visibility_timeout}
                    for index, (_, handle) in enumerate(chunk)
                ]
                try:
                    response = self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
                except (BotoCoreError, ClientError) as error:
                    # One missed beat is survivable: there are three per visibility timeout.
                    get_logger().warning("heartbeat failed", extra={"error": str(error)})
                    continue
                for failure in response.get("Failed", []):
                    message_id = chunk[int(failure["Id"])][0]
                    self._held.pop(message_id, None)
                    get_logger().warning(
                        "heartbeat could not extend a message; it may be processed twice",
                        extra={"held_message_id": message_id, "error": failure.get("Message", failure["Code"])},
                    )

    def start(self) -> None:
        """Beat in a daemon thread until `stop`."""
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and wait for the thread."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @contextmanager
    def running(self) -> Iterator[Heartbeat]:
        """Beat for the duration of a with-block."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a dead heartbeat thread would let held messages expire unnoticed
                get_logger().exception("heartbeat failed unexpectedly")
