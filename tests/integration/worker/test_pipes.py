"""A job whose upload carries Dagster Pipes metadata: the processor reports through dagster-pipes, with no credentials.

The Dagster side is played here by what dagster-aws's PipesS3ContextInjector and PipesS3MessageReader leave and
read in S3 (the context object, the numbered message chunks); tests/e2e/test_dagster.py runs real Dagster.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import pytest
from dagster_pipes import encode_param

from worker.pipes import CONTEXT_METADATA, MESSAGES_METADATA, PIPES_FOLDER

from .conftest import BUCKET, Stack, zip_bytes

CONTEXT_KEY = f"results/{PIPES_FOLDER}ctx/context.json"
MESSAGES_PREFIX = f"results/{PIPES_FOLDER}msgs"
CONTEXT = {
    "asset_keys": ["scene"],
    "code_version_by_asset_key": None,
    "provenance_by_asset_key": None,
    "partition_key": None,
    "partition_key_range": None,
    "partition_time_window": None,
    "run_id": "run-1",
    "job_name": None,
    "retry_number": 0,
    "extras": {"quality": 9},
}
# A processor written with dagster-pipes, as its users write one: open_dagster_pipes() with no arguments.
PIPES_PROCESSOR = """
import json, os, pathlib
from dagster_pipes import open_dagster_pipes
with open_dagster_pipes() as pipes:
    pipes.log.info("rendering at quality %s", pipes.get_extra("quality"))
    pathlib.Path(os.environ["LEW_OUTPUT_DIR"], "env.json").write_text(json.dumps(sorted(os.environ)))
    pipes.report_asset_materialization(metadata={"frames": 3})
    pipes.report_asset_check(check_name="not_empty", passed=True)
