"""Look at the dead-letter queue without taking anything out of it: which uploads it holds, and why.

The worker dead-letters a message on its last allowed attempt with the message attributes `reason`, `kind` and
`attempts` (worker/dispatch.py); the body is the original S3 event, parsed here with the worker's own parser. A
message SQS moved by itself (no worker saw its last receive) has no attributes, and gets a reason saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
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
Job = tuple[str, str, str | None]  # (bucket, key, run id): what a dead letter is about


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ message: the jobs (bucket, key, run) its S3 event names, and the worker's `kind`, `reason`, `attempts`.

    `jobs` is empty for a body that is not an S3 event (poison); `run` is a scheduled run's id, None for an upload's
    job; `kind` and `attempts` are "" when absent.
    """

    jobs: tuple[Job, ...]
    kind: str
    reason: str
    attempts: str

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        """The (bucket, key) of each job, for display."""
        return tuple((bucket, key) for bucket, key, _ in self.jobs)

    def names(self, bucket: str, key: str, run: str | None = None) -> bool:
        """True when this dead letter is about the upload s3://bucket/key (or that run of it)."""
        return (bucket, key, run) in self.jobs


def peek(sqs: SQSClient, dlq_url: str, *, limit: int = 10) -> list[DeadLetter]:
    """Up to `limit` messages of the DLQ, oldest SQS hands out first; every one is left in the queue, visible again.

    Receives with a short visibility timeout (so that successive receives page through the queue), then sets each
    received message's visibility back to 0 at once (ChangeMessageVisibility): nothing is deleted or hidden.
    A DLQ holding more than `limit` messages may hide the one asked about (`find` looks through all of them).
    """
    letters: list[DeadLetter] = []

    def take(letter: DeadLetter) -> bool:
        letters.append(letter)
        return False  # every one, up to the limit

    _scan(sqs, dlq_url, limit, take)
    return letters


def find(sqs: SQSClient, dlq_url: str, uploads: Collection[Job]) -> dict[Job, DeadLetter]:
    """The dead letter of each job (bucket, key, run) the DLQ holds, by job; the others are left out.

    A scheduled run's dead letter is that run's only (`run` is its id); an upload's job has run None.

    Pages through the whole DLQ, as deep as its ApproximateNumberOfMessages when the search starts (so a long DLQ
    costs one receive per 10 messages, and the search always ends), and stops as soon as every upload was found.
    Every message received is made visible again, as by `peek`.
    """
    wanted = set(uploads)
    found: dict[Job, DeadLetter] = {}
    if not wanted:
        return found

    def take(letter: DeadLetter) -> bool:
        for upload in wanted.intersection(letter.jobs):
            found.setdefault(upload, letter)
        return len(found) == len(wanted)

    _scan(sqs, dlq_url, depth(sqs, dlq_url), take)
    return found


def depth(sqs: SQSClient, dlq_url: str) -> int:
    """How many messages the DLQ holds, visible ones (SQS's ApproximateNumberOfMessages)."""
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


def _scan(sqs: SQSClient, dlq_url: str, limit: int, take: Callable[[DeadLetter], bool]) -> None:
    """Receive up to `limit` messages, handing each to `take` until it returns True; then show them all again."""
    handles: list[str] = []
    try:
        while len(handles) < limit:
            received = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(SQS_BATCH, limit - len(handles)),
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                return
            for message in received:
                handles.append(message["ReceiptHandle"])
                if take(_letter(message.get("Body", ""), message.get("MessageAttributes", {}))):
                    return
    finally:
        _show_again(sqs, dlq_url, handles)


def _letter(body: str, attributes: Mapping[str, object]) -> DeadLetter:
    def text(name: str) -> str:
        value = attributes.get(name)
        return str(value.get("StringValue", "")) if isinstance(value, Mapping) else ""

    jobs = getattr(parse_body(body), "jobs", ())
    return DeadLetter(
        jobs=tuple((job.bucket, job.key, job.run.id if job.run is not None else None) for job in jobs),
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
