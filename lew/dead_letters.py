"""Look at the dead-letter queue without taking anything out of it: which uploads it holds, and why.

The worker dead-letters a message on its last allowed attempt with the message attributes `reason`, `kind` and
`attempts` (worker/dispatch.py); the body is the original S3 event, parsed here with the worker's own parser. A
message SQS moved by itself (no worker saw its last receive) has no attributes, and gets a reason saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.messages import parse_body

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Long enough that one peek's receives never return the same message twice, short enough that a peek cut short
# (Ctrl-C before the messages are made visible again) delays a redrive by seconds only.
PEEK_VISIBILITY_SECONDS = 20
NO_REASON = "moved to the dead-letter queue after its last receive (see the worker's logs)"
SQS_BATCH = 10


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ message: the uploads (bucket, key) its S3 event names, and the worker's `kind`, `reason`, `attempts`.

    `keys` is empty for a body that is not an S3 event (poison); `kind` and `attempts` are "" when absent.
    """

    keys: tuple[tuple[str, str], ...]
    kind: str
    reason: str
    attempts: str

    def names(self, bucket: str, key: str) -> bool:
        """True when this dead letter is about the upload s3://bucket/key."""
        return (bucket, key) in self.keys


def peek(sqs: SQSClient, dlq_url: str, *, limit: int = 10) -> list[DeadLetter]:
    """Up to `limit` messages of the DLQ, oldest SQS hands out first; every one is left in the queue, visible again.

    Receives with a short visibility timeout (so that successive receives page through the queue), then sets each
    received message's visibility back to 0 at once (ChangeMessageVisibility): nothing is deleted or hidden.
    A DLQ holding more than `limit` messages may hide the one asked about; SQS gives no order guarantee.
    """
    letters: list[DeadLetter] = []
    handles: list[str] = []
    try:
        while len(letters) < limit:
            received = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(SQS_BATCH, limit - len(letters)),
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            for message in received:
                handles.append(message["ReceiptHandle"])
                letters.append(_letter(message.get("Body", ""), message.get("MessageAttributes", {})))
    finally:
        _show_again(sqs, dlq_url, handles)
    return letters


def _letter(body: str, attributes: Mapping[str, object]) -> DeadLetter:
    def text(name: str) -> str:
        value = attributes.get(name)
        return str(value.get("StringValue", "")) if isinstance(value, Mapping) else ""

    jobs = getattr(parse_body(body), "jobs", ())
    return DeadLetter(
        keys=tuple((job.bucket, job.key) for job in jobs),
        kind=text("kind"),
        reason=text("reason") or NO_REASON,
        attempts=text("attempts"),
    )


def _show_again(sqs: SQSClient, dlq_url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), SQS_BATCH):
        batch = handles[start : start + SQS_BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(batch)],
        )