"""


def pipes_upload(stack: Stack, key: str, *, context_key: str = CONTEXT_KEY, prefix: str = MESSAGES_PREFIX) -> None:
    """Upload an archive as lew.dagster does: the context object first, the two Pipes values as object metadata."""
    stack.s3.put_object(Bucket=BUCKET, Key=context_key, Body=json.dumps(CONTEXT).encode())
    stack.s3.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=zip_bytes({"scene.txt": b"x"}),
        Metadata={
            CONTEXT_METADATA: encode_param({"bucket": BUCKET, "key": context_key}),
            MESSAGES_METADATA: encode_param({"bucket": BUCKET, "key_prefix": prefix}),
        },
    )
    stack.enqueue(key)


def messages(stack: Stack, prefix: str = MESSAGES_PREFIX) -> list[dict[str, Any]]:
    """Every message, read as PipesS3MessageReader reads them: chunk 1, 2, ... until one is missing."""
    found, index = [], 1
    names = {item["Key"] for item in stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])}
    while f"{prefix}/{index}.json" in names:
        body = stack.s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{index}.json")["Body"].read().decode()
        found.extend(json.loads(line) for line in body.split("\n") if line)
        index += 1
    assert len(names) == index - 1, f"chunks not numbered 1..n: {sorted(names)}"
    return found


def test_pipes_processor_reports_through_the_worker_without_credentials(stack: Stack) -> None:
    # GIVEN an upload carrying a Pipes session, and a processor written with dagster-pipes
    key = "incoming/scene.zip"
    pipes_upload(stack, key)
    command = shlex.join([sys.executable, "-c", PIPES_PROCESSOR])

    # WHEN a worker runs it
    stack.run(processor="command", process_command=command)

    # THEN the job succeeded, and its messages arrived where the Dagster side reads them, in order
    assert stack.manifest(key)["status"] == "succeeded"
    sent = messages(stack)
    methods = [message["method"] for message in sent]
    assert methods[0] == "opened" and methods[-1] == "closed", methods
    assert {"log", "report_asset_materialization", "report_asset_check"} <= set(methods)
    log = next(message for message in sent if message["method"] == "log")
    assert log["params"]["message"] == "rendering at quality 9"  # the context's extras reached the processor
    materialization = next(message for message in sent if message["method"] == "report_asset_materialization")
    assert materialization["params"]["metadata"]["frames"]["raw_value"] == 3
    # ...and the processor saw file-based Pipes settings, never an AWS credential or the S3 locations
    outputs = {item["key"].rsplit("/", 1)[-1]: item["key"] for item in stack.manifest(key)["outputs"]}
    env = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=outputs["env.json"])["Body"].read())
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(env)
    assert [name for name in env if name.startswith("AWS_")] == []


def test_pipes_metadata_is_absent_for_plain_uploads(stack: Stack) -> None:
    # GIVEN an upload without Pipes metadata, and a processor that lists its environment
    key = "incoming/plain.zip"
    stack.upload(key, zip_bytes({"a.txt": b"a"}))
    stack.enqueue(key)
    dump = (
        "import json, os, pathlib; "
        "pathlib.Path(os.environ['LEW_OUTPUT_DIR'], 'env.json').write_text(json.dumps(sorted(os.environ)))"
    )

    # WHEN a worker runs it
    stack.run(processor="command", process_command=shlex.join([sys.executable, "-c", dump]))

    # THEN the processor got no Pipes variables, and nothing was written to the Pipes folder
    document = stack.manifest(key)
    assert document["status"] == "succeeded", document
    env = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=document["outputs"][0]["key"])["Body"].read())
    assert [name for name in env if name.startswith("DAGSTER_PIPES")] == []
    assert stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{PIPES_FOLDER}").get("KeyCount") == 0


def test_pipes_messages_of_a_failing_processor_arrive_before_its_failure_manifest(stack: Stack) -> None:
    # GIVEN a Pipes processor that logs, then rejects its input (exit code 3)
    key = "incoming/bad.zip"
    pipes_upload(stack, key)
    code = (
        "import sys\nfrom dagster_pipes import open_dagster_pipes\n"
        "with open_dagster_pipes() as p:\n    p.log.warning('scene is empty')\nsys.exit(3)\n"
    )

    # WHEN a worker runs it
    stack.run(processor="command", process_command=shlex.join([sys.executable, "-c", code]))

    # THEN the failure manifest is written, and the processor's messages were relayed all the same
    assert stack.manifest(key)["status"] == "failed"
    assert [message["params"]["message"] for message in messages(stack) if message["method"] == "log"] == [
        "scene is empty"
    ]


def test_pipes_retried_job_continues_the_chunk_numbering(stack: Stack) -> None:
    # GIVEN chunks an earlier attempt already relayed
    key = "incoming/again.zip"
    earlier = '{"__dagster_pipes_version": "0.1", "method": "opened", "params": {}}'
    stack.s3.put_object(Bucket=BUCKET, Key=f"{MESSAGES_PREFIX}/1.json", Body=earlier.encode())
    pipes_upload(stack, key)

    # WHEN this attempt runs
    stack.run(processor="command", process_command=shlex.join([sys.executable, "-c", PIPES_PROCESSOR]))

    # THEN its messages follow as chunk 2 on, so the reader, already past chunk 1, gets them
    sent = messages(stack)
    assert [message["method"] for message in sent].count("opened") == 2
    assert sent[-1]["method"] == "closed"


def test_pipes_metadata_naming_another_place_fails_the_job_with_its_reason(stack: Stack) -> None:
    # GIVEN Pipes metadata whose messages would go outside the Pipes folder
    key = "incoming/elsewhere.zip"
    pipes_upload(stack, key, prefix="results/scene.zip")

    # WHEN a worker runs it
    stack.run()

    # THEN the job fails for good with the reason, and nothing was run or written there
    document = stack.manifest(key)
    assert document["status"] == "failed"
    assert document["error"]["type"] == "PipesMetadataInvalid"
    assert (
        "dagster-pipes-messages: key_prefix 'results/scene.zip' is not under results/.lew-pipes/"
        in (document["error"]["message"])
    )


def test_pipes_context_object_gone_fails_the_job_naming_it(stack: Stack) -> None:
    # GIVEN Pipes metadata whose context object was deleted (the Dagster run ended before the job started)
    key = "incoming/late.zip"
    pipes_upload(stack, key)
    stack.s3.delete_object(Bucket=BUCKET, Key=CONTEXT_KEY)

    # WHEN a worker runs it
    stack.run()

    # THEN the failure says so
    document = stack.manifest(key)
    assert document["status"] == "failed"
    assert f"s3://{BUCKET}/{CONTEXT_KEY} does not exist" in document["error"]["message"]


@pytest.mark.parametrize("body", [b"{torn", b"[1, 2]"])
def test_pipes_context_object_that_is_not_a_json_object_fails_the_job_naming_it(stack: Stack, body: bytes) -> None:
    # GIVEN Pipes metadata whose context object is damaged, or JSON of another shape
    key = "incoming/damaged.zip"
    pipes_upload(stack, key)
    stack.s3.put_object(Bucket=BUCKET, Key=CONTEXT_KEY, Body=body)

    # WHEN a worker runs it
    stack.run()

    # THEN the job fails for good, saying which object is wrong
    document = stack.manifest(key)
    assert document["status"] == "failed"
    assert document["error"]["permanent"] is True
    assert f"s3://{BUCKET}/{CONTEXT_KEY} is not a JSON object" in document["error"]["message"]
