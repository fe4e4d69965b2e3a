"""Awkward keys end to end: unicode, spaces, `+`, `%`, deep prefixes and very long keys are processed correctly.

S3 URL-encodes keys in its notifications (moto encodes `/` as well); the launcher decodes them, re-encodes
them in the work message as S3 does, and the worker decodes them again. A key that comes out of that chain
different by one character would be a NoSuchKey, or a result written under the wrong name.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

import worker.__main__ as worker_main
from lew.queues import create_work_queue, queue_depths
from tests.faults.conftest import StartedStack
from tests.faults.harness import (
    REGION,
    TEST_TIMEOUT_SECONDS,
    manifest_key_for,
    read_json,
    verdict,
    wait_for,
    work_message,
    zip_archive,
)
from tests.faults.proxy import FaultProxy
from worker.paths import results_folder
from worker.settings import Settings
from worker.shutdown import Shutdown

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]

S3_KEY_LIMIT = 1024


def long_key(total_bytes: int) -> str:
    """An incoming/ key of exactly this many UTF-8 bytes, with multi-byte characters and folders in it."""
    head, tail = "incoming/long/", ".zip"
    body = ""
    while len((head + body + "é/" + tail).encode()) <= total_bytes:
        body += "é/" if len(body) % 40 == 38 else "é"
    body += "x" * (total_bytes - len((head + body + tail).encode()))
    key = head + body + tail
    assert len(key.encode()) == total_bytes
    return key


def longest_processable_key() -> str:
    """The longest `long_key` whose inventory output key still fits S3's limit (each `/` is `%2F` in its folder)."""
    total = S3_KEY_LIMIT
    while len((results_folder(long_key(total), "incoming/", "results/") + "inventory.json").encode()) > S3_KEY_LIMIT:
        total -= 1
    return long_key(total)


AWKWARD_KEYS = {
    "unicode": "incoming/unicode/scène-日本語-🎉.zip",
    "spaces": "incoming/with spaces/my scene  file.zip",
    "plus": "incoming/plus/a+b+c.zip",
    "percent": "incoming/percent/100% done %25 %2F.zip",
    "reserved": "incoming/reserved/a&b=c;d,e@f$g!h'i(j)k*l~m.zip",
    "deep": "incoming/" + "/".join(f"level-{depth}" for depth in range(40)) + "/scene.zip",
    "long": longest_processable_key(),
    "upper-suffix": "incoming/case/SCENE.ZIP",
    # Were a key ever handed to a shell, this would leave a canary file behind.
    "shell": "incoming/shell/$(touch lew-canary); `touch lew-canary` | x.zip",
}
CANARY_PLACES = [Path(__file__).resolve().parents[2], Path(tempfile.gettempdir())]


def test_awkward_keys_are_processed_end_to_end(local_stack: Callable[..., StartedStack]) -> None:
    # GIVEN the local stack, WHEN archives with awkward keys are uploaded
    started = local_stack()
    keys = list(AWKWARD_KEYS.values())
    for key in keys:
        started.upload(key, zip_archive(key))
    # THEN each one is processed once, its manifest names the exact key, and its inventory lists its members
    started.wait_for(lambda: verdict(started.stack.s3, started.bucket, keys).all_succeeded, "every manifest")
    started.wait_for(started.idle, "the queue to empty and the workers to exit")
    assert started.successes_per_key() == dict.fromkeys(keys, 1)
    for key in keys:
        manifest = read_json(started.stack.s3, started.bucket, manifest_key_for(key))
        assert manifest is not None and manifest["source"]["key"] == key
        (output,) = manifest["outputs"]
        assert output["key"] == manifest_key_for(key).removesuffix("manifest.json") + "inventory.json"
        assert len(output["key"].encode()) <= S3_KEY_LIMIT
        inventory = read_json(started.stack.s3, started.bucket, output["key"])
        assert inventory is not None and inventory["source"]["key"] == key
        assert sorted(member["path"] for member in inventory["members"]) == ["data/notes.txt", "scene.pov"]
    assert started.counts() == {"queued": 0, "in_flight": 0, "dead": 0}
    assert not [place for place in CANARY_PLACES if (place / "lew-canary").exists()]


def test_key_whose_results_would_exceed_the_s3_key_limit_is_refused_to_the_dlq_with_a_reason(
    moto_server: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an input key of exactly 1024 bytes (S3's limit), whose result keys would be longer than S3
    # accepts, and a worker whose S3 calls go through the proxy (which, like S3, refuses such keys)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    bucket, key = "lew-long", long_key(S3_KEY_LIMIT)
    s3.create_bucket(Bucket=bucket)
    queue_url, dlq_url = create_work_queue(
        sqs, name="lew-work", dead_letter_name="lew-dlq", visibility_timeout=3, max_receive_count=2
    )
    s3.put_object(Bucket=bucket, Key=key, Body=zip_archive(key))
    sqs.send_message(QueueUrl=queue_url, MessageBody=work_message(s3, bucket, key))
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    settings = Settings(
        queue_url=queue_url,
        region=REGION,
        processor="inventory",
        wait_time_seconds=1,
        idle_polls=1,
        visibility_timeout=3,
        dlq_url=dlq_url,
    )
    # WHEN a worker takes the message
    outcomes: Counter[str] = Counter()

    def one_worker() -> bool:
        outcomes.update(worker_main.run(settings, {}, Shutdown(grace_seconds=1)).outcomes)
        return queue_depths(sqs, queue_url) == (0, 0)

    wait_for(one_worker, "the work queue to be empty", progress=lambda: len(proxy.calls), interval=0.5)
    # THEN the worker refused it up front, on its first receive: no S3 request for it, no retry, no success
    assert outcomes == Counter(refused=1), outcomes
    assert proxy.count("PutObject") == 0 and proxy.count("GetObject") == 0
    # AND it is not lost: it is in the DLQ at once, with a reason naming the problem, for `lew redrive` once renamed
    moved = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert len(moved) == 1
    attributes = moved[0]["MessageAttributes"]
    assert "manifest key" in attributes["reason"]["StringValue"]
    manifest_bytes = len(manifest_key_for(key).encode())
    assert manifest_bytes > S3_KEY_LIMIT and f"{manifest_bytes} bytes" in attributes["reason"]["StringValue"]
    assert attributes["source_queue"]["StringValue"] == queue_url
