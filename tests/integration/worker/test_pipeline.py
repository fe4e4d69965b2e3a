"""The worker's pipeline against moto in process: from a message to outputs, a manifest and the settlement."""

from __future__ import annotations

import io
import json
import random
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from worker.dispatch import Settlement, handle_message
from worker.drain import drain
from worker.heartbeat import Heartbeat
from worker.job import JobRuntime
from worker.messages import Received
from worker.paths import manifest_key
from worker.processors import InventoryProcessor
from worker.shutdown import Shutdown

from .conftest import BUCKET, Stack, tgz_bytes, zip_bytes

SCENE = {"scene.pov": b"sphere { 0, 1 }\n", "textures/wood.inc": b"// wood\n", "notes.txt": b"hello\n"}


def test_drain_happy_path_writes_outputs_and_manifest_then_deletes(stack: Stack) -> None:
    # GIVEN an archive under the input prefix and its message
    etag = stack.upload("incoming/a/scene.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/a/scene.zip")

    # WHEN the worker drains the queue
    summary = stack.run()

    # THEN the inventory and a success manifest are under results/a%2Fscene.zip/, and the message is gone
    manifest = stack.manifest("incoming/a/scene.zip")
    assert manifest["status"] == "succeeded"
    assert manifest["source"] == {
        "bucket": BUCKET,
        "key": "incoming/a/scene.zip",
        "etag": etag,
        "version_id": None,
        "size": len(zip_bytes(SCENE)),
        "sequencer": None,  # the test's record has none
    }
    assert manifest["outputs"] == [
        {
            "key": "results/a%2Fscene.zip/inventory.json",
            "size": manifest["outputs"][0]["size"],
            "content_type": "application/json",
        }
    ]
    assert manifest["processor"] == "inventory"
    assert manifest["attempt"] == 1
    assert manifest["error"] is None
    assert set(manifest["timings"]) == {"download", "unpack", "process", "upload", "total"}
    assert manifest["started_at"].endswith("Z") and manifest["finished_at"].endswith("Z")
    inventory = json.loads(
        stack.s3.get_object(Bucket=BUCKET, Key="results/a%2Fscene.zip/inventory.json")["Body"].read()
    )
    assert [m["path"] for m in inventory["members"]] == ["notes.txt", "scene.pov", "textures/wood.inc"]
    assert stack.queue_counts() == (0, 0)
    assert summary.to_dict()["processed"] == 1
    assert summary.stopped_by == "drained"


def test_drain_handles_every_record_of_a_body(stack: Stack) -> None:
    # GIVEN one body with two records (a zip and a tgz)
    stack.upload("incoming/one.zip", zip_bytes({"a.txt": b"a"}))
    stack.upload("incoming/two.tgz", tgz_bytes({"b.txt": b"b"}))
    stack.enqueue("incoming/one.zip", "incoming/two.tgz")

    # WHEN drained
    summary = stack.run()

    # THEN both have success manifests and the single message is deleted
    assert stack.manifest("incoming/one.zip")["status"] == "succeeded"
    assert stack.manifest("incoming/two.tgz")["status"] == "succeeded"
    assert summary.to_dict()["processed"] == 2
    assert summary.messages == 1
    assert stack.queue_counts() == (0, 0)


def test_drain_decodes_emulator_encoded_keys(stack: Stack) -> None:
    # GIVEN a key with a space, a non-ASCII letter and folders, notified as a local emulator does (%2F for '/')
    key = "incoming/my folder/scène 1.zip"
    stack.upload(key, zip_bytes({"x.txt": b"x"}))
    stack.enqueue(key, emulator=True)

    # WHEN drained
    stack.run()

    # THEN the key was decoded: results land under the decoded stem
    manifest = stack.manifest("incoming/my folder/scène 1.zip")
    assert manifest["status"] == "succeeded"
    assert manifest["source"]["key"] == key


