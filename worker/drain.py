"""The worker loop: receive, handle, settle, until the queue is drained or a signal says stop."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.dispatch import Action, Settlement
from worker.heartbeat import Heartbeat
from worker.log import get_logger
from worker.messages import Received
from worker.settings import Settings
from worker.shutdown import IdleShutdown, Shutdown

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[Received], Settlement]


@dataclass
class Summary:
    """What a worker did before it exited."""

    outcomes: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    started: float = field(default_factory=time.monotonic)
    stopped_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields of the exit log line."""
        return {
            "processed": self.outcomes["succeeded"],
            "failed": self.outcomes["failed"],
            "skipped": self.outcomes["skipped"],
            "retried": self.outcomes["retry"],
            "deferred": self.outcomes["deferred"],
            "released": self.outcomes["aborted"],
            "cancelled": self.outcomes["cancelled"],
            "poison": self.outcomes["poison"],
            "refused": self.outcomes["refused"],
            "dead": self.outcomes["dead"],
            "exhausted": self.outcomes["exhausted"],
            "messages": self.messages,
            "duration": round(time.monotonic() - self.started, 3),
            "stopped_by": self.stopped_by,
        }


def drain(sqs: SQSClient, settings: Settings, handle: Handler, shutdown: Shutdown, heartbeat: Heartbeat) -> Summary:
    """Receive and handle messages until IDLE_POLLS empty receives in a row, or until a stop is requested."""
    logger = get_logger()
    idle = IdleShutdown(settings.idle_polls)
    summary = Summary()
    while not shutdown.stopping.is_set() and not idle.drained:
        batch = receive(sqs, settings)
        idle.record(len(batch))
        heartbeat.hold(batch)
        for index, message in enumerate(batch):
            if shutdown.stopping.is_set():
                for unstarted in batch[index:]:
                    _settle(sqs, settings, heartbeat, unstarted, Settlement(Action.RELEASE))
                break
            logger.append_keys(message_id=message.message_id, attempt=message.attempt)
            try:
                settlement = _handle_safely(handle, message, settings)
                _settle(sqs, settings, heartbeat, message, settlement)
            finally:
                logger.remove_keys(["message_id", "attempt"])
            summary.messages += 1
            summary.outcomes.update(settlement.outcomes)
    summary.stopped_by = f"signal {shutdown.reason}" if shutdown.stopping.is_set() else "drained"
    return summary


def receive(sqs: SQSClient, settings: Settings) -> list[Received]:
    """One long poll of up to RECEIVE_BATCH_SIZE messages, each hidden for VISIBILITY_TIMEOUT."""
    response = sqs.receive_message(
        QueueUrl=settings.queue_url,
        MaxNumberOfMessages=settings.receive_batch_size,
        WaitTimeSeconds=settings.wait_time_seconds,
        VisibilityTimeout=settings.visibility_timeout,
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )
    return [_received(message) for message in response.get("Messages", [])]


def _received(message: MessageTypeDef) -> Received:
    attributes = message.get("Attributes", {})
    return Received(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message.get("Body", ""),
        attempt=int(attributes.get("ApproximateReceiveCount", "1")),
    )


def _handle_safely(handle: Handler, message: Received, settings: Settings) -> Settlement:
    try:
        return handle(message)
    except Exception:  # noqa: BLE001 - a bug must not lose the message: retry it and let the redrive policy decide
        get_logger().exception("handling the message failed unexpectedly; it will be retried")
        return Settlement(Action.RETRY, delay=min(settings.visibility_timeout, 30))


def _settle(
    sqs: SQSClient, settings: Settings, heartbeat: Heartbeat, message: Received, settlement: Settlement
) -> None:
    logger = get_logger()
    queue_url = settings.queue_url
    handle = message.receipt_handle

    def act() -> None:
        if settlement.action is Action.DELETE:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
        elif settlement.action in (Action.RETRY, Action.DEFER):
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=settlement.delay)
        elif settlement.action is Action.RELEASE:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)

    try:
        heartbeat.settle(message.message_id, act)
    except (BotoCoreError, ClientError) as error:
        # The manifest is already written: a message that reappears is an idempotent skip, not a loss.
        logger.warning("could not settle the message", extra={"action": settlement.action.value, "error": str(error)})
        return
    logger.info(
        "message settled",
        extra={"action": settlement.action.value, "delay": settlement.delay, "outcomes": dict(settlement.outcomes)},
    )
