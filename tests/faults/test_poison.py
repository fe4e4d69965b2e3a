"""Fault matrix row 6: a poison message reaches the DLQ with its reason, and `lew redrive` brings it back."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lew.cli import main as lew_main
from tests.faults.conftest import StartedStack
from tests.faults.harness import TEST_TIMEOUT_SECONDS, manifest_key_for, read_json, verdict, zip_archive

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]

POISON_BODY = '{"Records": [{"s3": "this is not an S3 record"'  # cut short: not even JSON


def dead_letters(started: StartedStack) -> list[Any]:
    """Peek at the DLQ's messages (received with a zero visibility timeout, so they stay where they are)."""
    return started.stack.sqs.receive_message(
        QueueUrl=started.resources.dlq_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def redrive(started: StartedStack, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `lew redrive --endpoint URL`; return what it printed."""
    assert lew_main(["redrive", "--endpoint", started.stack.endpoint]) == 0
    return capsys.readouterr().out


def test_poison_message_reaches_the_dlq_with_its_reason_and_redrive_brings_it_back(
    local_stack: Callable[..., StartedStack], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a body on the work queue that no worker can ever parse
    started = local_stack()
    started.stack.sqs.send_message(QueueUrl=started.resources.queue_url, MessageBody=POISON_BODY)
    # WHEN a worker (started by a reconcile tick) receives it
    started.wait_for(lambda: started.counts()["dead"] == 1, "the poison message to reach the DLQ")
    # THEN it is in the DLQ, unchanged, with the reason why
    (dead,) = dead_letters(started)
    assert dead["Body"] == POISON_BODY
    assert "not JSON" in dead["MessageAttributes"]["reason"]["StringValue"]
    started.wait_for(started.idle, "the work queue to empty and the workers to exit")
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 1}
    # WHEN an operator runs `lew redrive`
    printed = redrive(started, capsys)
    # THEN the message goes back to the work queue; still poison, it is moved aside again: never lost
    assert "moved 1 message" in printed
    started.wait_for(lambda: len(started.log.events("poison message: moved to the DLQ")) == 2, "the second move")
    started.wait_for(started.idle, "the work queue to empty")
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 1}


def failing_until_fixed_command(fixed: Path) -> str:
    """A PROCESS_COMMAND that fails with a retryable exit code until the marker file exists."""
    script = (
        "import os, pathlib, sys; "
        f"sys.exit(1) if not pathlib.Path({str(fixed)!r}).exists() else "
        "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'render.txt').write_text('rendered')"
    )
    return f'{sys.executable} -c "{script}"'


def test_job_failing_every_attempt_reaches_the_dlq_and_is_processed_after_the_fix_and_a_redrive(
    local_stack: Callable[..., StartedStack], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a processor that fails (exit 1: "retry") until it is fixed, and MaxReceiveCount 3
    fixed = tmp_path / "fixed"
    started = local_stack(
        processor="command",
        parameters={"MaxReceiveCount": "3", "VisibilityTimeout": "3"},
        environment={"PROCESS_COMMAND": failing_until_fixed_command(fixed)},
    )
    key = "incoming/redrive/scene.zip"
    started.upload(key, zip_archive(key))
    # WHEN it fails on every delivery
    started.wait_for(lambda: started.counts()["dead"] == 1, "the message to reach the DLQ after 3 receives")
    # THEN SQS's redrive policy moves it to the DLQ; no manifest claims anything, and the workers went idle
    assert read_json(started.stack.s3, started.bucket, manifest_key_for(key)) is None
    assert len(started.log.events("job failed; it will be retried")) == 2
    assert len(started.log.events("job failed on its last allowed attempt; the message goes to the DLQ")) == 1
    # WHEN the processor is fixed and an operator runs `lew redrive`
    fixed.touch()
    printed = redrive(started, capsys)
    # THEN the message is back on the work queue, a reconcile tick starts a worker, and it succeeds once
    assert "moved 1 message" in printed
    started.wait_for(lambda: verdict(started.stack.s3, started.bucket, [key]).all_succeeded, "the manifest")
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
    assert started.successes_per_key() == {key: 1}
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}
