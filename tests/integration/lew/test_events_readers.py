"""`lew events` reads a queue: one reader takes each event; several readers each subscribe a queue to the bus."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest

from lew import cli
from lew.client import Client
from lew.local.job_events import create_job_events
from lew.queues import queue_arn
from lew.target import Target
from tests.integration.worker.conftest import REGION
from worker.events import DETAIL_TYPE, SOURCE

# README "Subscribing": a rule of one's own on the bus, with a queue as its target.
OWN_PATTERN = {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}


def publish(events: Any, bus: str, count: int) -> None:
    for number in range(count):
        detail = {"status": "queued", "time": f"2026-11-30T12:00:0{number}Z", "job": {"key": f"incoming/{number}.zip"}}
        events.put_events(
            Entries=[{"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail), "EventBusName": bus}]
        )


@pytest.fixture
def target(aws: None) -> Target:
    sqs = boto3.client("sqs", region_name=REGION)
    bus, queue_url = create_job_events(boto3.client("events", region_name=REGION), sqs, stack_name="t")
    return Target(
        description="moto", bucket="b", queue_url="q", dlq_url="", cluster="", task_family="", input_prefix="incoming/",
        result_prefix="results/", suffixes=(".zip",), region=REGION, event_bus=bus, events_queue_url=queue_url,
    )  # fmt: skip


def test_two_readers_of_the_events_queue_split_the_events_as_documented(target: Target) -> None:
    # GIVEN three job events on the bus
    publish(boto3.client("events", region_name=REGION), target.event_bus, 3)

    # WHEN one reader takes what is waiting, then a second does
    first = list(Client(target).events(follow=False, wait_seconds=0))
    second = list(Client(target).events(follow=False, wait_seconds=0))

    # THEN the first got them all and the second none: a queue has one reader (lew events --help says so)
    assert [event["detail"]["job"]["key"] for event in first] == ["incoming/0.zip", "incoming/1.zip", "incoming/2.zip"]
    assert second == []


def test_a_queue_subscribed_with_its_own_rule_gets_every_event_too(target: Target) -> None:
    # GIVEN a second reader's own queue and rule on the bus, as README's "Subscribing" shows
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    own_queue = sqs.create_queue(QueueName="my-events")["QueueUrl"]
    events.put_rule(Name="mine", EventBusName=target.event_bus, EventPattern=json.dumps(OWN_PATTERN))
    events.put_targets(
        Rule="mine", EventBusName=target.event_bus, Targets=[{"Id": "q", "Arn": queue_arn(sqs, own_queue)}]
    )
    publish(events, target.event_bus, 2)

    # WHEN `lew events` reads the stack's queue and the other reader its own
    stacks = list(Client(target).events(follow=False, wait_seconds=0))
    own = list(Client(replace(target, events_queue_url=own_queue)).events(follow=False, wait_seconds=0))

    # THEN both saw every event
    assert len(stacks) == len(own) == 2


def test_lew_events_help_says_it_is_one_reader_and_how_to_have_several(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["events", "--help"])

    text = " ".join(capsys.readouterr().out.split())
    assert "Two `lew events` at once split the events between them" in text
    assert "subscribe a queue of each to the stack's event bus with a rule of its own" in text