def test_drain_keeps_the_whole_key_of_a_key_outside_the_input_prefix_in_the_outside_folder(stack: Stack) -> None:
    # GIVEN a message about a key outside INPUT_PREFIX (a hand-made message, or a bucket notifying the queue directly)
    stack.upload("other/x.tar", _tar({"x.txt": b"x"}))
    stack.enqueue("other/x.tar")

    stack.run()

    # THEN its results are under .lew-outside/ with its whole key, apart from incoming/other/x.tar's
    manifest = stack.manifest("other/x.tar")
    assert manifest["status"] == "succeeded"
    assert manifest["outputs"][0]["key"] == "results/.lew-outside/other%2Fx.tar/inventory.json"
    assert manifest_key("incoming/other/x.tar", "incoming/", "results/") == "results/other%2Fx.tar/manifest.json"


def test_drain_skips_a_redelivered_message_without_reprocessing(stack: Stack) -> None:
    # GIVEN an upload already processed once
    stack.upload("incoming/s.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/s.zip")
    stack.run()
    first = stack.manifest("incoming/s.zip")

    # WHEN the same notification arrives again (at-least-once delivery)
    puts: list[str] = []
    stack.s3.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"]))
    stack.enqueue("incoming/s.zip")
    summary = stack.run()

    # THEN it is a logged skip and a deletion: no result is written again (only the claim: its create meets the
    # finished job's claim, which the manifest names, so it is taken over at once; the skip then deletes it)
    assert summary.to_dict()["skipped"] == 1
    assert puts == ["results/.lew-claims/s.zip.claim.json", "results/.lew-claims/s.zip.claim.json"]
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="results/.lew-claims/")
    assert stack.manifest("incoming/s.zip") == first
    assert stack.queue_counts() == (0, 0)


def test_drain_processes_again_when_the_object_was_replaced(stack: Stack) -> None:
    # GIVEN an upload processed once, then overwritten with new content
    stack.upload("incoming/r.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/r.zip")
    stack.run()
    new_etag = stack.upload("incoming/r.zip", zip_bytes({"a.txt": b"a", "b.txt": b"b"}))

    # WHEN the new object's notification arrives
    stack.enqueue("incoming/r.zip")
    summary = stack.run()

    # THEN it is processed, not skipped
    assert summary.to_dict()["processed"] == 1
    assert stack.manifest("incoming/r.zip")["source"]["etag"] == new_etag


def _tar(members: dict[str, bytes], *, symlink: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if symlink:
            link = tarfile.TarInfo("passwd")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            archive.addfile(link)
    return buffer.getvalue()


def _encrypted_zip() -> bytes:
    # The encryption flag (bit 0) on a member, as zip tools set it; the data need not really be encrypted.
    data = bytearray(zip_bytes({"secret.txt": b"x" * 100}))
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):
        offset = data.find(signature)
        flag_offset = offset + (6 if signature == b"PK\x03\x04" else 8)
        data[flag_offset] |= 1
    return bytes(data)


@pytest.mark.parametrize(
    ("key", "data", "error_type"),
    [
        pytest.param("incoming/slip.zip", zip_bytes({"../../evil.txt": b"x"}), "UnsafeArchive", id="zip-slip"),
        pytest.param("incoming/abs.tar", _tar({"/etc/evil": b"x"}), "UnsafeArchive", id="absolute-path"),
        pytest.param("incoming/link.tar", _tar({"a.txt": b"a"}, symlink=True), "UnsafeArchive", id="symlink"),
        pytest.param("incoming/enc.zip", _encrypted_zip(), "ArchiveError", id="encrypted"),
        pytest.param("incoming/junk.zip", b"this is not a zip file at all", "ArchiveError", id="not-an-archive"),
        pytest.param(
            "incoming/cut.tgz",
            tgz_bytes({"a.bin": random.Random(0).randbytes(50_000)})[:20_000],
            "ArchiveError",
            id="truncated",
        ),
        pytest.param("incoming/notes.txt", b"plain text", "UnsupportedInput", id="unsupported-suffix"),
    ],
)
def test_drain_writes_a_failure_manifest_and_deletes_on_a_bad_archive(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, key: str, data: bytes, error_type: str
) -> None:
    # GIVEN a hostile or broken upload, and job folders made in an empty folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stack.upload(key, data)
    stack.enqueue(key)

    # WHEN drained
    summary = stack.run()

    # THEN a failure manifest says why, the message is deleted, and nothing escaped the job folder
    manifest = stack.manifest(key)
    assert manifest["status"] == "failed"
    assert manifest["error"]["type"] == error_type
    assert manifest["error"]["permanent"] is True
    assert manifest["outputs"] == []
    assert summary.to_dict()["failed"] == 1
    assert stack.queue_counts() == (0, 0)
    assert list(tmp_path.iterdir()) == []


