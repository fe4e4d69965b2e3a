"""The in-flight claim against moto: at most one worker processes an upload at a time, whatever the duplicates."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import worker.claims
from worker.claims import Busy, Holder, acquire, claim_key, is_stale
from worker.dispatch import handle_message
from worker.drain import Summary, drain
from worker.heartbeat import Heartbeat
from worker.job import JobRuntime, Outcome, run_job
from worker.manifest import utcnow
from worker.messages import Job
from worker.paths import folder_name
from worker.processors import InventoryProcessor, ProcessorContext, ProcessResult, load_processor
from worker.settings import Settings
from worker.shutdown import Shutdown

from .conftest import BUCKET, REGION, Stack, s3_record, wait_until, zip_bytes

CLAIMS = "results/.lew-claims/"


def claim_objects(stack: Stack) -> list[str]:
    """The keys in the claims folder."""
    return [item["Key"] for item in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=CLAIMS).get("Contents", [])]


def record_claim_calls(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    """Every PutObject and DeleteObject on a claim, as (operation, parameters), in order."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("Key", "").startswith(CLAIMS):
            calls.append((model.name, dict(params)))

    stack.s3.meta.events.register("provide-client-params.s3.PutObject", record)
    stack.s3.meta.events.register("provide-client-params.s3.DeleteObject", record)
    return calls


def slow_command(python_command: Callable[[str], str], runs: Path, seconds: float) -> str:
    """A PROCESS_COMMAND that notes each run in `runs`, works for `seconds`, then writes one output."""
    return python_command(
        "import os, pathlib, time; "
        f"pathlib.Path({str(runs)!r}).open('a').write('ran\\n'); "
        f"time.sleep({seconds}); "
        "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'out.txt').write_text('done')"
    )


@dataclass
class Worker:
    """One worker's parts, wired as `python -m worker` wires them (the heartbeat refreshes the runtime's claims)."""

    settings: Settings
    shutdown: Shutdown
    runtime: JobRuntime
    heartbeat: Heartbeat

    def drain(self, stack: Stack) -> Summary:
        def handle(message: Any) -> Any:
            return handle_message(message, self.runtime, stack.sqs, self.settings.queue_url, self.settings.dlq_url)

        try:
            with self.heartbeat.running():
                return drain(stack.sqs, self.settings, handle, self.shutdown, self.heartbeat)
        finally:
            self.shutdown.cancel_timer()


def make_worker(stack: Stack, **overrides: Any) -> Worker:
    settings = replace(stack.settings, **overrides)
    shutdown = Shutdown(settings.stop_grace_seconds)
    runtime = JobRuntime(s3=stack.s3, settings=settings, processor=load_processor(settings), abort=shutdown.abort)
    heartbeat = Heartbeat(
        stack.sqs, settings.queue_url, settings.visibility_timeout, settings.heartbeat_interval, runtime.claims
    )
    return Worker(settings, shutdown, runtime, heartbeat)


@contextmanager
def draining_in_background(worker: Worker, stack: Stack) -> Iterator[Callable[[], Summary]]:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(worker.drain, stack)
        yield lambda: future.result(timeout=60)


def claim_of(stem: str) -> str:
    """The claim key of the upload `incoming/<stem>.zip`."""
    return claim_key("results/", folder_name(f"incoming/{stem}.zip", "incoming/"))


def claim_document(stack: Stack, stem: str) -> dict[str, Any]:
    """The claim object of the upload `incoming/<stem>.zip`, as stored."""
    document: dict[str, Any] = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=claim_of(stem))["Body"].read())
    return document


def assert_claim_left_for_the_next_job(stack: Stack, stem: str) -> None:
    """The job's claim is still there, and its manifest names it: the next contender takes it over at once."""
    assert claim_objects(stack) == [claim_of(stem)]
    assert stack.manifest(f"incoming/{stem}.zip")["claim"] == claim_document(stack, stem)["nonce"]


