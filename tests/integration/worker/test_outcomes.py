"""Every upload ends with an outcome the uploader can see (issue 9 §1-3), against moto: results that never clobber
each other, permanent S3 answers settled in one attempt, reasons on every dead letter, versions kept in order."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import worker.claims
from worker.claims import claim_key
from worker.paths import folder_name, manifest_key

from .conftest import BUCKET, MAX_RECEIVE_COUNT, Stack, s3_record, tgz_bytes, zip_bytes


def dead_letters(stack: Stack) -> list[dict[str, Any]]:
    """The DLQ's messages, with their attributes."""
    messages: list[dict[str, Any]] = stack.sqs.receive_message(
        QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", [])
    return messages


def reason_of(message: dict[str, Any]) -> str:
    reason: str = message["MessageAttributes"]["reason"]["StringValue"]
    return reason


def inventory_paths(stack: Stack, key: str) -> list[str]:
    body = stack.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [member["path"] for member in json.loads(body)["members"]]


def versioned_record(key: str, put: dict[str, Any], sequencer: str | None) -> dict[str, Any]:
    """An S3 event record for one version of a key, with its sequencer (when not None)."""
    record = s3_record(BUCKET, key, etag=put["ETag"].strip('"'))
    record["s3"]["object"]["versionId"] = put["VersionId"]
    if sequencer is not None:
        record["s3"]["object"]["sequencer"] = sequencer
    return record


# -- §1 results never clobber each other ----------------------------------------------------------------------------


def test_two_keys_differing_only_by_extension_both_keep_their_results(stack: Stack) -> None:
    # GIVEN other.zip and other.tgz, which the old rule sent to one results/other/ (and one claim)
    stack.upload("incoming/other.zip", zip_bytes({"from-zip.txt": b"z"}))
    stack.upload("incoming/other.tgz", tgz_bytes({"from-tgz.txt": b"t"}))
    stack.enqueue("incoming/other.zip")
    stack.enqueue("incoming/other.tgz")

    # WHEN both are processed
    summary = stack.run()

    # THEN each has its own manifest, outputs and source, in folders named by the documented rule
    assert summary.to_dict()["processed"] == 2
    zipped, tarred = stack.manifest("incoming/other.zip"), stack.manifest("incoming/other.tgz")
    assert (zipped["source"]["key"], tarred["source"]["key"]) == ("incoming/other.zip", "incoming/other.tgz")
    assert inventory_paths(stack, "results/other.zip/inventory.json") == ["from-zip.txt"]
    assert inventory_paths(stack, "results/other.tgz/inventory.json") == ["from-tgz.txt"]


def test_nested_keys_and_an_output_named_like_a_manifest_never_touch_another_uploads_results(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN incoming/a.zip, whose processor writes b.zip/manifest.json, and incoming/a.zip/b.zip, a key "inside" it
    code = (
        "import os, pathlib; out = pathlib.Path(os.environ['LEW_OUTPUT_DIR']) / 'b.zip'; out.mkdir(parents=True);"
        "(out / 'manifest.json').write_text('{\"status\": \"forged\"}')"
    )
    stack.upload("incoming/a.zip/b.zip", zip_bytes({"inner.txt": b"i"}))
    stack.enqueue("incoming/a.zip/b.zip")
    stack.run()
    inner = stack.manifest("incoming/a.zip/b.zip")
    stack.upload("incoming/a.zip", zip_bytes({"outer.txt": b"o"}))
    stack.enqueue("incoming/a.zip")

    # WHEN the outer one is processed after the inner one
    summary = stack.run(processor="command", process_command=python_command(code))

    # THEN the output stays in a.zip's own folder and the inner upload's manifest is untouched
    assert summary.to_dict()["processed"] == 1
    assert [o["key"] for o in stack.manifest("incoming/a.zip")["outputs"]] == ["results/a.zip/b.zip/manifest.json"]
    assert manifest_key("incoming/a.zip/b.zip", "incoming/", "results/") == "results/a.zip%2Fb.zip/manifest.json"
    assert stack.manifest("incoming/a.zip/b.zip") == inner


def test_an_old_layout_success_manifest_is_not_consulted_the_upload_is_processed_into_its_new_folder(
    stack: Stack,
) -> None:
    # GIVEN an upload whose success an old worker recorded under the old layout (results/<stem>/manifest.json)
    etag = stack.upload("incoming/old.zip", zip_bytes({"a.txt": b"a"}))
    old = {"status": "succeeded", "source": {"bucket": BUCKET, "key": "incoming/old.zip", "etag": etag}}
    stack.s3.put_object(Bucket=BUCKET, Key="results/old/manifest.json", Body=json.dumps(old).encode())

    # WHEN its message is redelivered to a new worker
    stack.enqueue("incoming/old.zip")
    summary = stack.run()

    # THEN it is processed once more, into the new folder; the old folder is left as it was
    assert summary.to_dict()["processed"] == 1
    assert stack.manifest("incoming/old.zip")["status"] == "succeeded"
    assert json.loads(stack.s3.get_object(Bucket=BUCKET, Key="results/old/manifest.json")["Body"].read()) == old


# -- §2 permanent answers in one attempt, and a reason on every dead letter ------------------------------------------


def test_an_archived_object_gets_a_failure_manifest_saying_restore_it_first_in_one_attempt(stack: Stack) -> None:
    # GIVEN an upload in the GLACIER storage class (its GET answers InvalidObjectState)
    stack.s3.put_object(Bucket=BUCKET, Key="incoming/cold.zip", Body=zip_bytes({"a.txt": b"a"}), StorageClass="GLACIER")
    stack.enqueue("incoming/cold.zip")

    # WHEN drained
    summary = stack.run()

    # THEN the first attempt settles it: a failure manifest that tells the uploader what to do; the message is gone
    assert summary.to_dict()["failed"] == 1
    error = stack.manifest("incoming/cold.zip")["error"]
    assert error["type"] == "SourceArchived"
    assert error["permanent"] is True
    assert "InvalidObjectState" in error["message"] and "GLACIER" in error["message"]
    assert "restore the object first" in error["message"]
    assert stack.queue_counts() == (0, 0)
    assert dead_letters(stack) == []


def test_a_missing_bucket_is_dead_lettered_with_its_reason_in_one_attempt(stack: Stack) -> None:
    # GIVEN a message naming a bucket that does not exist (no manifest can be written anywhere)
    stack.send({"Records": [s3_record("no-such-bucket-lew", "incoming/x.zip", etag="0" * 32, size=1)]})

    # WHEN drained
    summary = stack.run()

    # THEN it is in the DLQ after one attempt, and its reason names the bucket problem
    assert summary.to_dict()["dead"] == 1
    assert summary.to_dict()["retried"] == 0
    assert stack.queue_counts() == (0, 0)
    [dead] = dead_letters(stack)
    assert "NoSuchBucket" in reason_of(dead) and "the bucket does not exist" in reason_of(dead)
    assert dead["MessageAttributes"]["kind"]["StringValue"] == "dead"
    assert dead["MessageAttributes"]["attempts"]["StringValue"] == "1"


def test_results_refused_for_good_are_dead_lettered_with_the_jobs_error_and_the_refusal(stack: Stack) -> None:
    # GIVEN a bucket that accepts the claim but refuses every result (a KMS key the worker may not use, say)
    stack.upload("incoming/r.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/r.zip")
    stack.fail_puts("results/r.zip/", 403, "KMS.DisabledException", "Access Denied")

    # WHEN drained
    summary = stack.run()

    # THEN neither outputs nor a failure manifest could be written: the DLQ's reason says both, in one attempt
    assert summary.to_dict()["dead"] == 1
    [dead] = dead_letters(stack)
    assert reason_of(dead).count("KMS.DisabledException") == 2
    assert "enable the key" in reason_of(dead)
    assert stack.queue_counts() == (0, 0)


def test_the_last_allowed_attempt_moves_the_message_to_the_dlq_with_the_last_error(
    stack: Stack, python_command: Callable[[str], str], json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a job that fails transiently (exit code 1), whose message has been received maxReceiveCount - 1 times
    stack.upload("incoming/flaky.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/flaky.zip")
    for _ in range(MAX_RECEIVE_COUNT - 1):
        assert stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0)["Messages"]

    # WHEN the worker's attempt, the last one the redrive policy allows, fails too
    failing = python_command("import sys; print('no teapot', file=sys.stderr); sys.exit(1)")
    summary = stack.run(processor="command", process_command=failing)

    # THEN the worker moved it to the DLQ itself, with the attempt count and the last error as its reason
    assert summary.to_dict()["exhausted"] == 1
    assert stack.queue_counts() == (0, 0)
    [dead] = dead_letters(stack)
    assert reason_of(dead) == (
        f"attempt {MAX_RECEIVE_COUNT} of {MAX_RECEIVE_COUNT} (the queue's maxReceiveCount): "
        "ProcessorRetry: python exited with code 1: no teapot"
    )
    assert dead["MessageAttributes"]["kind"]["StringValue"] == "exhausted"
    # AND neither the log nor the reason promises a retry that will not happen
    messages = [line["message"] for line in json_logs()]
    assert "job failed on its last allowed attempt; the message goes to the DLQ" in messages
    assert "exhausted message: moved to the DLQ" in messages
    assert not [line for line in json_logs() if "retried" in json.dumps(line)]


def test_an_attempt_before_the_last_keeps_the_message_for_a_retry(
    stack: Stack, python_command: Callable[[str], str], json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    stack.upload("incoming/flaky.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/flaky.zip")

    summary = stack.run(processor="command", process_command=python_command("raise SystemExit(1)"))

    assert "job failed; it will be retried" in [line["message"] for line in json_logs()]
    assert summary.to_dict()["retried"] == 1
    assert stack.queue_counts() == (0, 1)
    assert dead_letters(stack) == []


# -- §3 versions ---------------------------------------------------------------------------------------------------


def test_an_older_versions_late_event_is_a_skip_and_the_manifest_keeps_the_newer(stack: Stack) -> None:
    # GIVEN a versioned bucket with two versions of a key; the newer one's event arrives and is processed first
    stack.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    older = stack.s3.put_object(Bucket=BUCKET, Key="incoming/v.zip", Body=zip_bytes({"older.txt": b"1"}))
    newer = stack.s3.put_object(Bucket=BUCKET, Key="incoming/v.zip", Body=zip_bytes({"newer.txt": b"2"}))
    stack.send({"Records": [versioned_record("incoming/v.zip", newer, "0055AED6DCD90281E6")]})
    stack.run()
    processed = stack.manifest("incoming/v.zip")

    # WHEN the older version's event arrives late
    stack.send({"Records": [versioned_record("incoming/v.zip", older, "0055AED6DCD90281E5")]})
    summary = stack.run()

    # THEN it is a skip: the manifest and outputs still describe the newer version
    assert summary.to_dict()["skipped"] == 1
    assert stack.manifest("incoming/v.zip") == processed
    assert processed["source"]["version_id"] == newer["VersionId"]
    assert processed["source"]["sequencer"] == "0055AED6DCD90281E6"
    assert inventory_paths(stack, "results/v.zip/inventory.json") == ["newer.txt"]


def test_an_event_without_a_sequencer_processes_the_current_version(stack: Stack) -> None:
    # GIVEN a hand-made message naming the older of two versions, with no sequencer to order it by
    stack.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    older = stack.s3.put_object(Bucket=BUCKET, Key="incoming/h.zip", Body=zip_bytes({"older.txt": b"1"}))
    newer = stack.s3.put_object(Bucket=BUCKET, Key="incoming/h.zip", Body=zip_bytes({"newer.txt": b"2"}))
    stack.send({"Records": [versioned_record("incoming/h.zip", older, None)]})

    # WHEN drained
    stack.run()

    # THEN the current (newest) version is what was processed and recorded
    assert stack.manifest("incoming/h.zip")["source"]["version_id"] == newer["VersionId"]
    assert inventory_paths(stack, "results/h.zip/inventory.json") == ["newer.txt"]


def test_a_rerun_message_processes_an_already_processed_upload_again(stack: Stack) -> None:
    # GIVEN an upload processed once, whose re-sent event is a skip
    stack.upload("incoming/again.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/again.zip")
    stack.run()
    first = stack.manifest("incoming/again.zip")
    stack.enqueue("incoming/again.zip")
    assert stack.run().to_dict()["skipped"] == 1

    # WHEN a record flagged as a re-run arrives
    record = s3_record(BUCKET, "incoming/again.zip")
    record["lew"] = {"rerun": True}
    stack.send({"Records": [record]})
    summary = stack.run()

    # THEN it is processed again, and the manifest is a new one for the same object
    assert summary.to_dict()["processed"] == 1
    second = stack.manifest("incoming/again.zip")
    assert second["source"]["etag"] == first["source"]["etag"]
    assert second["claim"] != first["claim"]


def test_a_deferral_on_the_last_allowed_attempt_is_dead_lettered_naming_the_claims_holder(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN another worker's live claim on an upload, and the upload's message on its last allowed receive
    monkeypatch.setattr(worker.claims, "CONFLICT_WAIT_SECONDS", 0.0)
    stack.upload("incoming/held.zip", zip_bytes({"a.txt": b"a"}))
    holder = {"message_id": "other-message", "task_arn": "arn:other", "lease_seconds": 300, "nonce": "n"}
    claim = claim_key("results/", folder_name("incoming/held.zip", "incoming/"))
    stack.s3.put_object(Bucket=BUCKET, Key=claim, Body=json.dumps(holder).encode())
    stack.enqueue("incoming/held.zip")
    for _ in range(MAX_RECEIVE_COUNT - 1):
        assert stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0)["Messages"]

    # WHEN the worker defers it once more
    summary = stack.run()

    # THEN instead of a deferral SQS would end without a reason, it is in the DLQ naming who held the claim
    assert summary.to_dict()["exhausted"] == 1 and summary.to_dict()["deferred"] == 1
    [dead] = dead_letters(stack)
    assert "arn:other" in reason_of(dead) and "other-message" in reason_of(dead)
    assert stack.queue_counts() == (0, 0)