def test_drain_rejects_an_archive_above_max_archive_bytes_by_its_content_length(stack: Stack) -> None:
    stack.upload("incoming/big.zip", zip_bytes({"a.txt": b"a" * 10_000}))
    stack.enqueue("incoming/big.zip")
    gets: list[str] = []
    stack.s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: gets.append(params["Key"]))

    stack.run(max_archive_bytes=100)

    manifest = stack.manifest("incoming/big.zip")
    assert manifest["error"]["type"] == "ArchiveTooLarge"
    assert gets.count("incoming/big.zip") == 1  # one GET, refused by its Content-Length (no HEAD, no retry)
    assert stack.queue_counts() == (0, 0)


def test_drain_rejects_archives_over_the_unpack_limits(stack: Stack) -> None:
    stack.upload("incoming/many.zip", zip_bytes({f"f{i}.txt": b"x" for i in range(20)}))
    stack.upload("incoming/bomb.zip", zip_bytes({"zeros.bin": b"\0" * 5_000_000}))
    stack.enqueue("incoming/many.zip", "incoming/bomb.zip")

    stack.run(max_members=10, max_unpacked_bytes=1_000_000)

    assert stack.manifest("incoming/many.zip")["error"]["type"] == "UnsafeArchive"
    assert stack.manifest("incoming/bomb.zip")["error"]["type"] == "UnsafeArchive"
    assert stack.queue_counts() == (0, 0)


def test_drain_writes_a_failure_manifest_when_the_source_is_gone(stack: Stack) -> None:
    # GIVEN a notification for an object deleted since
    stack.enqueue("incoming/gone.zip")

    stack.run()

    manifest = stack.manifest("incoming/gone.zip")
    assert manifest["status"] == "failed"
    assert manifest["error"]["type"] == "SourceGone"
    assert stack.queue_counts() == (0, 0)


def test_drain_settles_a_processor_rejection_as_permanent(stack: Stack, python_command: Callable[[str], str]) -> None:
    stack.upload("incoming/rej.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/rej.zip")

    stack.run(processor="command", process_command=python_command("print('bad input'); raise SystemExit(3)"))

    manifest = stack.manifest("incoming/rej.zip")
    assert manifest["error"]["type"] == "ProcessorRejected"
    assert "bad input" in manifest["processor_log"]
    assert stack.queue_counts() == (0, 0)


def test_drain_settles_a_processor_timeout_as_permanent(stack: Stack, python_command: Callable[[str], str]) -> None:
    stack.upload("incoming/slow.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/slow.zip")

    stack.run(processor="command", process_command=python_command("import time; time.sleep(30)"), job_timeout=0.5)

    manifest = stack.manifest("incoming/slow.zip")
    assert manifest["error"]["type"] == "ProcessorTimeout"
    assert stack.queue_counts() == (0, 0)