def put_foreign_claim(stack: Stack, stem: str, **document: Any) -> str:
    """A claim written by another worker; return its ETag."""
    body = {"message_id": "other-message", "task_arn": "arn:other", "lease_seconds": 30, **document}
    key = claim_of(stem)
    etag: str = stack.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())["ETag"]
    return etag


@pytest.mark.slow
def test_two_workers_given_the_same_object_twice_process_it_once(
    stack: Stack, python_command: Callable[[str], str], tmp_path: Path
) -> None:
    # GIVEN one upload announced twice (S3's at-least-once delivery), and a job of 2 s
    runs = tmp_path / "runs.txt"
    stack.upload("incoming/short.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/short.zip")
    stack.enqueue("incoming/short.zip")
    overrides = {"processor": "command", "process_command": slow_command(python_command, runs, 2)}
    workers = [make_worker(stack, **overrides), make_worker(stack, **overrides)]

    # WHEN two workers drain the queue at the same time, one message each
    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda w: w.drain(stack), workers))

    # THEN the processor ran once: the second worker waited for the first one's claim, then found its manifest
    assert runs.read_text() == "ran\n"
    outcomes = sum((summary.outcomes for summary in summaries), Counter[str]())
    assert outcomes == Counter(succeeded=1, skipped=1)
    assert stack.manifest("incoming/short.zip")["status"] == "succeeded"
    assert stack.queue_counts() == (0, 0)
    assert claim_objects(stack) == []


@pytest.mark.slow
def test_a_duplicate_of_a_job_longer_than_the_patience_is_deferred_then_skipped(
    stack: Stack,
    python_command: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN one upload announced twice, a processor that works for 4 s (longer than the 3 s visibility
    # timeout), and workers that give a live claim 1 s before deferring (15 s in production)
    monkeypatch.setattr(worker.claims, "CONFLICT_WAIT_SECONDS", 1.0)
    runs = tmp_path / "runs.txt"
    etag = stack.upload("incoming/twice.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/twice.zip")
    stack.enqueue("incoming/twice.zip")
    overrides = {
        "processor": "command",
        "process_command": slow_command(python_command, runs, 4),
        "visibility_timeout": 3,
        "wait_time_seconds": 1,
    }
    workers = [make_worker(stack, **overrides), make_worker(stack, **overrides)]

    # WHEN two workers drain the queue at the same time, one message each
    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda w: w.drain(stack), workers))

    # THEN the processor ran once, and the other worker deferred its message instead of processing it
    assert runs.read_text() == "ran\n"
    outcomes = sum((summary.outcomes for summary in summaries), Counter[str]())
    assert (outcomes["succeeded"], outcomes["deferred"]) == (1, 1)
    assert stack.manifest("incoming/twice.zip")["status"] == "succeeded"
    assert stack.manifest("incoming/twice.zip")["source"]["etag"] == etag
    deferring = [line for line in json_logs() if line["message"].startswith("another worker is processing")]
    assert len(deferring) == 1 and deferring[0]["holder_etag"] == etag
    assert stack.queue_counts() == (0, 1)
    # AND the finished job left its claim, named by its manifest
    assert_claim_left_for_the_next_job(stack, "twice")

    # WHEN the deferred message comes back
    wait_until(lambda: stack.queue_counts() == (1, 0), "the deferred message to come back", timeout=20)
    summary = stack.run()

    # THEN it takes the finished job's claim over, skips, and deletes the claim; still one run, one manifest
    assert summary.to_dict()["skipped"] == 1
    assert runs.read_text() == "ran\n"
    assert stack.queue_counts() == (0, 0)
    assert stack.queue_counts(stack.dlq_url) == (0, 0)
    assert claim_objects(stack) == []


