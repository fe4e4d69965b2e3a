"""Job parameters end to end against moto: carried by the upload's metadata, validated, given to the command."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.integration.worker.conftest import BUCKET, Stack, zip_bytes
from worker.events import JobEvents
from worker.parameters import parameter_metadata

# A command that writes the LEW_PARAM_ variables it was given (and its arguments) as its output.
RECORD_PARAMETERS = (
    "import json, os, sys; open(os.path.join(os.environ['LEW_OUTPUT_DIR'], 'seen.json'), 'w').write(json.dumps("
    "{'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() if k.startswith('LEW_PARAM_')}}))"
)
DECLARED = "threshold:int:0..100, mode:choice:fast|slow, label:text:32"


def upload_with(stack: Stack, key: str, metadata: dict[str, str], body: bytes | None = None) -> None:
    stack.s3.put_object(Bucket=BUCKET, Key=key, Body=body or zip_bytes({"in.txt": b"x"}), Metadata=metadata)
    stack.enqueue(key)


def manifest_of(stack: Stack, key: str) -> dict[str, Any]:
    """The manifest whose source is `key`, wherever the results layout puts it."""
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="results/")
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith("/manifest.json"):
                document: dict[str, Any] = json.loads(
                    stack.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                )
                if document["source"]["key"] == key:
                    return document
    raise AssertionError(f"no manifest for {key}")


def run_command_stack(stack: Stack, python_command: Callable[[str], str], events: JobEvents | None = None) -> None:
    stack.run(
        processor="command",
        process_command=python_command(RECORD_PARAMETERS),
        process_parameters=DECLARED,
        events=events,
    )


def test_valid_parameters_reach_the_command_as_variables_and_the_manifest(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN an upload carrying three declared parameters, one of them shell-like text
    parameters = {"threshold": "42", "mode": "slow", "label": "$(id) ; rm -rf /"}
    upload_with(stack, "incoming/good.zip", parameter_metadata(parameters) | {"owner": "someone"})

    # WHEN the worker drains the queue with the command processor that declares them
    run_command_stack(stack, python_command)

    # THEN the command saw each as LEW_PARAM_<NAME>, untouched, and nothing in its arguments
    manifest = manifest_of(stack, "incoming/good.zip")
    assert manifest["status"] == "succeeded", manifest["error"]
    seen_key = next(output["key"] for output in manifest["outputs"] if output["key"].endswith("seen.json"))
    seen = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=seen_key)["Body"].read())
    assert seen == {
        "argv": [],
        "env": {"LEW_PARAM_THRESHOLD": "42", "LEW_PARAM_MODE": "slow", "LEW_PARAM_LABEL": "$(id) ; rm -rf /"},
    }
    # AND the manifest records them as sent (other metadata is not a parameter)
    assert manifest["parameters"] == parameters
    assert stack.queue_counts() == (0, 0)


def test_an_unknown_parameter_fails_the_job_permanently_naming_it(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    upload_with(stack, "incoming/unknown.zip", parameter_metadata({"threshold": "1", "colour": "red"}))

    run_command_stack(stack, python_command)

    manifest = manifest_of(stack, "incoming/unknown.zip")
    assert manifest["status"] == "failed"
    assert manifest["error"] == {
        "type": "InvalidParameter",
        "message": "parameter colour='red' is unknown to command: it accepts threshold, mode, label",
        "permanent": True,
    }
    assert manifest["parameters"] == {"colour": "red", "threshold": "1"}
    assert manifest["outputs"] == []
    assert stack.queue_counts() == (0, 0)
    assert stack.queue_counts(stack.dlq_url) == (0, 0)  # settled with a manifest, not dead-lettered


def test_an_out_of_bounds_parameter_fails_the_job_naming_value_and_rule(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    upload_with(stack, "incoming/bounds.zip", parameter_metadata({"threshold": "101"}))

    run_command_stack(stack, python_command)

    manifest = manifest_of(stack, "incoming/bounds.zip")
    assert manifest["status"] == "failed"
    assert manifest["error"]["type"] == "InvalidParameter"
    assert manifest["error"]["message"] == (
        "parameter threshold='101' is out of bounds: threshold must be an integer from 0 to 100"
    )
    assert manifest["attempt"] == 1  # permanent: never retried
    assert "process" not in manifest["timings"]  # refused before the archive was even downloaded
    assert "download" in manifest["timings"]


def test_parameters_beyond_s3s_limit_fail_the_job_naming_the_size(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN an upload whose parameters exceed 2 KB (moto stores them; S3 itself would refuse the PUT)
    upload_with(stack, "incoming/large.zip", parameter_metadata({"label": "x" * 2100}))

    run_command_stack(stack, python_command)

    manifest = manifest_of(stack, "incoming/large.zip")
    assert manifest["status"] == "failed"
    assert manifest["error"]["type"] == "InvalidParameter"
    assert "more than S3's limit of 2048 bytes" in manifest["error"]["message"]


def test_a_processor_that_declares_no_parameters_refuses_them(stack: Stack) -> None:
    upload_with(stack, "incoming/inventory.zip", parameter_metadata({"width": "320"}))

    stack.run(processor="inventory")

    manifest = manifest_of(stack, "incoming/inventory.zip")
    assert manifest["error"]["message"] == "parameter width='320' is unknown to inventory: it accepts no parameters"


def test_the_same_bytes_with_other_parameters_are_a_new_job_and_the_same_ones_a_skip(
    stack: Stack, python_command: Callable[[str], str]
) -> None:
    # GIVEN an upload processed with threshold=1 (the same bytes each time: a zip made later has other timestamps)
    body = zip_bytes({"in.txt": b"x"})
    upload_with(stack, "incoming/again.zip", parameter_metadata({"threshold": "1"}), body)
    run_command_stack(stack, python_command)
    first = manifest_of(stack, "incoming/again.zip")
    assert first["status"] == "succeeded"

    # WHEN the same message arrives again (at-least-once delivery)
    stack.enqueue("incoming/again.zip")
    run_command_stack(stack, python_command)

    # THEN it is a skip: the manifest is the first one
    assert manifest_of(stack, "incoming/again.zip") == first

    # WHEN the same bytes are uploaded again with threshold=2 (the same ETag in an unversioned bucket)
    upload_with(stack, "incoming/again.zip", parameter_metadata({"threshold": "2"}), body)
    run_command_stack(stack, python_command)

    # THEN they are processed again, with the new parameter
    second = manifest_of(stack, "incoming/again.zip")
    assert second["source"]["etag"] == first["source"]["etag"]
    assert second["parameters"] == {"threshold": "2"}
    assert second["claim"] != first["claim"]

    # WHEN uploaded once more with an out-of-bounds threshold
    upload_with(stack, "incoming/again.zip", parameter_metadata({"threshold": "200"}), body)
    run_command_stack(stack, python_command)

    # THEN the failure is written, although a success exists for the same bytes (with other parameters)
    third = manifest_of(stack, "incoming/again.zip")
    assert third["status"] == "failed"
    assert third["error"]["type"] == "InvalidParameter"


def test_job_events_carry_the_validated_parameters_typed(stack: Stack, python_command: Callable[[str], str]) -> None:
    # GIVEN an upload with valid parameters, one with an out-of-bounds one, and one with none
    upload_with(stack, "incoming/typed.zip", parameter_metadata({"threshold": "42", "mode": "fast"}))
    upload_with(stack, "incoming/refused.zip", parameter_metadata({"threshold": "101"}))
    upload_with(stack, "incoming/plain.zip", {})

    # WHEN the worker drains the queue, keeping the events it publishes
    events = JobEvents(keep=20)
    run_command_stack(stack, python_command, events)

    # THEN the final events carry what the processor received, typed, by name
    final = {event["job"]["key"]: event for event in events.published if event["status"] in ("succeeded", "failed")}
    assert final["incoming/typed.zip"]["status"] == "succeeded"
    assert final["incoming/typed.zip"]["parameters"] == {"threshold": 42, "mode": "fast"}
    assert final["incoming/plain.zip"]["parameters"] == {}
    # AND a refused parameter's failure has none (its error names it), like every `started` (before the GET)
    assert final["incoming/refused.zip"]["status"] == "failed"
    assert final["incoming/refused.zip"]["parameters"] is None
    assert "threshold='101'" in final["incoming/refused.zip"]["error"]["message"]
    assert {str(event["parameters"]) for event in events.published if event["status"] == "started"} == {"None"}