def test_drain_uploads_command_outputs_with_content_types(stack: Stack, python_command: Callable[[str], str]) -> None:
    # GIVEN a command that writes two files into its output folder (given as {output_dir})
    stack.upload("incoming/cmd.zip", zip_bytes({"in.txt": b"data"}))
    stack.enqueue("incoming/cmd.zip")
    code = (
        "import pathlib, sys; out = pathlib.Path(sys.argv[1]); (out / 'sub').mkdir(); "
        "(out / 'result.csv').write_text(pathlib.Path('in.txt').read_text()); "
        "(out / 'sub' / 'pic.png').write_bytes(b'\\x89PNG\\r\\n\\x1a\\n')"
    )

    stack.run(processor="command", process_command=python_command(code) + " {output_dir}")

    outputs = {o["key"]: o for o in stack.manifest("incoming/cmd.zip")["outputs"]}
    assert outputs["results/cmd.zip/result.csv"]["content_type"] == "text/csv"
    assert outputs["results/cmd.zip/sub/pic.png"]["content_type"] == "image/png"
    head = stack.s3.head_object(Bucket=BUCKET, Key="results/cmd.zip/sub/pic.png")
    assert head["ContentType"] == "image/png"
    body = stack.s3.get_object(Bucket=BUCKET, Key="results/cmd.zip/result.csv")["Body"].read()
    assert body == b"data"


def test_drain_keeps_a_transient_processor_failure_with_a_backoff(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN a processor that exits 1 (retry)
    stack.upload("incoming/flaky.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/flaky.zip")

    # WHEN drained with a 3 s visibility timeout (so the backoff is 1.5..3 s)
    summary = stack.run(
        processor="command", process_command=python_command("raise SystemExit(1)"), visibility_timeout=3
    )

    # THEN no manifest, the message is hidden for the backoff, then comes back as a second attempt
    assert summary.to_dict()["retried"] == 1
    with pytest.raises(stack.s3.exceptions.NoSuchKey):
        stack.manifest("incoming/flaky.zip")
    assert stack.queue_counts() == (0, 1)
    assert stack.sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0).get("Messages") is None
    time.sleep(3.2)
    again = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, WaitTimeSeconds=0, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_drain_keeps_the_message_when_s3_fails_with_a_5xx(stack: Stack) -> None:
    # GIVEN S3 answering 500 to every PutObject (after botocore's own retries)
    stack.upload("incoming/s5.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/s5.zip")

    stack.fail_puts("results/", 500, "InternalError")

    # WHEN drained
    summary = stack.run(visibility_timeout=3)

    # THEN the job is retried later: no manifest, the message is kept and hidden
    assert summary.to_dict()["retried"] == 1
    assert stack.queue_counts() == (0, 1)


def test_drain_never_replaces_a_success_manifest_with_a_failure(stack: Stack) -> None:
    # GIVEN a success manifest for an object, which is then deleted
    stack.upload("incoming/keep.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/keep.zip")
    stack.run()
    before = stack.manifest("incoming/keep.zip")

    # WHEN a duplicate notification arrives without an ETag, after the object was deleted
    stack.s3.delete_object(Bucket=BUCKET, Key="incoming/keep.zip")
    body = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": BUCKET},
                    "object": {"key": "incoming/keep.zip", "eTag": before["source"]["etag"]},
                },
            }
        ]
    }
    stack.send(body)
    stack.run()

    # THEN the success manifest stands
    assert stack.manifest("incoming/keep.zip") == before


def test_drain_deletes_s3_test_events(stack: Stack) -> None:
    stack.send({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})

    summary = stack.run()

    assert stack.queue_counts() == (0, 0)
    assert summary.to_dict()["processed"] == 0


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        pytest.param("not json {", "not JSON", id="not-json"),
        pytest.param(json.dumps({"hello": "world"}), "no 'Records'", id="no-records"),
        pytest.param(json.dumps({"Records": [{"s3": {"bucket": {}}}]}), "missing field", id="bad-record"),
    ],
)
def test_drain_moves_poison_to_the_dlq_with_its_reason(stack: Stack, body: str, reason_part: str) -> None:
    stack.send(body)

    summary = stack.run()

    assert summary.to_dict()["poison"] == 1
    assert stack.queue_counts() == (0, 0)
    moved = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert moved[0]["Body"] == body
    assert reason_part in moved[0]["MessageAttributes"]["reason"]["StringValue"]
    assert moved[0]["MessageAttributes"]["source_queue"]["StringValue"] == stack.queue_url


