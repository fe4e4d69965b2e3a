"""`lew rerun`, `lew results KEY` and the listing of manifests, against moto with the real worker draining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lew import ops
from lew.errors import LewError
from lew.rerun import rerun
from lew.target import Target
from tests.integration.worker.conftest import BUCKET, REGION, Stack, make_stack, zip_bytes


@pytest.fixture
def stack(aws: None) -> Stack:
    """A bucket and a work queue with a DLQ, in moto (in process)."""
    return make_stack()


def target_of(stack: Stack) -> Target:
    return Target(
        description="moto",
        bucket=BUCKET,
        queue_url=stack.queue_url,
        dlq_url=stack.dlq_url,
        cluster="",
        task_family="",
        input_prefix="incoming/",
        result_prefix="results/",
        suffixes=(".zip",),
        region=REGION,
    )


def test_rerun_processes_an_already_processed_upload_again(stack: Stack) -> None:
    # GIVEN an upload processed once (a second identical event would be a skip)
    stack.upload("incoming/a/again.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/a/again.zip")
    stack.run()
    first = stack.manifest("incoming/a/again.zip")

    # WHEN `lew rerun` is asked for it by its name under the input prefix, and a worker drains the queue
    [queued] = rerun(stack.s3, stack.sqs, target_of(stack), ["a/again.zip"])
    summary = stack.run()

    # THEN it was processed again: a new manifest, where `lew rerun` said it would be
    assert (queued.key, queued.manifest_key) == ("incoming/a/again.zip", "results/a%2Fagain.zip/manifest.json")
    assert summary.to_dict()["processed"] == 1
    second = stack.manifest("incoming/a/again.zip")
    assert second["claim"] != first["claim"] and second["source"]["etag"] == first["source"]["etag"]


def test_rerun_of_a_missing_object_queues_nothing_and_names_it(stack: Stack) -> None:
    stack.upload("incoming/here.zip", zip_bytes({"a.txt": b"a"}))

    with pytest.raises(LewError, match=r"s3://lew-test-bucket/incoming/gone.zip: no such object"):
        rerun(stack.s3, stack.sqs, target_of(stack), ["incoming/here.zip", "incoming/gone.zip"])

    assert stack.queue_counts() == (0, 0)


def test_list_manifests_lists_manifests_not_outputs_named_like_one(stack: Stack, tmp_path: Path) -> None:
    # GIVEN two processed uploads, and an output that a processor named sub/manifest.json
    for key in ("incoming/x.zip", "incoming/d/x.zip"):
        stack.upload(key, zip_bytes({"a.txt": b"a"}))
        stack.enqueue(key)
    stack.run()
    stack.s3.put_object(Bucket=BUCKET, Key="results/x.zip/sub/manifest.json", Body=json.dumps({"status": "x"}).encode())

    # WHEN listed, asked for by key, and downloaded
    target = target_of(stack)
    listed = ops.list_manifests(stack.s3, target)
    found = ops.manifests_of(stack.s3, target, ["incoming/d/x.zip", "incoming/none.zip"])
    written = ops.download_results(stack.s3, target, found[0][1], tmp_path) if found[0][1] else []

    # THEN only the two manifests are listed; each key finds its own; the download lands in the folder's name
    assert sorted(summary.source_key for summary in listed) == ["incoming/d/x.zip", "incoming/x.zip"]
    assert sorted(summary.folder for summary in listed) == ["d%2Fx.zip", "x.zip"]
    assert [(key, summary is not None) for key, summary in found] == [
        ("incoming/d/x.zip", True),
        ("incoming/none.zip", False),
    ]
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == [
        "d%2Fx.zip/inventory.json",
        "d%2Fx.zip/manifest.json",
    ]
