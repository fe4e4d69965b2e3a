"""One message: parse its body, run its jobs, and decide how to settle it."""

from __future__ import annotations

import enum
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from worker.claims import deferral_seconds
from worker.events import DEAD_LETTERED
from worker.job import JobRuntime, Outcome, run_job
from worker.log import get_logger
from worker.messages import Jobs, Poison, Received, TestEvent, parse_body, without_results
from worker.paths import results_key_problem

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BACKOFF_BASE_SECONDS = 30
MAX_VISIBILITY_SECONDS = 43_200
# The DLQ's `reason` attribute is cut here: room for two S3 keys of 1024 bytes and their words (SQS allows 256 KiB).
REASON_LIMIT = 4096


class Action(enum.Enum):
    """What to do with a message once it is handled."""

    DELETE = "delete"  # done (success, permanent failure with a manifest, skip, test event, or moved to the DLQ)
    RETRY = "retry"  # transient failure: hide it for a backoff; the redrive policy ends it after maxReceiveCount
    DEFER = "defer"  # another worker is processing the same upload: hide it until that job should be over
    RELEASE = "release"  # the worker is stopping: make it visible to another worker at once
    LEAVE = "leave"  # to be dead-lettered, but no DLQ_URL (or the send failed): let the redrive policy move it


@dataclass(frozen=True)
class Settlement:
    """The action for a message, the visibility to set for RETRY and DEFER, and the outcome of each of its jobs.

    `reason` says why a message is kept (RETRY, DEFER, RELEASE): on its last allowed attempt it is the DLQ's reason.
    """

    action: Action
    delay: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reason: str = ""


def backoff_seconds(attempt: int, cap: int, rng: random.Random | None = None) -> int:
    """The visibility for a retried message: 30 s doubled per receive, capped, with jitter (half to full)."""
    ceiling = min(cap, MAX_VISIBILITY_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, min(attempt, 30) - 1))
    # Jitter spreads the retries of a burst of failures (say, an S3 brown-out) instead of aligning them.
    return max(1, round((rng or random.Random()).uniform(ceiling / 2, ceiling)))  # noqa: S311 - not security


def handle_message(
    message: Received, runtime: JobRuntime, sqs: SQSClient, queue_url: str, dlq_url: str | None
) -> Settlement:
    """Run every job of a message (or move a poison body aside) and say how to settle it.

    A message kept on its last allowed attempt (ApproximateReceiveCount reaching the queue's maxReceiveCount) would
    be moved to the DLQ by SQS at its next receive, with no reason: the worker moves it itself, with the last error.
    """
    limit = runtime.max_receive_count
    last = limit is not None and message.attempt >= limit
    try:
        settlement = _handle(message, runtime, sqs, queue_url, dlq_url)
    except Exception as error:  # noqa: BLE001 - a bug must not lose the message: retry it, with its reason
        then = "the message goes to the DLQ (its last allowed attempt)" if last else "it will be retried"
        get_logger().exception(f"handling the message failed unexpectedly; {then}")
        delay = min(runtime.settings.visibility_timeout, 30)
        settlement = Settlement(Action.RETRY, delay=delay, reason=f"unexpected {type(error).__name__}: {error}")
    if settlement.action in KEPT and last:
        reason = f"attempt {message.attempt} of {limit} (the queue's maxReceiveCount): {settlement.reason or '?'}"
        settlement = _poison(message, reason, sqs, queue_url, dlq_url, kind="exhausted", outcomes=settlement.outcomes)
        _announce_dead_letter(message, runtime, settlement, reason, kind="exhausted")
    return settlement


# The `error.type` of a `dead-lettered` event, by why the worker moved the message.
DEAD_LETTER_TYPES = {"refused": "ResultsRefused", "dead": "Unrecordable", "exhausted": "AttemptsExhausted"}


def _announce_dead_letter(
    message: Received, runtime: JobRuntime, settlement: Settlement, reason: str, *, kind: str
) -> None:
    """A `dead-lettered` job event for each job of a message the worker has just moved to the DLQ."""
    if settlement.action is not Action.DELETE:
        return  # left for the redrive policy: it is announced when it is finally moved
    parsed = parse_body(message.body)
    if not isinstance(parsed, Jobs):
        return
    error = {"type": DEAD_LETTER_TYPES.get(kind, "DeadLettered"), "message": reason, "permanent": True}
    for job in parsed.jobs:
        runtime.events.emit(DEAD_LETTERED, job, attempt=message.attempt, message_id=message.message_id, error=error)


# Settlements that leave the message in the queue, to be received again.
KEPT = frozenset({Action.RETRY, Action.DEFER, Action.RELEASE})


def _handle(message: Received, runtime: JobRuntime, sqs: SQSClient, queue_url: str, dlq_url: str | None) -> Settlement:
    logger = get_logger()
    parsed = parse_body(message.body)
    if isinstance(parsed, TestEvent):
        logger.info("s3:TestEvent: deleting it")
        return Settlement(Action.DELETE, outcomes=Counter(test_events=1))
    if isinstance(parsed, Poison):
        return _poison(message, parsed.reason, sqs, queue_url, dlq_url)
    parsed = without_results(parsed, runtime.settings.result_prefix)
    refusal = _results_key_refusal(parsed, runtime)
    if refusal is not None:
        settlement = _poison(message, refusal, sqs, queue_url, dlq_url, kind="refused")
        _announce_dead_letter(message, runtime, settlement, refusal, kind="refused")
        return settlement
    return _run_jobs(message, parsed, runtime, sqs=sqs, queue_url=queue_url, dlq_url=dlq_url)


