"""Enqueue: one work message per accepted object, sent with SendMessageBatch, failed entries retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lew_launcher.batches import SQS_BATCH_SIZE, chunks
from lew_launcher.events import ObjectNotice
from lew_launcher.messages import message_body
from lew_launcher.observability import logger, tracer
from lew_launcher.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


class EnqueueError(RuntimeError):
    """Some work messages could not be sent; raised so that Lambda retries the invocation."""


@tracer.capture_method(capture_response=False)
def enqueue(sqs: SQSClient, queue_url: str, notices: Sequence[ObjectNotice], retry: RetryPolicy) -> int:
    """Send one message per object with SendMessageBatch, retrying failed entries; return how many were sent."""
    for batch in chunks(notices, SQS_BATCH_SIZE):
        pending: dict[str, ObjectNotice] = {str(index): notice for index, notice in enumerate(batch)}
        for attempt in range(retry.attempts):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": entry_id, "MessageBody": message_body(notice)} for entry_id, notice in pending.items()
            ]
            failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
            problems = [
                f"{pending[item['Id']].key!r}: {item['Code']} {item.get('Message', '')}".strip() for item in failed
            ]
            if any(item["SenderFault"] for item in failed):
                raise EnqueueError(f"SQS rejected work messages (not retried): {'; '.join(problems)}")
            pending = {item["Id"]: pending[item["Id"]] for item in failed}
            if not pending:
                break
            if attempt + 1 == retry.attempts:
                raise EnqueueError(
                    f"{len(pending)} work message(s) still failing after {retry.attempts} attempts: "
                    + "; ".join(problems)
                )
            logger.warning("Retrying failed SendMessageBatch entries", extra={"failed": problems, "attempt": attempt})
            retry.sleep(retry.delay(attempt))
    return len(notices)