@pytest.mark.slow
def test_heartbeat_refreshes_the_claim_of_a_running_job(
    stack: Stack, python_command: Callable[[str], str], tmp_path: Path
) -> None:
    # GIVEN a job that outlasts its 3 s visibility timeout (and so its claim's lease)
    calls = record_claim_calls(stack)
    stack.upload("incoming/long.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/long.zip")
    worker_ = make_worker(
        stack,
        processor="command",
        process_command=slow_command(python_command, tmp_path / "runs", 6),
        visibility_timeout=3,
    )
    with draining_in_background(worker_, stack) as summary:
        wait_until((tmp_path / "runs").exists, "the job to start", timeout=10)
        time.sleep(4)  # past the lease: only the refreshes keep the claim alive
        # WHEN another worker, with a duplicate, tries to claim the same upload
        other_s3 = boto3.client("s3", region_name=REGION)  # its own client: its calls are not recorded
        holder = Holder("duplicate", None, None, None)
        key = claim_of("long")
        contender = acquire(other_s3, BUCKET, key, holder, 3, abort=threading.Event(), patience=0)
        # THEN the claim is live (refreshed on time), so the contender is told to wait
        assert isinstance(contender, Busy)
        assert not is_stale(contender.remaining, 3)
        assert summary().to_dict()["processed"] == 1

    # AND the claim was created once, refreshed with If-Match at the heartbeat's cadence, and left to the next job
    operations = [(name, "IfNoneMatch" in params, "IfMatch" in params) for name, params in calls]
    puts = [entry for entry in operations if entry[0] == "PutObject"]
    assert puts[0] == ("PutObject", True, False)
    assert len(puts) >= 4 and all(entry == ("PutObject", False, True) for entry in puts[1:])
    assert "DeleteObject" not in [name for name, _, _ in operations]
    assert_claim_left_for_the_next_job(stack, "long")