def _results_key_refusal(parsed: Jobs, runtime: JobRuntime) -> str | None:
    """Why the message's results could not be stored at all (a manifest key past S3's limit), or None.

    Such a job can never write a manifest, success or failure, so retrying it only burns receives until the redrive
    policy moves it with no reason attached. It is refused before any request, the whole message like poison: the
    launcher sends one record per message, and a redriven message's other jobs would be skips.
    """
    settings = runtime.settings
    problems = [results_key_problem(job.key, settings.input_prefix, settings.result_prefix) for job in parsed.jobs]
    found = [problem for problem in problems if problem is not None]
    return "; ".join(found) if found else None


def _run_jobs(
    message: Received, parsed: Jobs, runtime: JobRuntime, *, sqs: SQSClient, queue_url: str, dlq_url: str | None
) -> Settlement:
    logger = get_logger()
    for ignored in parsed.ignored:
        logger.info("ignoring a record that is not an object creation", extra={"record": ignored})
    outcomes: Counter[str] = Counter()
    reasons: dict[Outcome, list[str]] = {}
    claim_remaining: float | None = None
    for job in parsed.jobs:
        if runtime.abort.is_set():
            outcomes[Outcome.ABORTED.value] += 1
            continue
        logger.append_keys(bucket=job.bucket, key=job.key)
        try:
            result = run_job(job, message.attempt, runtime, message_id=message.message_id)
        finally:
            logger.remove_keys(["bucket", "key"])
        outcomes[result.outcome.value] += 1
        if result.reason:
            reasons.setdefault(result.outcome, []).append(result.reason)
        if result.claim_remaining is not None:
            claim_remaining = max(claim_remaining or 0.0, result.claim_remaining)
    visibility_timeout = runtime.settings.visibility_timeout

    def why(*kinds: Outcome) -> str:
        return "; ".join(reason for kind in kinds for reason in reasons.get(kind, []))

    if outcomes[Outcome.ABORTED.value]:
        return Settlement(Action.RELEASE, outcomes=outcomes, reason=why(Outcome.ABORTED))
    if outcomes[Outcome.DEAD.value]:
        # No manifest can record it; the launcher sends one record per message, and a redriven message's other
        # jobs would be skips, so the whole message goes.
        dead = outcomes.copy()
        del dead[Outcome.DEAD.value]
        settlement = _poison(message, why(Outcome.DEAD), sqs, queue_url, dlq_url, kind="dead", outcomes=dead)
        _announce_dead_letter(message, runtime, settlement, why(Outcome.DEAD), kind="dead")
        return settlement
    if outcomes[Outcome.DEFERRED.value]:
        # When the message comes back, the manifest makes the deferred job a skip (same ETag) or it runs (newer).
        held = time.monotonic() - message.received_at
        delay = deferral_seconds(claim_remaining or 0.0, message.attempt, visibility_timeout, held)
        if outcomes[Outcome.RETRY.value]:
            delay = max(delay, backoff_seconds(message.attempt, visibility_timeout))
        return Settlement(Action.DEFER, delay=delay, outcomes=outcomes, reason=why(Outcome.RETRY, Outcome.DEFERRED))
    if outcomes[Outcome.RETRY.value]:
        delay = backoff_seconds(message.attempt, visibility_timeout)
        return Settlement(Action.RETRY, delay=delay, outcomes=outcomes, reason=why(Outcome.RETRY))
    return Settlement(Action.DELETE, outcomes=outcomes)


def _poison(
    message: Received,
    reason: str,
    sqs: SQSClient,
    queue_url: str,
    dlq_url: str | None,
    *,
    kind: str = "poison",
    outcomes: Counter[str] | None = None,
) -> Settlement:
    """Move a message to the DLQ with its reason (or, without DLQ_URL, leave it to the redrive policy).

    `kind` names it in the logs, the outcomes and the DLQ message's `kind` attribute: "poison" (an unparsable body),
    "refused" (no results folder possible), "dead" (a permanent failure no manifest can record) or "exhausted"
    (the last allowed attempt failed). `outcomes` are the message's job outcomes so far.
    """
    logger = get_logger()
    outcomes = Counter(outcomes or {})
    outcomes[kind] += 1
    if not dlq_url:
        logger.error(
            f"{kind} message: left for the queue's redrive policy (DLQ_URL is not set)",
            extra={"reason": reason, "body": message.body[:1024]},
        )
        return Settlement(Action.LEAVE, outcomes=outcomes)
    try:
        sqs.send_message(
            QueueUrl=dlq_url,
            MessageBody=message.body or "(empty body)",
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:REASON_LIMIT]},
                "source_message_id": {"DataType": "String", "StringValue": message.message_id},
                "source_queue": {"DataType": "String", "StringValue": queue_url},
                "kind": {"DataType": "String", "StringValue": kind},
                "attempts": {"DataType": "Number", "StringValue": str(message.attempt)},
            },
        )
    except (BotoCoreError, ClientError) as error:
        logger.exception(
            f"{kind} message: could not move it to the DLQ; left in the queue", extra={"error": str(error)}
        )
        return Settlement(Action.LEAVE, outcomes=outcomes)
    logger.error(f"{kind} message: moved to the DLQ", extra={"reason": reason, "dlq": dlq_url})
    return Settlement(Action.DELETE, outcomes=outcomes)
