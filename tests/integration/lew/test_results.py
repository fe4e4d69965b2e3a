"""`lew rerun`, `lew results KEY` and the listing of manifests, against moto with the real worker draining."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lew import cli, dead_letters, ops
from lew.errors import LewError
from lew.rerun import rerun
from tests.integration.worker.conftest import (
    BUCKET,
    MAX_RECEIVE_COUNT,
    Stack,
    make_stack,
    s3_record,
    target_of,
    zip_bytes,
)


@pytest.fixture
def stack(aws: None) -> Stack:
    """A bucket and a work queue with a DLQ, in moto (in process)."""
    return make_stack()


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


# -- dead letters: `lew results KEY` and `lew status` name them, and leave them in the DLQ --------------------------


def dead_letter_by_the_worker(stack: Stack, key: str) -> None:
    """Upload `key` and let its last allowed attempt fail (exit code 1): the worker moves it to the DLQ."""
    stack.upload(key, zip_bytes({"a.txt": b"a"}))
    stack.enqueue(key)
    for _ in range(MAX_RECEIVE_COUNT - 1):
        assert stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0)["Messages"]
    command = shlex.join([sys.executable, "-c", "import sys; print('no teapot', file=sys.stderr); sys.exit(1)"])
    assert stack.run(processor="command", process_command=command).to_dict()["exhausted"] == 1


def test_peek_reads_every_dead_letter_and_leaves_each_visible_in_the_dlq(stack: Stack) -> None:
    # GIVEN a DLQ of 12 messages: 11 S3 events the worker dead-lettered with attributes, and one body of another shape
    for index in range(11):
        stack.sqs.send_message(
            QueueUrl=stack.dlq_url,
            MessageBody=json.dumps({"Records": [s3_record(BUCKET, f"incoming/{index}.zip")]}),
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": f"reason {index}"},
                "kind": {"DataType": "String", "StringValue": "exhausted"},
                "attempts": {"DataType": "Number", "StringValue": "2"},
            },
        )
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="not json")

    # WHEN peeked at, all of them, then the first 3
    everything = dead_letters.peek(stack.sqs, stack.dlq_url, limit=100)
    first = dead_letters.peek(stack.sqs, stack.dlq_url, limit=3)

    # THEN each is read once, with its upload, kind, reason and attempts; and all 12 stay in the DLQ, visible
    assert sorted(letter.reason for letter in everything) == sorted(
        [f"reason {index}" for index in range(11)] + [dead_letters.NO_REASON]
    )
    letter = next(letter for letter in everything if letter.reason == "reason 7")
    assert letter == dead_letters.DeadLetter(((BUCKET, "incoming/7.zip", None),), "exhausted", "reason 7", "2")
    assert letter.names(BUCKET, "incoming/7.zip") and not letter.names(BUCKET, "incoming/1.zip")
    assert len(first) == 3
    assert stack.queue_counts(stack.dlq_url) == (12, 0)


def test_results_names_a_dead_lettered_key_with_its_reason_and_exits_3(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upload whose job failed on every allowed attempt (no manifest), and one not processed yet
    dead_letter_by_the_worker(stack, "incoming/teapot.zip")
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))
    capsys.readouterr()

    # WHEN `lew results` is asked for both
    code = cli.main(["results", "teapot.zip", "later.zip"])

    # THEN the dead letter is named with its kind, attempts and reason; the other is still "no manifest yet"
    lines = capsys.readouterr().out.splitlines()
    assert code == 3
    assert lines[0].startswith(
        f"incoming/teapot.zip: dead-lettered (exhausted, after {MAX_RECEIVE_COUNT} attempts): "
        f"attempt {MAX_RECEIVE_COUNT} of {MAX_RECEIVE_COUNT} (the queue's maxReceiveCount): "
    )
    assert "no teapot" in lines[0]
    assert lines[1] == (
        f"incoming/later.zip: no manifest yet (it will be s3://{BUCKET}/results/later.zip/manifest.json)"
    )
    assert stack.queue_counts(stack.dlq_url) == (1, 0)


def test_results_of_a_key_with_no_outcome_yet_exits_0(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))

    # WHEN `lew results` is asked for a key that has no manifest yet (with --download, too)
    code = cli.main(["results", "queued.zip", "--download", str(tmp_path / "out")])

    # THEN it says so once, in that key's line, not again as an empty table or an empty download
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"incoming/queued.zip: no manifest yet (it will be s3://{BUCKET}/results/queued.zip/manifest.json)"
    ]


def test_status_lists_the_dead_letters_with_their_reasons_and_leaves_them_there(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a dead-lettered upload
    dead_letter_by_the_worker(stack, "incoming/teapot.zip")
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))
    capsys.readouterr()

    # WHEN `lew status` runs (twice: the first must not hide the message from the second)
    assert cli.main(["status"]) == 0
    cli.main(["status"])

    # THEN the DLQ count is followed by a dead letters section naming the key, kind, attempts and reason
    out = capsys.readouterr().out
    assert "DLQ 1" in out
    assert (
        out.count("dead letters (1; lew redrive sends them back)\ninput                kind       attempts  reason\n")
        == 2
    )
    assert f"incoming/teapot.zip  exhausted  {MAX_RECEIVE_COUNT}         attempt {MAX_RECEIVE_COUNT} of" in out
    assert stack.queue_counts(stack.dlq_url) == (1, 0)


# -- which key a user means: one rule (ops.resolve_key) for results, rerun, wait and cancel ---------------------------


def test_resolve_key_takes_full_keys_names_and_urls_of_this_bucket(stack: Stack) -> None:
    # GIVEN an upload outside the input prefix, and one under it
    stack.upload("staging/eb+test v1.zip", zip_bytes({"a.txt": b"a"}))
    stack.upload("incoming/other.zip", zip_bytes({"a.txt": b"a"}))
    target = target_of(stack)

    # WHEN each way of naming an upload is resolved, THEN it is the key meant
    assert ops.resolve_key(stack.s3, target, "staging/eb+test v1.zip") == "staging/eb+test v1.zip"  # exists as given
    assert ops.resolve_key(stack.s3, target, "incoming/other.zip") == "incoming/other.zip"
    assert ops.resolve_key(stack.s3, target, "other.zip") == "incoming/other.zip"
    assert ops.resolve_key(stack.s3, target, "not/yet.zip") == "incoming/not/yet.zip"  # missing: a name under it
    assert ops.resolve_key(stack.s3, target, f"s3://{BUCKET}/incoming/other.zip") == "incoming/other.zip"
    assert ops.resolve_key(stack.s3, target, f"s3://{BUCKET}/staging/eb+test v1.zip") == "staging/eb+test v1.zip"
    # AND a URL of another bucket, or of no object, is refused in one line
    with pytest.raises(LewError) as other:
        ops.resolve_key(stack.s3, target, "s3://someone-else/incoming/other.zip")
    assert str(other.value) == f"s3://someone-else/incoming/other.zip: not in this stack's bucket {BUCKET}"
    with pytest.raises(LewError) as bare:
        ops.resolve_key(stack.s3, target, f"s3://{BUCKET}/")
    assert str(bare.value) == f"s3://{BUCKET}/: names no object (s3://{BUCKET}/KEY)"


def test_results_and_rerun_find_an_upload_outside_the_input_prefix_by_its_key_or_url(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upload outside the input prefix, processed (its results under results/.lew-outside/)
    key = "staging/eb+test v1.zip"
    stack.upload(key, zip_bytes({"a.txt": b"a"}))
    stack.enqueue(key)
    stack.run()
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))
    capsys.readouterr()

    # WHEN `lew results` is asked for it by key and by URL, and `lew rerun` by key
    by_key = cli.main(["results", key])
    by_url = cli.main(["results", f"s3://{BUCKET}/{key}"])
    [queued] = rerun(stack.s3, stack.sqs, target_of(stack), [key])

    # THEN both find its manifest (no "incoming/" prepended), and the rerun queues that very key
    out = capsys.readouterr().out
    assert (by_key, by_url) == (0, 0)
    assert "no manifest yet" not in out
    assert out.count(f"{key}  succeeded") == 2
    assert queued.key == key and queued.manifest_key.startswith("results/.lew-outside/")


def test_results_refuses_a_url_of_another_bucket_in_one_line(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))

    code = cli.main(["results", "s3://someone-else/incoming/other.zip"])

    assert code == 1
    captured = capsys.readouterr()
    assert captured.err == f"lew: error: s3://someone-else/incoming/other.zip: not in this stack's bucket {BUCKET}\n"
    assert captured.out == ""


def test_results_download_into_a_folder_that_cannot_be_created_is_refused_before_the_table(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a processed upload, and a --download folder no one can create (/proc takes no new folders)
    stack.upload("incoming/x.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/x.zip")
    stack.run()
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))
    capsys.readouterr()

    # WHEN `lew results --download` is asked to download there
    code = cli.main(["results", "--download", "/proc/lew-x"])

    # THEN one line says the folder could not be created, and no table was printed first
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err == "lew: error: --download /proc/lew-x: could not be created (No such file or directory)\n"


# -- a key whose results S3 cannot hold: said at once, in one line, and refused before an upload ---------------------

DEEP_KEY = "incoming/" + "ab/" * 250 + "x.zip"  # 764 bytes: S3 takes it; its 1277-byte manifest key it does not


def test_results_and_dead_letters_say_that_a_keys_results_cannot_be_stored(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upload whose results folder (every / written %2F) would make a manifest key S3 refuses
    stack.upload(DEEP_KEY, zip_bytes({"a.txt": b"a"}))
    stack.enqueue(DEEP_KEY)
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))
    capsys.readouterr()

    # WHEN `lew results` is asked for it before a worker saw it, and `lew dead-letters` runs on an empty DLQ
    before = cli.main(["results", DEEP_KEY])
    assert cli.main(["dead-letters"]) == 0

    # THEN one line says its results cannot be stored and where its dead letter will be; no manifest key promised
    lines = capsys.readouterr().out.splitlines()
    assert before == 3
    assert lines[0] == (
        f"{DEEP_KEY[:60]}...{DEEP_KEY[-30:]} (764 bytes): its results cannot be stored: its manifest key would be "
        "1277 bytes, more than S3's limit of 1024 (its results folder is named by the key with each / written %2F); "
        "the worker dead-letters it (`lew dead-letters` shows it)"
    )
    assert "no dead letters" in lines

    # WHEN the worker receives it, then `lew results` and `lew dead-letters` run
    stack.run()
    assert stack.queue_counts(stack.dlq_url) == (1, 0)
    after = cli.main(["results", DEEP_KEY])
    assert cli.main(["dead-letters"]) == 0

    # THEN the dead letter, with the worker's reason, is shown, and left in the DLQ
    out = capsys.readouterr().out
    assert after == 3
    assert out.splitlines()[0].startswith(
        f"{DEEP_KEY[:60]}...{DEEP_KEY[-30:]} (764 bytes): dead-lettered (refused, after 1 attempt): the manifest key"
    )
    assert "dead letters (1; lew redrive sends them back)" in out
    assert stack.queue_counts(stack.dlq_url) == (1, 0)


def test_submit_refuses_a_file_whose_results_cannot_be_stored_and_uploads_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN a stack whose RESULT_PREFIX is so long that a file's manifest key would not fit, and two files
    long_prefix = "results/" + "r" * 1000 + "/"
    monkeypatch.setattr(cli, "_target", lambda _: replace(target_of(stack), result_prefix=long_prefix))
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    for path in (first, second):
        path.write_bytes(zip_bytes({"a.txt": b"a"}))

    # WHEN `lew submit` is given both
    code = cli.main(["submit", str(first), str(second)])

    # THEN one line refuses the first, and nothing is uploaded
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith(f"lew: error: refusing to upload s3://{BUCKET}/incoming/a.zip: its results cannot")
    assert captured.err.endswith("; shorten the key\n") and captured.err.count("\n") == 1
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=BUCKET)


def test_results_show_the_job_parameters_when_a_job_had_some(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upload processed with job parameters, and one without
    monkeypatch.setattr(cli, "_target", lambda _: target_of(stack))
    stack.s3.put_object(
        Bucket=BUCKET, Key="incoming/sized.zip", Body=zip_bytes({"a.txt": b"a"}),
        Metadata={"lew-param-width": "320", "lew-param-height": "240"},
    )  # fmt: skip
    stack.upload("incoming/plain.zip", zip_bytes({"b.txt": b"b"}))
    for key in ("incoming/sized.zip", "incoming/plain.zip"):
        stack.enqueue(key)
    stack.run()
    capsys.readouterr()  # the worker's logs

    # WHEN `lew results` lists both, then only the one without
    assert cli.main(["results", "sized.zip", "plain.zip"]) == 0
    both = capsys.readouterr().out
    assert cli.main(["results", "plain.zip"]) == 0
    plain = capsys.readouterr().out

    # THEN the job's parameters are a column of their own (as a command line gives them), only when a job had any
    sized_row = next(line for line in both.splitlines() if line.startswith("incoming/sized.zip"))
    plain_row = next(line for line in both.splitlines() if line.startswith("incoming/plain.zip"))
    assert "parameters" in both.splitlines()[1]
    assert "height=240 width=320" in sized_row
    assert plain_row.split()[4] == "-"
    assert "parameters" not in plain
    # AND the summary has them typed, as a dict of texts
    summary = ops.read_manifest(stack.s3, BUCKET, "results/sized.zip/manifest.json", "results/")
    assert summary is not None and summary.parameters == {"width": "320", "height": "240"}