def test_expired_claim_of_a_dead_worker_is_taken_over(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a claim left by a worker that died (it was never refreshed: by S3's clock its lease ran out long ago)
    stack.upload("incoming/orphan.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/orphan.zip")
    put_foreign_claim(stack, "orphan", lease_seconds=30)
    later = utcnow() + timedelta(minutes=5)
    monkeypatch.setattr(worker.claims, "utcnow", lambda: later)  # in process, moto's answers carry no Date

    # WHEN a worker receives the upload's message
    summary = stack.run()

    # THEN it takes the claim over, processes the upload, and its manifest names the claim it took over
    assert summary.to_dict()["processed"] == 1
    assert stack.manifest("incoming/orphan.zip")["status"] == "succeeded"
    assert any(line["message"].startswith("took over an expired claim") for line in json_logs())
    assert_claim_left_for_the_next_job(stack, "orphan")


def test_claim_about_to_expire_is_waited_for_without_spending_a_receive(stack: Stack) -> None:
    # GIVEN the claim of a worker that stopped refreshing it: its 1 s lease (+ the margin) runs out in a few seconds
    stack.upload("incoming/soon.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/soon.zip")
    put_foreign_claim(stack, "soon", lease_seconds=1)
    time.sleep(2.5)
    started = time.monotonic()

    # WHEN a worker receives the message
    summary = stack.run()

    # THEN it waits for the claim to expire, takes it over and processes the upload on this very receive
    assert summary.to_dict()["processed"] == 1
    assert stack.manifest("incoming/soon.zip")["attempt"] == 1
    assert time.monotonic() - started >= 1
    assert_claim_left_for_the_next_job(stack, "soon")


def test_losing_the_race_for_an_expired_claim_defers_the_message(stack: Stack) -> None:
    # GIVEN an expired-looking claim whose holder refreshes it while a contender waits for it to expire
    key = claim_of("race")
    put_foreign_claim(stack, "race", lease_seconds=1)
    time.sleep(2.5)  # it has missed its refreshes: a contender waits the few seconds until it expires

    def holder_refreshes_while_we_wait(seconds: float) -> bool:
        put_foreign_claim(stack, "race", lease_seconds=30, refreshed="again")
        return False

    # WHEN the contender tries to take it over
    result = acquire(
        stack.s3,
        BUCKET,
        key,
        Holder("m", None, None, None),
        30,
        abort=threading.Event(),
        patience=0,
        sleep=holder_refreshes_while_we_wait,
    )

    # THEN its conditional PUT fails (the ETag changed), and it finds a live claim: it must wait
    assert isinstance(result, Busy)
    assert result.holder["holder_message_id"] == "other-message"
    body = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert body["refreshed"] == "again"


def test_claim_is_written_with_its_holder_and_left_named_by_the_manifest_after_success(stack: Stack) -> None:
    # GIVEN an upload, and a record of the claim's calls
    calls = record_claim_calls(stack)
    etag = stack.upload("incoming/c/ok.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/c/ok.zip")

    # WHEN drained
    summary = stack.run()

    # THEN one conditional PUT created the claim, with what an operator needs, and nothing deleted it
    assert summary.to_dict()["processed"] == 1
    assert [(name, params["Key"]) for name, params in calls] == [("PutObject", claim_of("c/ok"))]
    put = calls[0][1]
    assert put["IfNoneMatch"] == "*"
    document = json.loads(put["Body"])
    assert document["source"] == {"key": "incoming/c/ok.zip", "etag": etag, "version_id": None}
    assert document["lease_seconds"] == stack.settings.visibility_timeout
    assert document["message_id"]
    assert {"task_arn", "claimed_at", "expires_at", "refreshed_at"} <= set(document)
    assert stack.manifest("incoming/c/ok.zip")["claim"] == document["nonce"]
    assert_claim_left_for_the_next_job(stack, "c/ok")


def test_claim_is_left_named_by_the_manifest_after_a_permanent_failure(stack: Stack) -> None:
    stack.upload("incoming/bad.zip", b"not a zip")
    stack.enqueue("incoming/bad.zip")

    summary = stack.run()

    assert summary.to_dict()["failed"] == 1
    assert stack.manifest("incoming/bad.zip")["status"] == "failed"
    assert_claim_left_for_the_next_job(stack, "bad")


def test_a_duplicate_after_the_job_finished_is_a_skip_on_the_same_receive_without_waiting(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a finished job whose claim is still there (as when its worker died before deleting the message), and
    # workers with no patience for a live claim: any wait would be a deferral
    monkeypatch.setattr(worker.claims, "CONFLICT_WAIT_SECONDS", 0.0)
    stack.upload("incoming/dup.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/dup.zip")
    stack.run()
    first = stack.manifest("incoming/dup.zip")
    assert_claim_left_for_the_next_job(stack, "dup")

    # WHEN the same notification arrives again
    stack.enqueue("incoming/dup.zip")
    summary = stack.run()

    # THEN the finished job's claim is taken over at once, the manifest makes it a skip, and the claim is deleted
    counts = summary.to_dict()
    assert (counts["skipped"], counts["deferred"], counts["processed"]) == (1, 0, 0)
    assert any(line["message"] == "took over the claim of a finished job" for line in json_logs())
    assert stack.manifest("incoming/dup.zip") == first
    assert stack.queue_counts() == (0, 0)
    assert claim_objects(stack) == []


def test_a_new_upload_of_a_key_right_after_its_finished_job_is_processed_at_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a finished job whose claim is still there, and workers with no patience for a live claim
    monkeypatch.setattr(worker.claims, "CONFLICT_WAIT_SECONDS", 0.0)
    stack.upload("incoming/again.zip", zip_bytes({"a.txt": b"first"}))
    stack.enqueue("incoming/again.zip")
    stack.run()
    first = stack.manifest("incoming/again.zip")

    # WHEN the key is uploaded again, with other content, and its message arrives
    etag = stack.upload("incoming/again.zip", zip_bytes({"a.txt": b"second"}))
    stack.enqueue("incoming/again.zip")
    summary = stack.run()

    # THEN it is processed on this receive, under a new claim that its own manifest names
    assert summary.to_dict()["processed"] == 1
    second = stack.manifest("incoming/again.zip")
    assert second["source"]["etag"] == etag != first["source"]["etag"]
    assert second["claim"] != first["claim"]
    assert_claim_left_for_the_next_job(stack, "again")


def _finished_claim(stack: Stack, stem: str) -> tuple[str, str]:
    """A job on `stem` that finished: its claim left in place and named by its manifest. (key, nonce)."""
    stack.upload(f"incoming/{stem}.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue(f"incoming/{stem}.zip")
    stack.run()
    assert_claim_left_for_the_next_job(stack, stem)
    return claim_of(stem), claim_document(stack, stem)["nonce"]


def test_two_duplicates_racing_for_a_finished_claim_exactly_one_takes_it(stack: Stack) -> None:
    # GIVEN a finished job's claim, and two duplicates that both read it and see its job is over
    key, nonce = _finished_claim(stack, "race2")
    results: dict[str, Any] = {}

    def second_duplicate_wins_meanwhile(seen: str) -> bool:
        # The first duplicate is between its read of the claim and its If-Match PUT when the second one runs.
        if "second" not in results:
            results["second"] = acquire(
                stack.s3,
                BUCKET,
                key,
                Holder("second", None, None, None),
                30,
                abort=threading.Event(),
                patience=0,
                finished=lambda other: other == nonce,
            )
        return seen == nonce

    # WHEN both try to take it over
    results["first"] = acquire(
        stack.s3,
        BUCKET,
        key,
        Holder("first", None, None, None),
        30,
        abort=threading.Event(),
        patience=0,
        finished=second_duplicate_wins_meanwhile,
    )

    # THEN exactly one holds the claim: the first one's If-Match fails, and it finds the winner's live claim
    assert not isinstance(results["second"], Busy)
    assert isinstance(results["first"], Busy)
    assert results["first"].holder["holder_message_id"] == "second"
    assert claim_document(stack, "race2")["nonce"] == results["second"].nonce


def test_a_refresh_racing_the_end_of_the_job_only_makes_the_contender_read_the_claim_again(stack: Stack) -> None:
    # GIVEN a finished job's claim, whose worker's heartbeat refreshes it once more just after the manifest
    key, nonce = _finished_claim(stack, "late")
    holder_claim = worker.claims.Claim(
        s3=stack.s3, bucket=BUCKET, key=key, holder=Holder("holder", None, None, None), lease_seconds=30, nonce=nonce
    )
    holder_claim.etag = stack.s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
    asked: list[str] = []

    def refreshed_meanwhile(seen: str) -> bool:
        if not asked:
            holder_claim.refresh()  # the same nonce, a new ETag: the contender's If-Match fails
        asked.append(seen)
        return seen == nonce

    # WHEN a duplicate tries to take it over
    result = acquire(
        stack.s3,
        BUCKET,
        key,
        Holder("dup", None, None, None),
        30,
        abort=threading.Event(),
        patience=0,
        finished=refreshed_meanwhile,
    )

    # THEN it reads the refreshed claim, still finished, and takes it over on the second try
    assert not isinstance(result, Busy)
    assert asked == [nonce, nonce]
    assert claim_document(stack, "late")["nonce"] == result.nonce


def test_claim_is_deleted_after_a_transient_failure(stack: Stack, python_command: Callable[[str], str]) -> None:
    stack.upload("incoming/flaky.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/flaky.zip")

    summary = stack.run(processor="command", process_command=python_command("raise SystemExit(1)"))

    assert summary.to_dict()["retried"] == 1
    # the claim is gone, so that the retry is not held up by it; the retry record (for lew wait) stays beside it
    assert claim_objects(stack) == [f"{CLAIMS}flaky.zip.retry.json"]


def test_claim_is_deleted_when_a_stop_aborts_the_job(stack: Stack) -> None:
    # GIVEN a processor during which the stop grace runs out
    stack.upload("incoming/stop.zip", zip_bytes({"a.txt": b"a"}))
    abort = threading.Event()

    class AbortedMidway:
        name = "aborted-midway"

        def __call__(self, context: ProcessorContext) -> ProcessResult:
            abort.set()
            return InventoryProcessor()(context)

    runtime = JobRuntime(s3=stack.s3, settings=stack.settings, processor=AbortedMidway(), abort=abort)
    job = Job(BUCKET, "incoming/stop.zip")

    # WHEN the job runs
    result = run_job(job, 1, runtime, message_id="m")

    # THEN it is aborted (its message is released) and its claim is gone, so another worker can start at once
    assert result.outcome is Outcome.ABORTED
    assert claim_objects(stack) == []
    assert runtime.claims.keys == []


def test_transient_error_on_the_claim_keeps_the_message_with_a_backoff(
    stack: Stack, json_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN S3 answering 503 to every PUT of a claim (after botocore's own retries)
    stack.upload("incoming/busy-s3.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/busy-s3.zip")

    stack.fail_puts("results/.lew-claims/", 503, "SlowDown")

    # WHEN drained
    summary = stack.run(visibility_timeout=3)

    # THEN nothing was processed, the message is kept and hidden for a backoff, and the log says why
    assert summary.to_dict()["retried"] == 1
    assert stack.queue_counts() == (0, 1)
    with pytest.raises(stack.s3.exceptions.NoSuchKey):
        stack.manifest("incoming/busy-s3.zip")
    assert any(line["message"] == "could not claim the upload; it will be retried" for line in json_logs())
    settled = [line for line in json_logs() if line["message"] == "message settled"]
    assert settled[-1]["action"] == "retry" and 1 <= settled[-1]["delay"] <= 3


@pytest.mark.slow
def test_a_job_whose_claim_is_taken_over_stops_and_leaves_the_new_claim(
    stack: Stack, python_command: Callable[[str], str], tmp_path: Path
) -> None:
    # GIVEN a running job (3 s visibility timeout: the heartbeat refreshes its claim every second)
    stack.upload("incoming/taken.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/taken.zip")
    worker_ = make_worker(
        stack,
        processor="command",
        process_command=slow_command(python_command, tmp_path / "runs", 3),
        visibility_timeout=3,
    )
    with draining_in_background(worker_, stack) as summary:
        wait_until((tmp_path / "runs").exists, "the job to start", timeout=10)
        # WHEN another worker takes its claim over (as if this one had gone unrefreshed for a whole lease)
        put_foreign_claim(stack, "taken", lease_seconds=300)
        result = summary()

    # THEN the job stops at its next step without a manifest, its message is deferred, and the other claim stays
    assert result.to_dict()["deferred"] == 1
    assert result.to_dict()["processed"] == 0
    with pytest.raises(stack.s3.exceptions.NoSuchKey):
        stack.manifest("incoming/taken.zip")
    assert stack.queue_counts() == (0, 1)
    assert claim_objects(stack) == [claim_of("taken")]
    body = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=claim_of("taken"))["Body"].read())
    assert body["message_id"] == "other-message"


def test_a_key_under_a_folder_named_like_the_claims_folder_is_processed_apart_from_the_claims(stack: Stack) -> None:
    # GIVEN an upload under incoming/.lew-claims/: its results folder is one segment, so it is not the claims folder
    stack.upload("incoming/.lew-claims/x.zip", zip_bytes({"a.txt": b"a"}))
    stack.enqueue("incoming/.lew-claims/x.zip")

    summary = stack.run()

    assert summary.to_dict()["processed"] == 1
    assert (
        stack.manifest("incoming/.lew-claims/x.zip")["outputs"][0]["key"]
        == "results/.lew-claims%2Fx.zip/inventory.json"
    )
    assert claim_objects(stack) == [f"{CLAIMS}.lew-claims%2Fx.zip.claim.json"]


@pytest.mark.parametrize(
    ("name", "words"),
    [(".lew-claims", "claims folder"), (".lew-outside", "outside INPUT_PREFIX"), (".lew-runs", "scheduled runs")],
)
def test_a_key_whose_results_folder_would_be_a_reserved_folder_is_refused(stack: Stack, name: str, words: str) -> None:
    # GIVEN the one key whose folder name is `.lew-claims` or `.lew-outside` (no archive, so it never has outputs)
    stack.send({"Records": [s3_record(BUCKET, f"incoming/{name}", etag="0" * 32, size=1)]})

    summary = stack.run()

    # THEN it gets a failure manifest saying why, and nothing else
    assert summary.to_dict()["failed"] == 1
    manifest = stack.manifest(f"incoming/{name}")
    assert manifest["error"]["type"] == "UnsupportedInput"
    assert words in manifest["error"]["message"]
    assert stack.queue_counts() == (0, 0)