def test_drain_leaves_poison_for_the_redrive_policy_without_dlq_url(
    stack: Stack, json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    stack.send("garbage")

    summary = stack.run(dlq_url=None)

    assert summary.to_dict()["poison"] == 1
    assert stack.queue_counts() == (0, 1)  # not deleted: it reappears and the redrive policy ends it
    poison_lines = [line for line in json_logs() if line["message"].startswith("poison message")]
    assert poison_lines[0]["reason"].startswith("body is not JSON")
    assert poison_lines[0]["level"] == "ERROR"
    assert stack.queue_counts(stack.dlq_url) == (0, 0)


def test_drain_logs_job_context_on_every_job_line(stack: Stack, json_logs: Callable[[], list[dict[str, Any]]]) -> None:
    stack.upload("incoming/log.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/log.zip")

    stack.run()

    lines = json_logs()
    job_lines = [line for line in lines if line["message"] in {"unpacked", "job succeeded"}]
    assert len(job_lines) == 2
    for line in job_lines:
        assert line["key"] == "incoming/log.zip"
        assert line["bucket"] == BUCKET
        assert line["attempt"] == 1
        assert line["message_id"]
    settled = next(line for line in lines if line["message"] == "message settled")
    assert "key" not in settled  # job keys are removed once the job is over
    assert settled["message_id"] == job_lines[0]["message_id"]


def test_drain_with_a_batch_processes_every_message_of_it(stack: Stack) -> None:
    # GIVEN three uploads, and a worker receiving up to ten messages at a time
    for name in ("b1", "b2", "b3"):
        stack.upload(f"incoming/{name}.zip", zip_bytes({"a.txt": name.encode()}))
        stack.enqueue(f"incoming/{name}.zip")
    receives: list[int] = []
    stack.sqs.meta.events.register(
        "before-parameter-build.sqs.ReceiveMessage", lambda params, **_: receives.append(params["MaxNumberOfMessages"])
    )

    # WHEN drained
    summary = stack.run(receive_batch_size=10)

    # THEN all three are done and deleted
    assert summary.to_dict()["processed"] == 3
    assert set(receives) == {10}
    assert stack.queue_counts() == (0, 0)


def test_drain_stop_releases_the_unstarted_messages_of_a_batch(stack: Stack) -> None:
    # GIVEN three messages received in one batch, and a stop requested while the first one is handled
    for name in ("s1", "s2", "s3"):
        stack.upload(f"incoming/{name}.zip", zip_bytes({"a.txt": b"a"}))
        stack.enqueue(f"incoming/{name}.zip")
    settings = replace(stack.settings, receive_batch_size=10, wait_time_seconds=1)
    shutdown = Shutdown(grace_seconds=30)
    runtime = JobRuntime(s3=stack.s3, settings=settings, processor=InventoryProcessor(), abort=shutdown.abort)
    heartbeat = Heartbeat(stack.sqs, settings.queue_url, settings.visibility_timeout, settings.heartbeat_interval)

    def handle(message: Received) -> Settlement:
        shutdown.request_stop("SIGTERM")
        return handle_message(message, runtime, stack.sqs, settings.queue_url, settings.dlq_url)

    # WHEN drained
    summary = drain(stack.sqs, settings, handle, shutdown, heartbeat)
    shutdown.cancel_timer()

    # THEN the first finished within the grace, and the other two are visible again at once
    assert summary.to_dict()["processed"] == 1
    assert summary.stopped_by == "signal SIGTERM"
    assert stack.queue_counts() == (2, 0)
    assert heartbeat.held == []
