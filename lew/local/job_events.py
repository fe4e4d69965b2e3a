"""The local stack's job events: the template's event bus, and a queue that a rule copies every lew event into.

The worker publishes to the bus exactly as it does on AWS; the queue (what a user would subscribe on AWS) is
what `lew events` tails locally (moto delivers PutEvents entries to an SQS target of a rule with a pattern).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lew.queues import queue_arn
from worker.events import DETAIL_TYPE, SOURCE

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

RULE_NAME = "lew-job-events-to-queue"
# Events are for watching, not a record: an hour is plenty for `lew events` to pick them up.
EVENTS_RETENTION_SECONDS = 3600


def event_bus_name(stack_name: str) -> str:
    """The bus the template creates with EventBus=stack: `<stack>-jobs`."""
    return f"{stack_name}-jobs"


def create_job_events(events: Any, sqs: SQSClient, *, stack_name: str) -> tuple[str, str]:
    """Create the bus, a queue and the rule between them; return (bus name, events queue URL)."""
    bus = event_bus_name(stack_name)
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(
        QueueName=f"{stack_name}-events", Attributes={"MessageRetentionPeriod": str(EVENTS_RETENTION_SECONDS)}
    )["QueueUrl"]
    events.put_rule(
        Name=RULE_NAME,
        EventBusName=bus,
        EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}),
        State="ENABLED",
    )
    events.put_targets(
        Rule=RULE_NAME, EventBusName=bus, Targets=[{"Id": "events-queue", "Arn": queue_arn(sqs, queue_url)}]
    )
    return bus, queue_url
