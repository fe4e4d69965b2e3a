"""The archive's download (one streamed GET, no HEAD) and the S3 key limit, against moto in process."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.response import StreamingBody
from urllib3.exceptions import ProtocolError

import worker.job
from worker.claims import claim_key
from worker.paths import S3_KEY_LIMIT_BYTES, folder_name, manifest_key

from .conftest import BUCKET, Stack, s3_record, zip_bytes

SCENE = {"scene.pov": b"sphere { 0, 1 }\n", "notes.txt": b"hello\n"}


def _record_s3_calls(stack: Stack) -> list[tuple[str, str]]:
    """Every S3 operation the worker's client makes from now on, with its key."""
    calls: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        key = params.get("url_path", "")
        calls.append((model.name, key))

    stack.s3.meta.events.register("before-call.s3", record)
    return calls


def _replace_archive_body(stack: Stack, key: str, make_body: Callable[[StreamingBody, int], Any]) -> None:
    """Swap the body of the archive's GET answer (not the manifest's) for `make_body(real body, length)`."""

    def swap(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if http_response.url.endswith(f"/{key}") and "Body" in parsed:
            parsed["Body"] = make_body(parsed["Body"], parsed["ContentLength"])

    stack.s3.meta.events.register("after-call.s3.GetObject", swap)


class _SpyBody:
    """A body that records every read (to prove none happened) and whether it was closed."""

    def __init__(self, real: StreamingBody) -> None:
        self.real = real
        self.reads = 0
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        self.reads += 1
        return self.real.read(amt)

    def iter_chunks(self, chunk_size: int = 1024) -> Any:
        self.reads += 1
        return self.real.iter_chunks(chunk_size)

    def close(self) -> None:
        self.closed = True
        self.real.close()


class _BreakingStream(io.RawIOBase):
    """A raw stream that gives its first bytes, then fails as a connection reset mid-body does in urllib3."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, amt: int | None = -1) -> bytes:
        chunk = self._data.read(amt if amt is not None else -1)
        if not chunk:
            raise ProtocolError("Connection broken: ConnectionResetError(104, 'Connection reset by peer')")
        return chunk


def test_download_happy_path_makes_one_get_and_no_head(stack: Stack) -> None:
    # GIVEN an archive and its message
    stack.upload("incoming/one.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/one.zip")
    calls = _record_s3_calls(stack)

    # WHEN the worker drains the queue
    summary = stack.run()

    # THEN the job's S3 requests are the claim, the manifest lookup (which also tells a cancelled queued job), one
    # GET of the archive, one PUT per output and the manifest PUT: no HeadObject, no cancel marker lookup, and no
    # DeleteObject (the manifest names the claim, which stays)
    assert summary.to_dict()["processed"] == 1
    operations = [name for name, _ in calls]
    assert "HeadObject" not in operations
    assert "DeleteObject" not in operations
    assert operations == ["PutObject", "GetObject", "GetObject", "PutObject", "PutObject"]
    gets = [key for name, key in calls if name == "GetObject"]
    assert gets[0].endswith("/manifest.json")
    assert gets[1].endswith("/incoming/one.zip")
    assert not any(key.endswith(".cancel.json") for _, key in calls)
    assert stack.manifest("incoming/one.zip")["status"] == "succeeded"


def test_download_records_the_get_answers_etag_version_and_size(stack: Stack) -> None:
    # GIVEN a message with neither ETag nor size (the manifest must still record the object's)
    data = zip_bytes(SCENE)
    etag = stack.upload("incoming/bare.zip", data)
    stack.send({"Records": [s3_record(BUCKET, "incoming/bare.zip")]})

    stack.run()

    source = stack.manifest("incoming/bare.zip")["source"]
    assert (source["etag"], source["size"], source["version_id"]) == (etag, len(data), None)


def test_download_pins_the_messages_version_id(stack: Stack) -> None:
    # GIVEN a versioned bucket with two versions of a key, and an S3 event (with its sequencer) for the first
    stack.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = stack.s3.put_object(Bucket=BUCKET, Key="incoming/v.zip", Body=zip_bytes({"first.txt": b"1"}))
    stack.upload("incoming/v.zip", zip_bytes({"second.txt": b"2"}))
    record = s3_record(BUCKET, "incoming/v.zip", etag=first["ETag"].strip('"'))
    record["s3"]["object"]["versionId"] = first["VersionId"]
    record["s3"]["object"]["sequencer"] = "0055AED6DCD90281E5"
    stack.send({"Records": [record]})

    stack.run()

    # THEN the first version is what was processed, and recorded with its sequencer
    manifest = stack.manifest("incoming/v.zip")
    assert manifest["source"]["version_id"] == first["VersionId"]
    assert manifest["source"]["sequencer"] == "0055AED6DCD90281E5"
    inventory = json.loads(stack.s3.get_object(Bucket=BUCKET, Key="results/v.zip/inventory.json")["Body"].read())
    assert [member["path"] for member in inventory["members"]] == ["first.txt"]


def test_download_404_on_the_get_is_source_gone_and_the_message_is_deleted(stack: Stack) -> None:
    # GIVEN a message whose object is deleted after it was sent
    stack.upload("incoming/gone.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/gone.zip")
    stack.s3.delete_object(Bucket=BUCKET, Key="incoming/gone.zip")
    calls = _record_s3_calls(stack)

    summary = stack.run()

    # THEN the GET's 404 gives a SourceGone failure manifest, and the message is deleted
    manifest = stack.manifest("incoming/gone.zip")
    assert manifest["error"]["type"] == "SourceGone"
    assert manifest["error"]["permanent"] is True
    assert summary.to_dict()["failed"] == 1
    assert "HeadObject" not in [name for name, _ in calls]
    assert stack.queue_counts() == (0, 0)


def test_download_too_large_by_content_length_reads_no_byte_of_the_body(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a message without a size, for an object larger than MAX_ARCHIVE_BYTES
    stack.upload("incoming/huge.zip", zip_bytes({"a.txt": b"a" * 10_000}))
    stack.send({"Records": [s3_record(BUCKET, "incoming/huge.zip")]})
    spies: list[_SpyBody] = []

    def spy(real: StreamingBody, _length: int) -> _SpyBody:
        spies.append(_SpyBody(real))
        return spies[-1]

    _replace_archive_body(stack, "incoming/huge.zip", spy)
    unpacked: list[Any] = []
    monkeypatch.setattr(worker.job, "unpack", lambda *args, **kwargs: unpacked.append(args))

    # WHEN drained with a 100-byte limit
    summary = stack.run(max_archive_bytes=100)

    # THEN the GET's Content-Length alone decides: a failure manifest, no byte read, the body closed
    manifest = stack.manifest("incoming/huge.zip")
    assert manifest["error"]["type"] == "ArchiveTooLarge"
    assert manifest["source"]["size"] > 100
    assert len(spies) == 1
    assert spies[0].reads == 0
    assert spies[0].closed
    assert unpacked == []
    assert summary.to_dict()["failed"] == 1
    assert stack.queue_counts() == (0, 0)


def test_download_judges_the_size_by_the_object_not_by_a_stale_message(stack: Stack) -> None:
    # GIVEN a late message that still describes a huge, since replaced object (its size is over the limit)
    etag = stack.upload("incoming/replaced.zip", zip_bytes({"a.txt": b"small"}))
    stack.send({"Records": [s3_record(BUCKET, "incoming/replaced.zip", etag="0" * 32, size=10**12)]})

    # WHEN drained with a limit the message's size exceeds but the current object does not
    summary = stack.run(max_archive_bytes=10_000)

    # THEN the current object is processed and recorded, rather than failed on the message's word
    manifest = stack.manifest("incoming/replaced.zip")
    assert manifest["status"] == "succeeded"
    assert manifest["source"]["etag"] == etag
    assert summary.to_dict()["processed"] == 1


@pytest.mark.parametrize(
    "make_body",
    [
        # botocore's own length check: the stream ends early (IncompleteReadError)
        pytest.param(lambda real, length: StreamingBody(io.BytesIO(real.read()[: length // 2]), length), id="short"),
        # a connection reset mid-body (urllib3 ProtocolError → botocore ResponseStreamingError)
        pytest.param(
            lambda real, length: StreamingBody(_BreakingStream(real.read()[: length // 2]), length), id="reset"
        ),
    ],
)
def test_download_body_ending_early_is_transient_and_nothing_is_unpacked(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, make_body: Callable[[StreamingBody, int], Any]
) -> None:
    # GIVEN an archive whose body breaks off halfway
    stack.upload("incoming/cut.zip", zip_bytes({f"f{index}.txt": bytes(range(256)) * 40 for index in range(8)}))
    stack.enqueue("incoming/cut.zip")
    _replace_archive_body(stack, "incoming/cut.zip", make_body)
    unpacked: list[Any] = []
    monkeypatch.setattr(worker.job, "unpack", lambda *args, **kwargs: unpacked.append(args))

    # WHEN drained
    summary = stack.run(visibility_timeout=3)

    # THEN the job is retried later: no manifest, nothing unpacked, the message kept
    assert summary.to_dict()["retried"] == 1
    assert summary.to_dict()["failed"] == 0
    assert unpacked == []
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="results/cut.zip/")
    assert stack.queue_counts() == (0, 1)


def _key_of_bytes(total: int, head: str = "incoming/long/") -> str:
    """An incoming key of exactly `total` UTF-8 bytes, with multi-byte characters."""
    body = "é" * ((total - len(head) - len(".zip")) // 2)
    key = head + body + "x" * (total - len((head + body + ".zip").encode())) + ".zip"
    assert len(key.encode()) == total
    return key


def test_drain_refuses_a_key_whose_manifest_key_is_too_long_and_moves_it_to_the_dlq(stack: Stack) -> None:
    # GIVEN a 1024-byte key: results/long%2F<...>.zip/manifest.json would be 1039 bytes
    key = _key_of_bytes(S3_KEY_LIMIT_BYTES)
    assert len(manifest_key(key, "incoming/", "results/").encode()) == 1039
    stack.upload(key, zip_bytes(SCENE))
    stack.enqueue(key)
    calls = _record_s3_calls(stack)

    # WHEN drained
    summary = stack.run()

    # THEN the message is in the DLQ at once, with a reason naming the problem; no S3 request was made for it
    assert summary.to_dict()["refused"] == 1
    assert summary.to_dict()["retried"] == 0
    assert calls == []
    assert stack.queue_counts() == (0, 0)
    moved = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MessageAttributeNames=["All"])["Messages"]
    reason = moved[0]["MessageAttributes"]["reason"]["StringValue"]
    assert "manifest key" in reason and "1039 bytes" in reason and "1024" in reason


def test_drain_leaves_a_too_long_key_for_the_redrive_policy_without_dlq_url(
    stack: Stack, json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    key = _key_of_bytes(S3_KEY_LIMIT_BYTES)
    stack.upload(key, zip_bytes(SCENE))
    stack.enqueue(key)

    summary = stack.run(dlq_url=None)

    assert summary.to_dict()["refused"] == 1
    assert stack.queue_counts() == (0, 1)  # not deleted: the redrive policy moves it after maxReceiveCount
    lines = [line for line in json_logs() if line["message"].startswith("refused message")]
    assert lines[0]["level"] == "ERROR"
    assert "manifest key" in lines[0]["reason"]


def test_drain_processes_a_key_whose_results_just_fit_with_a_claim_key_that_fits(stack: Stack) -> None:
    # GIVEN the longest key whose manifest key fits: its plain claim key would be 9 bytes too long
    # (the key's one `/` after incoming/ takes three bytes as %2F)
    key = _key_of_bytes(S3_KEY_LIMIT_BYTES - len("results/") - len("/manifest.json") + len("incoming/") - 2)
    manifest = manifest_key(key, "incoming/", "results/")
    assert len(manifest.encode()) == S3_KEY_LIMIT_BYTES
    stack.upload(key, zip_bytes(SCENE))
    stack.enqueue(key)
    puts: list[str] = []
    stack.s3.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"]))

    # WHEN drained (the inventory's own key is then too long: 1 byte past the limit)
    summary = stack.run()

    # THEN the job is settled with a failure manifest naming the output, and every key written fits S3's limit
    assert summary.to_dict()["failed"] == 1
    document = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=manifest)["Body"].read())
    assert document["error"]["type"] == "ResultKeyTooLong"
    assert "'inventory.json'" in document["error"]["message"]
    assert document["outputs"] == []
    assert puts[0] == claim_key("results/", folder_name(key, "incoming/"))
    assert "/sha256/" in puts[0]
    assert all(len(written.encode()) <= S3_KEY_LIMIT_BYTES for written in puts)
    assert stack.queue_counts() == (0, 0)


def test_drain_fails_a_job_whose_output_key_is_too_long_naming_the_output(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN a processor that writes an output with a very long relative path
    stack.upload("incoming/deep.zip", zip_bytes(SCENE))
    stack.enqueue("incoming/deep.zip")
    code = (
        "import os, pathlib; folder = pathlib.Path(os.environ['LEW_OUTPUT_DIR'], *['d' * 200] * 6); "
        "folder.mkdir(parents=True); (folder / 'render.png').write_bytes(b'png'); "
        "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'short.txt').write_text('ok')"
    )

    # WHEN drained
    summary = stack.run(processor="command", process_command=python_command(code))

    # THEN the job fails permanently, the failure manifest names the output, and no output was uploaded
    assert summary.to_dict()["failed"] == 1
    manifest = stack.manifest("incoming/deep.zip")
    assert manifest["status"] == "failed"
    assert manifest["error"]["type"] == "ResultKeyTooLong"
    assert manifest["error"]["permanent"] is True
    assert "render.png" in manifest["error"]["message"]
    listed = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="results/deep.zip/")["Contents"]
    assert [item["Key"] for item in listed] == ["results/deep.zip/manifest.json"]
    assert stack.queue_counts() == (0, 0)
